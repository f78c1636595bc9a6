// Course example 11 (docs/course/11-pruning.md): pruning a small residual CNN two ways —
// structured (whole channels, found as groups from the captured graph, physically removed) and
// unstructured (single weights zeroed by magnitude, the mask kept through optimizer steps).
//
// The task: 8×8 images with a bar (horizontal, vertical or diagonal) in noise; 3 classes.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/sgd.h"
#include "compress/channel_groups.h"
#include "compress/structured.h"
#include "compress/unstructured.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {
constexpr int64_t S = 8, K = 3;

// stem → one residual block (conv-BN-ReLU-conv-BN, + the stem's output) → a stride-2 conv →
// global average pool → Linear. The residual add ties the stem's channels to the block's output.
struct Net : nn::Module {
  std::shared_ptr<nn::Conv2d> stem, conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn0, bn1, bn2, bn3;
  std::shared_ptr<nn::Linear> fc;
  explicit Net(Generator& g) {
    stem = register_module("stem", std::make_shared<nn::Conv2d>(1, 8, 3, 1, 1, 1, 1, true, &g));
    bn0 = register_module("bn0", std::make_shared<nn::BatchNorm2d>(8));
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(8, 8, 3, 1, 1, 1, 1, false, &g));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(8));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(8, 8, 3, 1, 1, 1, 1, false, &g));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(8));
    conv3 = register_module("conv3", std::make_shared<nn::Conv2d>(8, 16, 3, 2, 1, 1, 1, false, &g));
    bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(16));
    fc = register_module("fc", std::make_shared<nn::Linear>(16, K, true, &g));
  }
  Tensor forward_impl(const Tensor& x) override {
    const Tensor h = relu(bn0->forward(stem->forward(x)));
    const Tensor r = relu(bn1->forward(conv1->forward(h)));
    const Tensor b = relu(bn2->forward(conv2->forward(r)) + h);
    const Tensor c = relu(bn3->forward(conv3->forward(b)));
    return fc->forward(flatten(adaptive_avg_pool2d(c, {1, 1}), 1));
  }
};

// n images [n, 1, S, S]: a bar of ones at a random row (class 0), column (1) or the diagonal (2),
// plus Gaussian noise of σ 0.5.
void make_data(int64_t n, Generator& gen, Tensor& x, Tensor& y) {
  x = randn({n, 1, S, S}, gen) * 0.5;
  y = empty({n}, DType::i64);
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = int64_t(gen.uniform() * K) % K, at = int64_t(gen.uniform() * S) % S;
    y.data<int64_t>()[i] = k;
    for (int64_t j = 0; j < S; ++j) {
      const int64_t r = k == 0 ? at : j, c = k == 1 ? at : j;
      px[i * S * S + r * S + c] += 1.0f;
    }
  }
}

double accuracy(nn::Module& m, const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  m.eval();
  const std::vector<int64_t> p = argmax(m.forward(x), 1).to_vector<int64_t>(), t = y.to_vector<int64_t>();
  int64_t ok = 0;
  for (size_t i = 0; i < p.size(); ++i) ok += p[i] == t[i];
  return double(ok) / double(p.size());
}

// `steps` SGD steps on batches of 32; `masks`, when given, are applied after each step.
void train(nn::Module& m, const Tensor& x, const Tensor& y, int steps, Generator& gen,
           const compress::MaskSet* masks = nullptr) {
  optim::SGDOptions so;
  so.lr = 0.05;
  so.momentum = 0.9;
  optim::SGD opt(m.parameters(), so);
  m.train();
  for (int s = 0; s < steps; ++s) {
    const Tensor idx = randint(0, x.size(0), {32}, gen);
    Tensor loss = cross_entropy(m.forward(index_select(x, 0, idx)), index_select(y, 0, idx));
    opt.zero_grad();
    backward(loss);
    opt.step();
    if (masks) masks->apply();
  }
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

// Masked-out weights that are not zero right now.
int64_t nonzero_under_mask(const compress::MaskSet& masks) {
  int64_t n = 0;
  for (const auto& e : masks.entries) {
    const std::vector<float> w = e.weight.to_vector<float>(), k = e.mask.to_vector<float>();
    for (size_t i = 0; i < w.size(); ++i) n += k[i] == 0.0f && w[i] != 0.0f;
  }
  return n;
}
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(11);
  Tensor xtr, ytr, xte, yte;
  make_data(512, gen, xtr, ytr);
  make_data(256, gen, xte, yte);
  Net dense(gen);
  train(dense, xtr, ytr, 60, gen);
  std::printf("dense: %lld parameters, test accuracy %.3f\n", (long long)dense.num_parameters(),
              accuracy(dense, xte, yte));

  // 1. Channel groups from the graph: capture one forward pass and tie the channels each op ties.
  const compress::ChannelGroups groups = compress::analyze_channels(dense, xte.narrow(0, 0, 1));
  std::printf("channel groups (%lld prunable channels):\n", (long long)groups.prunable_channels());
  for (const auto& g : groups.groups) {
    std::printf("  %-10s %2zu classes:", g.name.c_str(), g.classes.size());
    // The layer axes one class of the group touches: every one of them loses that channel.
    for (const auto& [axis, ch] : groups.classes[size_t(g.classes[0])].members) {
      const compress::LayerAxis& a = groups.axes[size_t(axis)];
      std::printf(" %s.%s", a.module.c_str(), compress::role_name(a.role));
    }
    std::printf("\n");
  }

  // 2. Structured pruning at 0.5: score each class by the L1 norm of its filters, drop the
  //    weakest half of every group, and compare with the same channels zeroed in place.
  Net pruned(gen), masked(gen);
  pruned.load_state_dict(dense.state_dict());
  masked.load_state_dict(dense.state_dict());
  compress::StructuredOptions so;
  so.amount = 0.5;
  const std::vector<int32_t> removed =
      compress::select_channels(groups, compress::channel_scores(pruned, groups, compress::Score::l1), so);
  compress::remove_channels(pruned, groups, removed);
  compress::zero_channels(masked, groups, removed);
  std::printf("structured 0.5: removed %zu channel classes; %lld -> %lld parameters\n", removed.size(),
              (long long)dense.num_parameters(), (long long)pruned.num_parameters());
  std::printf("  shapes: stem %lld->%lld, conv1 %lld->%lld, conv3 %lld->%lld, fc in %lld\n",
              (long long)pruned.stem->in_channels, (long long)pruned.stem->out_channels,
              (long long)pruned.conv1->in_channels, (long long)pruned.conv1->out_channels,
              (long long)pruned.conv3->in_channels, (long long)pruned.conv3->out_channels,
              (long long)pruned.fc->in_features);
  {
    NoGradGuard ng;
    pruned.eval();
    masked.eval();
    std::printf("  pruned vs masked logits: max |diff| %.1e\n",
                max_abs_diff(pruned.forward(xte), masked.forward(xte)));
  }
  const double pruned_accuracy = accuracy(pruned, xte, yte);
  train(pruned, xtr, ytr, 30, gen);
  std::printf("  test accuracy %.3f; after 30 fine-tuning steps %.3f\n", pruned_accuracy,
              accuracy(pruned, xte, yte));

  // 3. Unstructured magnitude pruning at 0.7 per layer: the shapes stay, 70 % of each weight is 0.
  Net sparse(gen);
  sparse.load_state_dict(dense.state_dict());
  compress::MaskSet masks = compress::prunable_weights(sparse);
  compress::magnitude_prune(masks, 0.7);
  masks.apply();
  std::printf("unstructured 0.7: %lld of %lld weights zero (%.3f), %lld parameters still stored\n",
              (long long)masks.pruned(), (long long)masks.total(), masks.sparsity(),
              (long long)sparse.num_parameters());
  std::printf("  test accuracy %.3f\n", accuracy(sparse, xte, yte));
  // One optimizer step moves the pruned weights again (their gradients are not zero) ...
  train(sparse, xtr, ytr, 1, gen);
  std::printf("  after one SGD step: %lld pruned weights nonzero\n", (long long)nonzero_under_mask(masks));
  masks.apply();  // ... so the mask is applied after every step.
  std::printf("  after masks.apply(): %lld\n", (long long)nonzero_under_mask(masks));
  train(sparse, xtr, ytr, 30, gen, &masks);
  std::printf("  after 30 masked fine-tuning steps: %lld nonzero, sparsity %.3f, test accuracy %.3f\n",
              (long long)nonzero_under_mask(masks), masks.sparsity(), accuracy(sparse, xte, yte));
  return 0;
}
