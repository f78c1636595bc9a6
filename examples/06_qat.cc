// Course example 06 (docs/course/06-qat.md): quantization-aware training of a small CNN, next to
// post-training quantization of the same float model, and the check that matters most — the
// simulated int8 model and the compiled int8 program compute the same logits, bit for bit.
//
// Data: 16×16 images of a bar at one of 10 angles on strong noise (made here, in memory).
// Model: conv3(1→8)+BN+ReLU, maxpool, conv3(8→16)+BN+ReLU, maxpool, flatten, linear(256→10).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/sgd.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"

using namespace finch;

namespace {
constexpr int64_t S = 16;  // image side

// Class k: a bar at k·18° through a point near the centre, plus uniform noise of similar
// brightness, so neither the float nor the int8 model gets everything right.
void make_data(int64_t n, Generator& gen, Tensor& x, Tensor& y) {
  x = empty({n, 1, S, S});
  y = empty({n}, DType::i64);
  for (int64_t s = 0; s < n; ++s) {
    const int64_t k = int64_t(gen.uniform() * 10) % 10;
    const double a = double(k) * 3.14159265358979 / 10, cx = 7.5 + 3 * (gen.uniform() - 0.5),
                 cy = 7.5 + 3 * (gen.uniform() - 0.5);
    for (int64_t i = 0; i < S * S; ++i) {
      const double d = std::fabs((double(i % S) - cx) * -std::sin(a) + (double(i / S) - cy) * std::cos(a));
      x.data<float>()[s * S * S + i] = float((d < 0.8 ? 0.6 : 0.0) + 1.5 * gen.uniform());
    }
    y.data<int64_t>()[s] = k;
  }
}

std::shared_ptr<nn::Sequential> small_cnn(Generator& gen) {
  using nn::ModulePtr;
  return std::make_shared<nn::Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<nn::Conv2d>(1, 8, 3, 1, 1, 1, 1, false, &gen), std::make_shared<nn::BatchNorm2d>(8),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(8, 16, 3, 1, 1, 1, 1, false, &gen), std::make_shared<nn::BatchNorm2d>(16),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(16 * 4 * 4, 10, true, &gen)});
}

// One epoch of minibatch SGD over (x, y) in a fixed shuffled order; returns the mean loss.
double train_epoch(nn::Module& m, optim::Optimizer& opt, const Tensor& x, const Tensor& y, Generator& gen) {
  m.train();
  const int64_t n = x.size(0), B = 32;
  const Tensor order = randperm(n, gen);
  double total = 0;
  for (int64_t i = 0; i + B <= n; i += B) {
    const Tensor idx = order.narrow(0, i, B);
    Tensor loss = cross_entropy(m.forward(index_select(x, 0, idx)), index_select(y, 0, idx));
    opt.zero_grad();
    backward(loss);
    opt.step();
    total += loss.item() * B;
  }
  return total / double(n - n % B);
}

// "acc 0.912 loss 0.2893": what a classifier's logits score on labels y.
std::string score(const Tensor& logits, const Tensor& y) {
  const std::vector<int64_t> p = argmax(logits, 1).to_vector<int64_t>(), t = y.to_vector<int64_t>();
  int64_t ok = 0;
  for (size_t i = 0; i < p.size(); ++i) ok += p[i] == t[i];
  char buf[64];
  std::snprintf(buf, sizeof buf, "acc %.3f loss %.4f", double(ok) / double(p.size()), cross_entropy(logits, y).item());
  return buf;
}

Tensor eval_logits(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m.forward(x);
}
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(6);
  Tensor xtr, ytr, xte, yte;
  make_data(1024, gen, xtr, ytr);
  make_data(500, gen, xte, yte);

  // 1. Float training.
  auto model = small_cnn(gen);
  optim::SGDOptions so;
  so.lr = 0.05, so.momentum = 0.9;
  {
    optim::SGD opt(model->parameters(), so);
    for (int e = 1; e <= 4; ++e) std::printf("float epoch %d loss %.4f\n", e, train_epoch(*model, opt, xtr, ytr, gen));
  }
  const std::string acc_float = score(eval_logits(*model, xte), yte);

  // 2. Post-training quantization of a copy: observe ranges on a few batches, then convert.
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");  // per-channel symmetric weights, affine activations
  auto ptq_model = small_cnn(gen);
  ptq_model->load_state_dict(model->state_dict());
  ptq_model->eval();
  auto ptq = quant::prepare(*ptq_model, xtr.narrow(0, 0, 1), po, /*qat=*/false);
  {
    NoGradGuard ng;
    for (int64_t i = 0; i < 256; i += 64) ptq_model->forward(xtr.narrow(0, i, 64));  // calibration
  }
  quant::convert(*ptq);
  const std::string acc_ptq = score(eval_logits(*ptq_model, xte), yte);

  // 3. QAT: the same float model goes on training with fake quantization in the forward pass
  //    (x̂ = (clamp(round(x/s)+z) − z)·s, gradient passed straight through), BN folded into
  //    the convs. After two epochs the BN statistics and the observed ranges are frozen.
  model->train();
  auto qat = quant::prepare(*model, xtr.narrow(0, 0, 1), po, /*qat=*/true);
  so.lr = 0.01;
  optim::SGD opt(qat->parameters(), so);
  for (int e = 1; e <= 3; ++e) {
    if (e == 3) qat->freeze_bn_stats(), qat->freeze_observers();
    std::printf("qat epoch %d loss %.4f\n", e, train_epoch(*model, opt, xtr, ytr, gen));
  }
  const Tensor sim = eval_logits(*model, xte);  // eval mode: the exact integer arithmetic
  const std::string acc_qat = score(sim, yte);
  const auto units = qat->unit_counts();
  std::printf("test float:    %s\ntest int8 PTQ: %s\ntest int8 QAT: %s\n", acc_float.c_str(), acc_ptq.c_str(),
              acc_qat.c_str());
  std::printf("conv/linear calls on the exact integer path: %lld, float fallback: %lld\n",
              static_cast<long long>(units.exact), static_cast<long long>(units.float_fallback));

  // 4. Compile the QAT model to an int8 program and compare with the simulation.
  qat->enable_observers(false);
  runtime::Graph g = compile::capture_graph(*model, xte.narrow(0, 0, 1));
  const int integer_nodes = compile::lower_quantized(g);
  std::printf("program nodes:");
  for (const auto& n : g.nodes) std::printf(" %s", n.op.c_str());
  std::printf("\n");
  runtime::Program program(g, "06_qat");
  const Tensor got = program.run(xte);
  const std::vector<float> a = got.to_vector<float>(), b = sim.to_vector<float>();
  int64_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  std::printf("program: %zu nodes, %d integer; logits differing from the simulated model: %lld of %zu\n",
              g.nodes.size(), integer_nodes, static_cast<long long>(differ), a.size());
  return differ == 0 ? 0 : 1;
}
