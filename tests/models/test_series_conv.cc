// The convolutional series models (models/series_conv.h) against their PyTorch twins in
// tests/golden/make_series_goldens.py: eval-mode and train-mode outputs and the input gradient
// with the hash-generated golden weights; seed 002's parameter counts; one SGD step lowers the loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/nn/sequence.h"
#include "framework/safetensors.h"
#include "models/series_conv.h"
#include "models/series_spec.h"
#include "tests/models/model_golden.h"
#include "tests/models/series_test_util.h"

using namespace finch;

namespace {

const SafetensorsFile& goldens() {
  static const SafetensorsFile g = load_safetensors(test::model_golden_path("series_models.safetensors"));
  return g;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

// Builds `name` from the golden's spec, loads the golden weights and compares eval output, train
// output and input gradient with torch's.
void check_golden(const std::string& name) {
  const auto& g = goldens();
  const models::SeriesSpec spec = test::spec_from_string(name, g.metadata.at(name + ".spec"));
  auto model = models::create_series(spec);
  EXPECT_EQ(model->num_parameters(), std::stoll(g.metadata.at(name + ".params"))) << name;
  EXPECT_EQ(models::series_parameter_count(spec), model->num_parameters()) << name;
  test::load_golden_weights(*model);
  const Tensor x = g.at(name + ".x");
  auto check = [&](const Tensor& got, const std::string& key) {
    const Tensor want = g.at(name + "." + key);
    test::expect_close(got, want, name + " " + key, 1e-4, 1e-5 * std::max(1.0, max_abs(want)));
  };
  model->eval();
  {
    NoGradGuard ng;
    check(model->forward(x), "eval");
  }
  model->train();
  for (auto& [path, m] : model->named_modules())
    if (m->type_name() == "Dropout") m->eval();
  Tensor xg = x.clone().set_requires_grad(true);
  const Tensor out = model->forward(xg);
  check(out, "train");
  backward(cross_entropy(out, g.at(name + ".y")));
  check(xg.grad(), "dx");
}

TEST(SeriesConv, FcnMatchesTorch) { check_golden("fcn"); }
TEST(SeriesConv, ResNet1dMatchesTorch) { check_golden("resnet1d"); }
TEST(SeriesConv, HarCnnMatchesTorch) { check_golden("har_cnn"); }
TEST(SeriesConv, EcgCnnMatchesTorch) { check_golden("ecg_cnn"); }
TEST(SeriesConv, EcgResNetMatchesTorch) { check_golden("ecg_resnet"); }

int64_t params(const std::string& name, int64_t C, int64_t K, int64_t T = 0) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = C, s.num_classes = K, s.seq_len = T;
  const int64_t n = models::create_series(s)->num_parameters();
  EXPECT_EQ(models::series_parameter_count(s), n) << name;
  return n;
}

TEST(SeriesConv, ParameterCountsAtTheSeedShapes) {
  // Seed 002: the smartwatch HAR CNN has ≈ 9.6 k parameters at 6 channels × 100 steps, 6 classes.
  EXPECT_EQ(params("har_cnn", 6, 6, 100), 20 * 21 * 21 + 36 * 21 + 6);
  EXPECT_EQ(params("har_cnn", 6, 6, 100), 9582);
  // Seed 002's ECG CNNs at 12 leads × 1000 samples, 5 classes: plain 8.1 M, residual 166 k.
  EXPECT_EQ(params("ecg_cnn", 12, 5, 1000), 8192549);
  EXPECT_EQ(params("ecg_resnet", 12, 5, 1000), 163717);
  // Wang et al.'s FCN and ResNet on a univariate 2-class set: Fawaz et al. 2019 list 264 k and
  // 504 k trainable parameters.
  EXPECT_EQ(params("fcn", 1, 2), 1152 + 256 + 164096 + 512 + 98432 + 256 + 258);
  EXPECT_EQ(params("fcn", 1, 2), 264962);
  EXPECT_EQ(params("resnet1d", 1, 2), 34112 + 206336 + 263552 + 258);
  // The sizes come from the data: more channels, more classes, a longer flatten.
  EXPECT_GT(params("fcn", 3, 2), params("fcn", 1, 2));
  EXPECT_GT(params("har_cnn", 6, 10), params("har_cnn", 6, 6));
  EXPECT_GT(params("ecg_cnn", 12, 5, 2000), params("ecg_cnn", 12, 5, 1000));
}

TEST(SeriesConv, OutputShapesFollowTheData) {
  Generator gen(3);
  for (const std::string name : {"fcn", "resnet1d", "har_cnn", "ecg_resnet"}) {
    models::SeriesSpec s;
    s.name = name, s.in_channels = 3, s.num_classes = 7, s.width = 4;
    auto m = models::create_series(s, &gen);
    m->eval();
    NoGradGuard ng;
    for (int64_t T : {8, 23}) EXPECT_EQ(m->forward(randn({2, 3, T}, gen)).shape(), (Shape{2, 7})) << name << " T " << T;
    EXPECT_THROW(m->forward(randn({2, 4, 16}, gen)), Error) << name;  // wrong channel count
    EXPECT_THROW(m->forward(randn({3, 16}, gen)), Error) << name;     // not [B, C, T]
  }
  // The seed's shapes: HAR windows of 100 steps × 6 axes, 12-lead ECGs of 1000 samples.
  models::SeriesSpec har;
  har.name = "har_cnn", har.in_channels = 6, har.num_classes = 6;
  {
    auto m = models::create_series(har, &gen);
    m->eval();
    NoGradGuard ng;
    EXPECT_EQ(m->forward(randn({2, 6, 100}, gen)).shape(), (Shape{2, 6}));
  }
  models::SeriesSpec ecg;
  ecg.name = "ecg_resnet", ecg.in_channels = 12, ecg.num_classes = 5;
  {
    auto m = models::create_series(ecg, &gen);
    m->eval();
    NoGradGuard ng;
    EXPECT_EQ(m->forward(randn({1, 12, 1000}, gen)).shape(), (Shape{1, 5}));
  }
  models::SeriesSpec e;
  e.name = "ecg_cnn", e.in_channels = 2, e.num_classes = 3, e.seq_len = 40, e.width = 2, e.hidden_size = 8;
  auto m = models::create_series(e, &gen);
  m->eval();
  NoGradGuard ng;
  EXPECT_EQ(m->forward(randn({2, 2, 40}, gen)).shape(), (Shape{2, 3}));
  EXPECT_THROW(m->forward(randn({2, 2, 41}, gen)), Error);  // built for 40 steps
}

TEST(SeriesConv, OneSgdStepLowersTheLoss) {
  Generator gen(11);
  for (const std::string name : {"fcn", "resnet1d", "har_cnn", "ecg_cnn", "ecg_resnet"}) {
    models::SeriesSpec s;
    s.name = name, s.in_channels = 3, s.num_classes = 4, s.seq_len = 32, s.width = 8, s.hidden_size = 16;
    auto model = models::create_series(s, &gen);
    const Tensor x = randn({6, 3, 32}, gen);
    const Tensor y = from_vector(std::vector<int64_t>{0, 1, 2, 3, 1, 2}, {6});
    test::expect_sgd_step_lowers_loss(
        *model, [&] { return model->forward(x); }, [&](const Tensor& out) { return cross_entropy(out, y); }, 0.01,
        name);
  }
}

// FCN and ResNet1d take padded batches (nn::LengthAware): in eval mode row b equals sample b
// alone, cut to its length, whatever the padding holds.
TEST(SeriesConv, PaddedBatchEqualsEachSampleAlone) {
  for (const std::string name : {"fcn", "resnet1d"}) {
    SCOPED_TRACE(name);
    Generator gen(8);
    models::SeriesSpec s;
    s.name = name, s.in_channels = 2, s.num_classes = 3, s.width = 4;
    auto model = models::create_series(s, &gen);
    auto* la = dynamic_cast<nn::LengthAware*>(model.get());
    ASSERT_NE(la, nullptr);
    // A training forward first, so the running statistics are not the identity.
    model->train();
    {
      NoGradGuard ng;
      model->forward(randn({4, 2, 15}, gen));
    }
    model->eval();
    const std::vector<int64_t> lens = {15, 3, 9, 1};
    Tensor x = randn({4, 2, 15}, gen);
    const Tensor lengths = from_vector(lens, {4});
    NoGradGuard ng;
    const Tensor batch = la->forward_with_lengths(x, lengths);
    for (int64_t b = 0; b < 4; ++b) {
      const Tensor alone = narrow(narrow(x, 0, b, 1), 2, 0, lens[size_t(b)]).contiguous();
      test::expect_close(model->forward(alone), narrow(batch, 0, b, 1), name + " sample " + std::to_string(b), 1e-5,
                         1e-6);
    }
    EXPECT_THROW(la->forward_with_lengths(x, from_vector(std::vector<int64_t>{15, 0, 9, 1}, {4})), Error);
    EXPECT_THROW(la->forward_with_lengths(x, from_vector(std::vector<int64_t>{15, 16, 9, 1}, {4})), Error);
    EXPECT_THROW(la->forward_with_lengths(x, from_vector(std::vector<int64_t>{15, 9, 1}, {3})), Error);
  }
}

TEST(SeriesConv, SameConvPadsAsTorch) {
  // Even kernels pad (k-1)/2 left and k/2 right, odd ones (k-1)/2 on both sides: T is kept.
  Generator gen(5);
  for (int64_t k : {1, 2, 3, 8}) {
    auto c = models::same_conv1d(2, 3, k, true, &gen);
    EXPECT_EQ(c->padding, k % 2 == 1 ? (k - 1) / 2 : 0) << k;  // a plain Conv1d: the pad is outside
    EXPECT_EQ(models::same_conv(*c, randn({1, 2, 9}, gen)).shape(), (Shape{1, 3, 9})) << k;
  }
  // One-hot weight at tap 0 reads x[t - (k-1)/2]: for k = 8 the output at t = 0 reads x[-3] = 0,
  // at t = 3 reads x[0].
  auto c = models::same_conv1d(1, 1, 8, false, &gen);
  std::vector<float> w(8, 0.f);
  w[0] = 1;
  NoGradGuard ng;
  c->weight.copy_(from_vector(w, {1, 1, 8}));
  const Tensor x = arange(1, 11, 1, DType::f32).reshape({1, 1, 10});
  const auto y = models::same_conv(*c, x).to_vector<float>();
  EXPECT_EQ(y[0], 0.f);
  EXPECT_EQ(y[3], 1.f);
  EXPECT_EQ(y[9], 7.f);
}

}  // namespace

// In training mode the batch norms of FCN and ResNet1d take their statistics over the valid steps
// only (nn::StepMask): the same sequences padded to 9 steps with zeros or to 14 with large junk
// give the same logits, the same parameter gradients and the same running statistics; and a batch
// whose lengths are all T trains exactly as the plain forward.
TEST(SeriesConv, TrainingStatisticsIgnorePadding) {
  for (const std::string name : {"fcn", "resnet1d"}) {
    SCOPED_TRACE(name);
    models::SeriesSpec s;
    s.name = name, s.in_channels = 2, s.num_classes = 3, s.width = 4;
    Generator g1(21), g2(21), gx(22);
    auto a = models::create_series(s, &g1), b = models::create_series(s, &g2);
    const std::vector<int64_t> lens = {9, 3, 6, 2};
    const Tensor x9 = randn({4, 2, 9}, gx);
    Tensor x14 = mul(add(randn({4, 2, 14}, gx), 5.0), 100.0);  // junk everywhere ...
    Tensor x9z = x9.clone();
    {
      NoGradGuard ng;
      for (int64_t i = 0; i < 4; ++i) {
        const int64_t L = lens[size_t(i)];
        narrow(narrow(x14, 0, i, 1), 2, 0, L).copy_(narrow(narrow(x9, 0, i, 1), 2, 0, L));  // ... but the valid steps
        if (L < 9) narrow(narrow(x9z, 0, i, 1), 2, L, 9 - L).zero_();
      }
    }
    const Tensor len = from_vector(lens, {4});
    a->train(), b->train();
    const Tensor ya = dynamic_cast<nn::LengthAware&>(*a).forward_with_lengths(x9z, len);
    const Tensor yb = dynamic_cast<nn::LengthAware&>(*b).forward_with_lengths(x14, len);
    test::expect_close(ya, yb, name + " logits", 1e-4, 1e-5);
    const Tensor r = randn(ya.shape(), gx);
    backward(sum(mul(ya, r)));
    backward(sum(mul(yb, r)));
    const auto pa = a->named_parameters(), pb = b->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i)
      test::expect_close(pa[i].second.grad(), pb[i].second.grad(), name + " grad " + pa[i].first, 1e-3, 1e-4);
    const auto ba = a->named_buffers(), bb = b->named_buffers();
    for (size_t i = 0; i < ba.size(); ++i)
      if (ba[i].first.find("running_") != std::string::npos)
        test::expect_close(ba[i].second, bb[i].second, name + " " + ba[i].first, 1e-4, 1e-5);
    // Every length T: the mask keeps every step, and the model trains as the plain forward.
    Generator g3(21), g4(21);
    auto c = models::create_series(s, &g3), d = models::create_series(s, &g4);
    c->train(), d->train();
    NoGradGuard ng;
    test::expect_close(dynamic_cast<nn::LengthAware&>(*c).forward_with_lengths(x9, full({4}, 9.0, DType::i64)),
                       d->forward(x9), name + " full lengths", 1e-5, 1e-6);
  }
}
