// The recurrent series and text models (models/series_rnn.h) against their PyTorch twins in
// tests/golden/make_series_goldens.py (outputs without and with lengths, every parameter's
// gradient and the input's); a padded batch equals each sample alone; seed 002's parameter
// counts; one SGD step lowers the loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/nn/sequence.h"
#include "framework/safetensors.h"
#include "models/series_rnn.h"
#include "models/series_spec.h"
#include "tests/models/model_golden.h"
#include "tests/models/series_test_util.h"

using namespace finch;

namespace {

const std::vector<std::string> kRecurrent = {"lstm",      "gru",         "bilstm",         "deepconvlstm",
                                             "imdb_lstm", "imdb_bilstm", "lstm_forecaster"};

const SafetensorsFile& goldens() {
  static const SafetensorsFile g = load_safetensors(test::model_golden_path("series_models.safetensors"));
  return g;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

nn::LengthAware& length_aware(nn::Module& m) {
  auto* la = dynamic_cast<nn::LengthAware*>(&m);
  if (!la) throw Error(m.type_name() + " does not implement nn::LengthAware");
  return *la;
}

void check_golden(const std::string& name) {
  const auto& g = goldens();
  const models::SeriesSpec spec = test::spec_from_string(name, g.metadata.at(name + ".spec"));
  auto model = models::create_series(spec);
  EXPECT_EQ(model->num_parameters(), std::stoll(g.metadata.at(name + ".params"))) << name;
  EXPECT_EQ(models::series_parameter_count(spec), model->num_parameters()) << name;
  test::load_golden_weights(*model);
  model->eval();
  auto check = [&](const Tensor& got, const std::string& key) {
    const Tensor want = g.at(name + "." + key);
    test::expect_close(got, want, name + " " + key, 1e-4, 1e-5 * std::max(1.0, max_abs(want)));
  };
  const Tensor x = g.at(name + ".x"), lengths = g.at(name + ".lengths");
  {
    NoGradGuard ng;
    check(model->forward(x), "full");
  }
  const bool text = models::is_text_model(name);
  Tensor xg = text ? x : x.clone().set_requires_grad(true);
  const Tensor y = length_aware(*model).forward_with_lengths(xg, lengths);
  check(y, "len");
  backward(sum(mul(y, g.at(name + ".r"))));
  if (!text) check(xg.grad(), "dx");
  int checked = 0;
  for (const auto& [pname, p] : model->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name << " " << pname;
    check(p.grad(), "grad." + pname);
    ++checked;
  }
  EXPECT_GE(checked, 3) << name;
}

TEST(SeriesRnn, LstmClassifierMatchesTorch) { check_golden("lstm"); }
TEST(SeriesRnn, GruClassifierMatchesTorch) { check_golden("gru"); }
TEST(SeriesRnn, BiLstmClassifierMatchesTorch) { check_golden("bilstm"); }
TEST(SeriesRnn, DeepConvLstmMatchesTorch) { check_golden("deepconvlstm"); }
TEST(SeriesRnn, ImdbLstmMatchesTorch) { check_golden("imdb_lstm"); }
TEST(SeriesRnn, ImdbBiLstmMatchesTorch) { check_golden("imdb_bilstm"); }
TEST(SeriesRnn, ForecasterMatchesTorch) { check_golden("lstm_forecaster"); }

models::SeriesSpec small(const std::string& name) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = 3, s.num_classes = 4, s.vocab_size = 40, s.embed_dim = 5, s.hidden_size = 6;
  s.width = 3, s.horizon = 2, s.num_targets = 2, s.num_layers = 2, s.seq_len = 32;
  return s;
}

// The padded batch's row b equals the model run on sample b alone, cut to its own length, and
// the padding's values do not matter.
TEST(SeriesRnn, PaddedBatchEqualsEachSampleAlone) {
  for (const std::string& name : kRecurrent) {
    SCOPED_TRACE(name);
    Generator gen(21);
    auto model = models::create_series(small(name), &gen);
    model->eval();
    const bool text = models::is_text_model(name);
    const int64_t T = 26;
    const std::vector<int64_t> lens = {26, 17, 21, 18};
    const int64_t B = int64_t(lens.size());
    Tensor x = text ? randint(1, 40, {B, T}, gen) : randn({B, 3, T}, gen);
    const Tensor lengths = from_vector(lens, {B});
    NoGradGuard ng;
    const Tensor batch = length_aware(*model).forward_with_lengths(x, lengths);
    // Different padding, same answer.
    Tensor x2 = x.clone();
    for (int64_t b = 0; b < B; ++b)
      if (lens[size_t(b)] < T) {
        Tensor pad = narrow(select(x2, 0, b), -1, lens[size_t(b)], T - lens[size_t(b)]);
        pad.fill_(text ? 0.0 : 1e3);
      }
    test::expect_close(length_aware(*model).forward_with_lengths(x2, lengths), batch, name + " other padding",
                       1e-5, 1e-6);
    for (int64_t b = 0; b < B; ++b) {
      const Tensor alone = narrow(narrow(x, 0, b, 1), -1, 0, lens[size_t(b)]).contiguous();
      test::expect_close(model->forward(alone), narrow(batch, 0, b, 1), name + " sample " + std::to_string(b),
                         1e-5, 1e-6);
    }
  }
}

int64_t params(models::SeriesSpec s) {
  const int64_t n = models::create_series(s)->num_parameters();
  EXPECT_EQ(models::series_parameter_count(s), n) << s.name;
  return n;
}

TEST(SeriesRnn, ParameterCountsAtTheSeedShapes) {
  models::SeriesSpec s;
  // Seed 002's IMDB LSTM: Embedding 2000×64 → LSTM 16 → LSTM 16 → Dense 1 (torch keeps two bias
  // vectors per layer where Keras keeps one: 128 parameters more than Keras's 135,313).
  s.name = "imdb_lstm", s.vocab_size = 2000, s.num_classes = 1;
  EXPECT_EQ(params(s), 128000 + 5248 + 2176 + 17);
  // Its BiLSTM: Embedding 2000×30, BiLSTM 64 + 64 → Dense 1.
  s.name = "imdb_bilstm";
  EXPECT_EQ(params(s), 60000 + 2 * (4 * 64 * (30 + 64) + 2 * 256) + 129);
  // DeepConvLSTM on UCI-HAR (9 channels, 6 classes): 4 × Conv(5×1, 64), LSTM 128 → LSTM 128.
  s = models::SeriesSpec();
  s.name = "deepconvlstm", s.in_channels = 9, s.num_classes = 6;
  EXPECT_EQ(params(s), 384 + 3 * 20544 + (4 * 128 * (576 + 128) + 1024) + (4 * 128 * 256 + 1024) + 774);
  s.name = "lstm", s.hidden_size = 32, s.num_layers = 1;
  EXPECT_EQ(params(s), 4 * 32 * (9 + 32) + 256 + 32 * 6 + 6);
  s.name = "gru";
  EXPECT_EQ(params(s), 3 * 32 * (9 + 32) + 192 + 32 * 6 + 6);
  s.name = "bilstm";
  EXPECT_EQ(params(s), 2 * (4 * 32 * (9 + 32) + 256) + 64 * 6 + 6);
}

TEST(SeriesRnn, OutputShapes) {
  Generator gen(4);
  NoGradGuard ng;
  for (const std::string& name : kRecurrent) {
    auto m = models::create_series(small(name), &gen);
    m->eval();
    const Tensor x = models::is_text_model(name) ? randint(0, 40, {2, 20}, gen) : randn({2, 3, 20}, gen);
    const Shape want = name == "lstm_forecaster" ? Shape{2, 2, 2} : Shape{2, 4};
    EXPECT_EQ(m->forward(x).shape(), want) << name;
  }
}

TEST(SeriesRnn, OneSgdStepLowersTheLoss) {
  for (const std::string& name : kRecurrent) {
    Generator gen(31);
    models::SeriesSpec s = small(name);
    if (models::is_text_model(name)) s.num_classes = 1;  // the binary one-logit head
    auto model = models::create_series(s, &gen);
    const bool text = models::is_text_model(name);
    const Tensor x = text ? randint(1, 40, {6, 20}, gen) : randn({6, 3, 20}, gen);
    const Tensor lengths = from_vector(std::vector<int64_t>{20, 18, 17, 20, 19, 17}, {6});
    const Tensor labels = from_vector(std::vector<int64_t>{0, 1, 2, 3, 1, 2}, {6});
    const Tensor binary = from_vector(std::vector<float>{0, 1, 1, 0, 1, 0}, {6, 1});
    const Tensor targets = randn({6, 2, 2}, gen);
    auto loss = [&](const Tensor& out) {
      if (name == "lstm_forecaster") return mse_loss(out, targets);
      if (text) return bce_with_logits(out, binary);
      return cross_entropy(out, labels);
    };
    test::expect_sgd_step_lowers_loss(
        *model, [&] { return length_aware(*model).forward_with_lengths(x, lengths); }, loss, 0.05, name);
  }
}

TEST(SeriesRnn, EveryRecurrentModelIsLengthAware) {
  int recurrent = 0;
  for (const std::string& name : models::series_model_names()) {
    auto m = models::create_series(small(name));
    const bool aware = dynamic_cast<nn::LengthAware*>(m.get()) != nullptr;
    if (models::is_recurrent_model(name)) {
      EXPECT_TRUE(aware) << name;
      ++recurrent;
    } else {  // of the conv models, the all-convolutional FCN and ResNet1d mask padded steps too
      EXPECT_EQ(aware, name == "fcn" || name == "resnet1d") << name;
    }
  }
  EXPECT_EQ(recurrent, 7);
}

TEST(SeriesRnn, BadInputsGetASentence) {
  Generator gen(2);
  auto dcl = models::create_series(small("deepconvlstm"), &gen);
  NoGradGuard ng;
  // Its convs drop 16 steps: a 16-step sample has nothing left for the LSTM.
  EXPECT_THROW(length_aware(*dcl).forward_with_lengths(randn({2, 3, 20}, gen), from_vector(std::vector<int64_t>{20, 16}, {2})),
               Error);
  EXPECT_THROW(dcl->forward(randn({2, 3, 16}, gen)), Error);
  EXPECT_THROW(length_aware(*dcl).forward_with_lengths(randn({2, 3, 20}, gen), from_vector(std::vector<float>{20, 18}, {2})),
               Error);
  auto lstm = models::create_series(small("lstm"), &gen);
  EXPECT_THROW(lstm->forward(randn({2, 4, 10}, gen)), Error);  // 4 channels, built for 3
  EXPECT_THROW(length_aware(*lstm).forward_with_lengths(randn({2, 3, 10}, gen), from_vector(std::vector<int64_t>{11, 3}, {2})),
               Error);
  auto text = models::create_series(small("imdb_lstm"), &gen);
  EXPECT_THROW(text->forward(randn({2, 10}, gen)), Error);  // floats, not token ids
  EXPECT_THROW(text->forward(from_vector(std::vector<int64_t>{1, 40}, {1, 2})), Error);  // id past the vocabulary
}

}  // namespace
