// nn::Module without forward passes: registration, PyTorch names and order, state_dict
// load/save (strict and non-strict), train/eval, zero_grad, dtype conversion, init statistics.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/nn/nn.h"
#include "framework/grad_mode.h"

using namespace finch;

namespace {

// A ResNet BasicBlock-like structure, built like the Python below; the expected names are
// what torch 1.13 prints for it:
//   class Block(nn.Module): conv1=Conv2d(4,4,3,padding=1,bias=False); bn1=BatchNorm2d(4);
//                           downsample=Sequential(Conv2d(4,4,1,bias=False), BatchNorm2d(4))
//   class Net(nn.Module):   conv1=Conv2d(3,4,3); bn1=BatchNorm2d(4); relu=ReLU();
//                           layer1=Sequential(Block(), Block()); fc=Linear(4,10)
struct Block : nn::Module {
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::Sequential> downsample;
  Block() {
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(4, 4, 3, 1, 1, 1, 1, false));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(4));
    downsample = register_module(
        "downsample", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                          std::make_shared<nn::Conv2d>(4, 4, 1, 1, 0, 1, 1, false),
                          std::make_shared<nn::BatchNorm2d>(4)}));
  }
};

struct Net : nn::Module {
  Net() {
    register_module("conv1", std::make_shared<nn::Conv2d>(3, 4, 3));
    register_module("bn1", std::make_shared<nn::BatchNorm2d>(4));
    register_module("relu", std::make_shared<nn::ReLU>());
    auto layer1 = std::make_shared<nn::Sequential>();
    layer1->push_back(std::make_shared<Block>());
    layer1->push_back(std::make_shared<Block>());
    register_module("layer1", layer1);
    register_module("fc", std::make_shared<nn::Linear>(4, 10));
  }
  std::string type_name() const override { return "Net"; }
};

std::vector<std::string> names(const nn::NamedTensors& v) {
  std::vector<std::string> out;
  for (const auto& [n, t] : v) out.push_back(n);
  return out;
}

const std::vector<std::string> kTorchStateDictKeys = {
    "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
    "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
    "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked",
    "layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight", "layer1.0.downsample.1.bias",
    "layer1.0.downsample.1.running_mean", "layer1.0.downsample.1.running_var",
    "layer1.0.downsample.1.num_batches_tracked", "layer1.1.conv1.weight", "layer1.1.bn1.weight",
    "layer1.1.bn1.bias", "layer1.1.bn1.running_mean", "layer1.1.bn1.running_var",
    "layer1.1.bn1.num_batches_tracked", "layer1.1.downsample.0.weight",
    "layer1.1.downsample.1.weight", "layer1.1.downsample.1.bias",
    "layer1.1.downsample.1.running_mean", "layer1.1.downsample.1.running_var",
    "layer1.1.downsample.1.num_batches_tracked", "fc.weight", "fc.bias"};

const std::vector<std::string> kTorchParameterNames = {
    "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
    "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.downsample.0.weight",
    "layer1.0.downsample.1.weight", "layer1.0.downsample.1.bias", "layer1.1.conv1.weight",
    "layer1.1.bn1.weight", "layer1.1.bn1.bias", "layer1.1.downsample.0.weight",
    "layer1.1.downsample.1.weight", "layer1.1.downsample.1.bias", "fc.weight", "fc.bias"};

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / double(v.size());
}
double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

TEST(NnModule, StateDictNamesAndOrderMatchTorch) {
  Net net;
  EXPECT_EQ(net.state_dict().keys(), kTorchStateDictKeys);
  EXPECT_EQ(names(net.named_parameters()), kTorchParameterNames);
  const auto sd = net.state_dict();
  EXPECT_EQ(sd.at("bn1.num_batches_tracked").dtype(), DType::i64);
  EXPECT_EQ(sd.at("bn1.num_batches_tracked").dim(), 0);
  EXPECT_EQ(sd.at("layer1.0.conv1.weight").shape(), (Shape{4, 4, 3, 3}));
  EXPECT_EQ(sd.at("fc.weight").shape(), (Shape{10, 4}));
  EXPECT_EQ(net.parameters().size(), kTorchParameterNames.size());
  EXPECT_EQ(net.buffers().size(), 15u);
  for (const auto& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  for (const auto& b : net.buffers()) EXPECT_FALSE(b.requires_grad());
  // 108+4 + 4+4 + 2·(144 + 4+4 + 16 + 4+4) + 40+10
  EXPECT_EQ(net.num_parameters(), 112 + 8 + 2 * 176 + 50);
}

TEST(NnModule, NamedModulesAndSequentialIndexing) {
  Net net;
  auto mods = net.named_modules();
  std::vector<std::string> n;
  for (auto& [name, m] : mods) n.push_back(name);
  EXPECT_EQ(n.front(), "");
  EXPECT_EQ(n[4], "layer1");
  EXPECT_EQ(n[5], "layer1.0");
  EXPECT_EQ(n[8], "layer1.0.downsample");
  EXPECT_EQ(n[9], "layer1.0.downsample.0");
  EXPECT_EQ(n.back(), "fc");
  nn::Sequential seq{std::make_shared<nn::Linear>(2, 3), std::make_shared<nn::ReLU>()};
  EXPECT_EQ(seq.size(), 2u);
  EXPECT_EQ(seq[1]->type_name(), "ReLU");
  EXPECT_THROW(seq[2], Error);
  EXPECT_EQ(seq.state_dict().keys(), (std::vector<std::string>{"0.weight", "0.bias"}));
  nn::ModuleList list{std::make_shared<nn::Linear>(2, 2, false)};
  list.push_back(std::make_shared<nn::LayerNorm>(Shape{2}));
  EXPECT_EQ(list.state_dict().keys(), (std::vector<std::string>{"0.weight", "1.weight", "1.bias"}));
  EXPECT_THROW(list.forward(zeros({1, 2})), Error);
}

TEST(NnModule, RegistrationRejectsBadNames) {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  EXPECT_THROW(m.register_parameter("w", zeros({2})), Error);
  EXPECT_THROW(m.register_buffer("w", zeros({2})), Error);
  EXPECT_THROW(m.register_module("w", std::make_shared<nn::ReLU>()), Error);
  EXPECT_THROW(m.register_parameter("a.b", zeros({2})), Error);
  EXPECT_THROW(m.register_parameter("", zeros({2})), Error);
  EXPECT_THROW(m.register_parameter("i", zeros({2}, DType::i64)), Error);
  // An absent parameter (bias=False) is skipped everywhere.
  m.register_parameter("bias", Tensor());
  EXPECT_EQ(m.state_dict().keys(), std::vector<std::string>{"w"});
  // Non-persistent buffers stay out of the state dict but are buffers.
  m.register_buffer("scratch", zeros({3}), /*persistent=*/false);
  EXPECT_EQ(m.state_dict().size(), 1u);
  EXPECT_EQ(m.buffers().size(), 1u);
}

TEST(NnModule, SharedParameterIsListedOnce) {
  auto a = std::make_shared<nn::Linear>(3, 3);
  nn::Sequential seq{a, a};
  EXPECT_EQ(names(seq.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias"}));
  // state_dict keeps both names, as torch does.
  EXPECT_EQ(seq.state_dict().size(), 4u);
}

TEST(NnModule, LoadStateDictCopiesInPlace) {
  Generator g1(1), g2(2);
  nn::Linear a(4, 3, true, &g1), b(4, 3, true, &g2);
  const void* w_data = b.weight.raw_data();
  const TensorImpl* w_impl = b.weight.impl();
  ASSERT_NE(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  const auto r = b.load_state_dict(a.state_dict());
  EXPECT_TRUE(r.missing_keys.empty());
  EXPECT_TRUE(r.unexpected_keys.empty());
  EXPECT_EQ(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  EXPECT_EQ(a.bias.to_vector<float>(), b.bias.to_vector<float>());
  // Same tensor, same storage: an optimizer holding b.weight sees the loaded values.
  EXPECT_EQ(b.weight.raw_data(), w_data);
  EXPECT_EQ(b.parameters()[0].impl(), w_impl);
  EXPECT_TRUE(b.weight.requires_grad());
  // The state dict shares the module's storage (no copy), like torch's.
  auto sd = b.state_dict();
  EXPECT_EQ(sd.at("weight").raw_data(), w_data);
  // f64 values convert into the f32 parameters, as torch's copy_ does.
  nn::StateDict d64;
  d64.insert("weight", full({3, 4}, 0.5, DType::f64));
  d64.insert("bias", full({3}, -1.0, DType::f64));
  b.load_state_dict(d64);
  EXPECT_EQ(b.weight.dtype(), DType::f32);
  EXPECT_FLOAT_EQ(float(b.weight.get({2, 3})), 0.5f);
  EXPECT_FLOAT_EQ(float(b.bias.get({0})), -1.0f);
}

TEST(NnModule, StrictLoadReportsEveryProblemByName) {
  Net net;
  auto sd = net.state_dict();
  nn::StateDict bad;
  for (const auto& [n, t] : sd) {
    if (n == "fc.bias" || n == "layer1.1.bn1.running_var") continue;  // missing
    if (n == "conv1.weight") {
      bad.insert(n, zeros({4, 3, 5, 5}));  // shape mismatch
      continue;
    }
    if (n == "bn1.num_batches_tracked") {
      bad.insert(n, zeros({}, DType::f32));  // float where torch stores an integer
      continue;
    }
    bad.insert(n, t);
  }
  bad.insert("fc.extra", zeros({1}));
  bad.insert("head.weight", zeros({1}));
  const auto before = net.state_dict().at("fc.weight").to_vector<float>();
  try {
    net.load_state_dict(bad);
    FAIL() << "expected finch::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Error(s) in loading state_dict for Net"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Missing key(s) in state_dict: \"layer1.1.bn1.running_var\", \"fc.bias\""),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("Unexpected key(s) in state_dict: \"fc.extra\", \"head.weight\""),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("size mismatch for conv1.weight: copying a param with shape [4, 3, 5, 5] "
                       "from checkpoint, the shape in current model is [4, 3, 3, 3]"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("dtype mismatch for bn1.num_batches_tracked"), std::string::npos) << msg;
    EXPECT_LT(msg.find("Missing"), msg.find("Unexpected")) << msg;
  }
  // Nothing was copied: a failed load leaves the model as it was.
  EXPECT_EQ(net.state_dict().at("fc.weight").to_vector<float>(), before);
}

TEST(NnModule, NonStrictLoadReturnsMissingAndUnexpected) {
  Generator g(7);
  nn::Sequential src{std::make_shared<nn::Linear>(2, 2, true, &g), std::make_shared<nn::BatchNorm1d>(2)};
  nn::Sequential dst{std::make_shared<nn::Linear>(2, 2, true, &g), std::make_shared<nn::BatchNorm1d>(2)};
  nn::StateDict partial;
  partial.insert("0.weight", src.state_dict().at("0.weight"));
  partial.insert("1.running_mean", full({2}, 3.0));
  partial.insert("2.weight", zeros({2}));
  const auto r = dst.load_state_dict(partial, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"0.bias", "1.weight", "1.bias", "1.running_var",
                                                      "1.num_batches_tracked"}));
  EXPECT_EQ(r.unexpected_keys, std::vector<std::string>{"2.weight"});
  EXPECT_EQ(dst.state_dict().at("0.weight").to_vector<float>(), src.state_dict().at("0.weight").to_vector<float>());
  EXPECT_EQ(dst.state_dict().at("1.running_mean").to_vector<float>(), (std::vector<float>{3, 3}));
  // Shape mismatches are errors even when not strict (as torch).
  nn::StateDict wrong;
  wrong.insert("0.weight", zeros({3, 2}));
  EXPECT_THROW(dst.load_state_dict(wrong, false), Error);
}

TEST(NnModule, TrainEvalPropagates) {
  Net net;
  auto mods = net.named_modules();
  for (auto& [n, m] : mods) EXPECT_TRUE(m->is_training()) << n;
  net.eval();
  for (auto& [n, m] : mods) EXPECT_FALSE(m->is_training()) << n;
  net.named_children()[3].second->train();  // only layer1 back to training
  for (auto& [n, m] : mods) EXPECT_EQ(m->is_training(), n.rfind("layer1", 0) == 0) << n;
}

TEST(NnModule, ZeroGradDropsGradients) {
  nn::Linear lin(3, 2);
  for (auto& p : lin.parameters()) p.set_grad(ones(p.shape()));
  lin.zero_grad();
  for (auto& p : lin.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(NnModule, ToDtypeKeepsHandles) {
  nn::Sequential seq{std::make_shared<nn::Linear>(3, 2), std::make_shared<nn::BatchNorm1d>(2)};
  auto lin = std::static_pointer_cast<nn::Linear>(seq[0]);
  auto bn = std::static_pointer_cast<nn::BatchNorm1d>(seq[1]);
  const auto w = lin->weight.to_vector<double>();
  seq.to(DType::f64);
  EXPECT_EQ(lin->weight.dtype(), DType::f64);
  EXPECT_EQ(bn->running_var.dtype(), DType::f64);
  EXPECT_EQ(bn->num_batches_tracked.dtype(), DType::i64);  // integers stay integers, as torch
  EXPECT_EQ(lin->weight.to_vector<double>(), w);
  EXPECT_TRUE(lin->weight.requires_grad());
  EXPECT_EQ(seq.state_dict().at("0.weight").dtype(), DType::f64);
}

// ---- initialization ----

TEST(NnInit, LinearAndConvDefaultsAreTorchsUniformBounds) {
  Generator g(11);
  nn::Linear lin(200, 300, true, &g);
  const double bound = 1.0 / std::sqrt(200.0);
  auto w = lin.weight.to_vector<float>();
  float lo = 1, hi = -1;
  for (float x : w) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.99 * bound);  // fills the interval
  EXPECT_GT(hi, 0.99 * bound);
  EXPECT_NEAR(mean_of(w), 0.0, 0.01 * bound);
  EXPECT_NEAR(std_of(w), bound / std::sqrt(3.0), 0.01 * bound);
  for (float x : lin.bias.to_vector<float>()) EXPECT_LE(std::abs(x), bound);
  // Conv: fan_in = in/groups · k·k = 8/2·9 = 36.
  nn::Conv2d conv(8, 64, 3, 1, 0, 1, 2, true, &g);
  EXPECT_EQ(conv.weight.shape(), (Shape{64, 4, 3, 3}));
  const double cb = 1.0 / 6.0;
  auto cw = conv.weight.to_vector<float>();
  for (float x : cw) ASSERT_LE(std::abs(x), cb);
  EXPECT_NEAR(std_of(cw), cb / std::sqrt(3.0), 0.05 * cb);
  for (float x : conv.bias.to_vector<float>()) EXPECT_LE(std::abs(x), cb);
  nn::Conv1d c1(6, 9, 5, 1, 0, 1, 3, false, &g);
  EXPECT_EQ(c1.weight.shape(), (Shape{9, 2, 5}));
  EXPECT_FALSE(c1.bias.defined());
  for (float x : c1.weight.to_vector<float>()) EXPECT_LE(std::abs(x), 1.0 / std::sqrt(10.0));
  EXPECT_THROW(nn::Conv2d(6, 4, 3, 1, 0, 1, 4), Error);  // 6 channels in 4 groups
}

TEST(NnInit, SeededInitIsReproducible) {
  Generator a(5), b(5);
  nn::Linear x(7, 9, true, &a), y(7, 9, true, &b);
  EXPECT_EQ(x.weight.to_vector<float>(), y.weight.to_vector<float>());
  EXPECT_EQ(x.bias.to_vector<float>(), y.bias.to_vector<float>());
  manual_seed(3);
  nn::Linear u(7, 9);
  manual_seed(3);
  nn::Linear v(7, 9);
  EXPECT_EQ(u.weight.to_vector<float>(), v.weight.to_vector<float>());
}

TEST(NnInit, NormAndEmbeddingDefaults) {
  nn::BatchNorm2d bn(5);
  EXPECT_EQ(bn.weight.to_vector<float>(), std::vector<float>(5, 1.f));
  EXPECT_EQ(bn.bias.to_vector<float>(), std::vector<float>(5, 0.f));
  EXPECT_EQ(bn.running_mean.to_vector<float>(), std::vector<float>(5, 0.f));
  EXPECT_EQ(bn.running_var.to_vector<float>(), std::vector<float>(5, 1.f));
  EXPECT_EQ(bn.num_batches_tracked.item(), 0.0);
  nn::BatchNorm1d plain(3, 1e-5, 0.1, /*affine=*/false, /*track_running_stats=*/false);
  EXPECT_EQ(plain.state_dict().size(), 0u);
  EXPECT_EQ(plain.parameters().size(), 0u);
  nn::LayerNorm ln({4, 6});
  EXPECT_EQ(ln.weight.shape(), (Shape{4, 6}));
  EXPECT_EQ(ln.state_dict().keys(), (std::vector<std::string>{"weight", "bias"}));
  Generator g(9);
  nn::Embedding emb(500, 40, -2, &g);
  EXPECT_EQ(*emb.padding_idx, 498);
  auto w = emb.weight.to_vector<float>();
  for (int j = 0; j < 40; ++j) EXPECT_EQ(w[498 * 40 + j], 0.f);
  EXPECT_NEAR(mean_of(w), 0.0, 0.02);
  EXPECT_NEAR(std_of(w), 1.0, 0.02);
  EXPECT_THROW(nn::Embedding(5, 2, 5), Error);
}

// orthogonal_: tall, wide, square and conv-shaped tensors get orthonormal rows or columns (the
// fewer of the two) times the gain, in f32 and f64; entries are spread, not an identity.
TEST(NnInit, OrthogonalGivesOrthonormalRowsOrColumns) {
  Generator g(5);
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{64, 16}, {16, 64}, {32, 32}, {8, 3, 2, 2}}) {
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor w = empty(shape, dt);
      const double gain = dt == DType::f32 ? 1.0 : 2.5;
      nn::init::orthogonal_(w, gain, &g);
      const int64_t rows = shape[0], cols = w.numel() / rows;
      const std::vector<double> v = w.to(DType::f64).to_vector<double>();
      const bool tall = rows >= cols;
      const int64_t n = tall ? cols : rows, m = tall ? rows : cols;
      auto at = [&](int64_t vec, int64_t i) { return tall ? v[size_t(i * cols + vec)] : v[size_t(vec * cols + i)]; };
      double worst = 0, big = 0;
      for (int64_t a = 0; a < n; ++a)
        for (int64_t b = 0; b < n; ++b) {
          double dot = 0;
          for (int64_t i = 0; i < m; ++i) dot += at(a, i) * at(b, i);
          worst = std::max(worst, std::abs(dot / (gain * gain) - (a == b ? 1.0 : 0.0)));
        }
      for (double x : v) big = std::max(big, std::abs(x) / gain);
      EXPECT_LT(worst, dt == DType::f32 ? 1e-5 : 1e-12) << shape_str(shape);
      EXPECT_LT(big, 0.99) << shape_str(shape);  // a random rotation, not a permutation
    }
  }
  Tensor vec = empty({5});
  EXPECT_THROW(nn::init::orthogonal_(vec), Error);
}

TEST(NnInit, KaimingXavierTruncNormalStatistics) {
  Generator g(21);
  Tensor w = empty({256, 128, 3});  // fan_in 384, fan_out 768
  nn::init::kaiming_normal_(w, 0.0, "fan_in", "relu", &g);
  EXPECT_NEAR(std_of(w.to_vector<float>()), std::sqrt(2.0 / 384), 0.01 * std::sqrt(2.0 / 384));
  nn::init::kaiming_uniform_(w, 0.0, "fan_out", "relu", &g);
  const double kb = std::sqrt(3.0) * std::sqrt(2.0 / 768);
  for (float x : w.to_vector<float>()) ASSERT_LE(std::abs(x), kb);
  EXPECT_NEAR(std_of(w.to_vector<float>()), std::sqrt(2.0 / 768), 0.01 * std::sqrt(2.0 / 768));
  nn::init::xavier_uniform_(w, 2.0, &g);
  const double xb = 2.0 * std::sqrt(6.0 / (384 + 768));
  for (float x : w.to_vector<float>()) ASSERT_LE(std::abs(x), xb);
  EXPECT_NEAR(std_of(w.to_vector<float>()), xb / std::sqrt(3.0), 0.01 * xb);
  nn::init::xavier_normal_(w, 1.0, &g);
  EXPECT_NEAR(std_of(w.to_vector<float>()), std::sqrt(2.0 / 1152), 0.01 * std::sqrt(2.0 / 1152));
  // N(0,1) truncated to [-2, 2] has std 0.8796 (Johnson & Kotz); shifted/scaled bounds hold.
  Tensor t = empty({200000}, DType::f64);
  nn::init::trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, &g);
  auto v = t.to_vector<float>();
  for (float x : v) ASSERT_TRUE(x >= -2.0f && x <= 2.0f);
  EXPECT_NEAR(mean_of(v), 0.0, 0.01);
  EXPECT_NEAR(std_of(v), 0.87962566, 0.005);
  nn::init::trunc_normal_(t, 1.0, 0.02, 0.98, 1.1, &g);  // one-sided truncation at -1σ
  v = t.to_vector<float>();
  for (float x : v) ASSERT_TRUE(x >= 0.98f && x <= 1.1f);
  // E[X | X > -1σ] = μ + σ·φ(1)/Φ(1) = 1 + 0.02·0.2420/0.8413.
  EXPECT_NEAR(mean_of(v), 1.0 + 0.02 * 0.24197 / 0.84134, 2e-4);
  EXPECT_NEAR(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0), 1e-15);
  EXPECT_NEAR(nn::init::calculate_gain("tanh"), 5.0 / 3.0, 1e-15);
  EXPECT_THROW(nn::init::calculate_gain("swish"), Error);
  Tensor vec = empty({5});
  EXPECT_THROW(nn::init::kaiming_uniform_(vec), Error);  // fan needs 2 dims
  Tensor nc = zeros({4, 6}).t();  // non-contiguous: filled through a copy
  nn::init::ones_(nc);
  EXPECT_EQ(nc.to_vector<float>(), std::vector<float>(24, 1.f));
}
