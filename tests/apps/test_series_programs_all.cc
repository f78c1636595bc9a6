// Every series model of models::series_model_names() becomes an fp32 program (the path finch
// compile takes: apps/lib/sequence_program.h) whose logits equal the model's on a padded batch
// with variable lengths (equal lengths for the fixed-length conv models), and — for the
// length-aware models — on each sequence run alone. A new model that does not capture fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "apps/lib/sequence_program.h"
#include "autograd/functional.h"
#include "autograd/nn/sequence.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "runtime/executor.h"

using namespace finch;

namespace {

constexpr int64_t kB = 3, kC = 2, kT = 24, kK = 3;

models::SeriesSpec small_spec(const std::string& name) {
  models::SeriesSpec s;
  s.name = name;
  s.in_channels = kC;
  s.num_classes = kK;
  s.seq_len = kT;
  if (models::is_text_model(name)) s.vocab_size = 50, s.num_classes = 1;
  if (name == "lstm_forecaster") s.num_targets = kC, s.horizon = 2;
  s.hidden_size = 8;
  s.width = 4;
  if (name == "ecg_cnn") s.hidden_size = 16;
  s.dropout = 0;
  return s;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

Tensor model_forward(nn::Module& m, const Tensor& x, const Tensor& lengths) {
  if (auto* la = dynamic_cast<nn::LengthAware*>(&m)) return la->forward_with_lengths(x, lengths);
  return m.forward(x);
}

}  // namespace

TEST(SeriesProgramsAll, EveryModelCompilesAndEqualsItsModel) {
  NoGradGuard ng;
  for (const std::string& name : models::series_model_names()) {
    SCOPED_TRACE(name);
    Generator gen(11);
    nn::ModulePtr model = models::create_series(small_spec(name), &gen);
    // Non-trivial BN statistics, so a missed mask would show.
    for (auto& [path, b] : model->named_buffers())
      if (path.find("running_mean") != std::string::npos) b.copy_(mul(randn(b.shape(), gen), 0.3));
      else if (path.find("running_var") != std::string::npos) b.copy_(add(rand(b.shape(), gen), 0.5));
    model->eval();
    const bool text = models::is_text_model(name);
    const bool var = dynamic_cast<nn::LengthAware*>(model.get()) != nullptr;
    data::Batch batch;
    batch.images = text ? randint(1, 50, {kB, kT}, gen) : randn({kB, kC, kT}, gen);
    // At least 17 steps: DeepConvLSTM's four valid (5×1) convs drop 16.
    batch.lengths = var ? from_vector(std::vector<int64_t>{kT, 18, 21}, {kB}) : Tensor();
    // Padded steps are zeros, as the data loader pads them.
    if (var)
      for (int64_t b = 0; b < kB; ++b) {
        const int64_t l = batch.lengths.to_vector<int64_t>()[size_t(b)];
        batch.images.select(0, b).slice(-1, l, kT).fill_(0.0);
      }
    runtime::Graph g;
    try {
      g = apps::sequence_float_graph(*model, batch, kT);
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << " does not capture: " << e.what();
      continue;
    }
    compile::fold_batch_norm(g);
    runtime::Program p(std::move(g), name);
    const train::BatchForward run = apps::program_forward(p, kT);
    const Tensor want = model_forward(*model, batch.images, batch.lengths);
    const Tensor got = run(batch);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LT(max_abs_diff(got, want), 1e-4) << "padded batch";
    if (!var) continue;
    // Each sequence alone (unpadded, through the model) equals its row of the padded program run.
    for (int64_t b = 0; b < kB; ++b) {
      const int64_t l = batch.lengths.to_vector<int64_t>()[size_t(b)];
      const Tensor xb = batch.images.slice(0, b, b + 1).slice(-1, 0, l).contiguous();
      const Tensor alone = model_forward(*model, xb, full({1}, double(l), DType::i64));
      EXPECT_LT(max_abs_diff(got.slice(0, b, b + 1), alone), 1e-4) << "sample " << b << " alone";
    }
  }
}
