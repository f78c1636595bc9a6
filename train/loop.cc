// The training loop: epochs of optimizer steps, evaluation, best tracking, callbacks.
#include "train/loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/nn/sequence.h"
#include "framework/error.h"
#include "framework/progress.h"
#include "ops/reduce.h"
#include "train/divergence.h"

namespace finch::train {

double round_significant(double v, int digits) {
  if (v == 0 || !std::isfinite(v)) return v;
  const double scale = std::pow(10.0, digits - 1 - int(std::floor(std::log10(std::fabs(v)))));
  return std::round(v * scale) / scale;
}

namespace {
std::string prefix(const LoopConfig& c) { return c.name.empty() ? "" : c.name + ": "; }

// The predicted class of each sample, or an empty vector when `out` is not class scores for `n`
// samples: argmax of [n, K] (K ≥ 2), or z > 0 for one binary logit ([n, 1] or [n]).
std::vector<int64_t> predicted_classes(const Tensor& out, int64_t n) {
  if (out.dim() == 2 && out.size(0) == n && out.size(1) >= 2) return ops::argmax(out.detach(), 1).to_vector<int64_t>();
  if ((out.dim() == 1 && out.size(0) == n) || (out.dim() == 2 && out.size(0) == n && out.size(1) == 1)) {
    std::vector<int64_t> p;
    for (float z : out.detach().to(DType::f32).contiguous().to_vector<float>()) p.push_back(z > 0);
    return p;
  }
  return {};
}
}  // namespace

Tensor forward_batch(nn::Module& model, const data::Batch& b) {
  if (b.lengths.defined())
    if (auto* seq = dynamic_cast<nn::LengthAware*>(&model)) {
      nn::ForwardPass pass;  // call sites numbered as in Module::forward
      return seq->forward_with_lengths(b.images, b.lengths);
    }
  return model.forward(b.images);
}

EpochStats train_epoch(nn::Module& model, optim::Optimizer& opt, data::DataLoader& loader, const LossFn& loss_fn,
                       const ScheduleConfig& schedule, const LoopConfig& config, int64_t epoch,
                       const std::function<void(int64_t, double)>& on_step, DivergenceGuard* guard) {
  model.train();
  const int64_t steps = loader.num_batches();
  ProgressOptions po;
  po.unit = "batch";
  std::ostringstream sink;
  if (config.quiet) po.out = &sink;
  Progress bar(steps, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(config.epochs), po);
  EpochStats st;
  double loss_sum = 0;
  int64_t correct = 0;
  bool classification = true;
  const auto t0 = std::chrono::steady_clock::now();
  DivergenceGuard own(config.divergence);
  if (!guard) guard = &own;
  loader.start_epoch(epoch);
  data::Batch b;
  for (int64_t i = 0; loader.next(b); ++i) {
    const double lr = apply_schedule(schedule, opt, epoch * steps + i, steps);
    if (i == 0) st.lr = lr;
    opt.zero_grad();
    Tensor out = forward_batch(model, b);
    const bool regression = b.targets.defined();
    Tensor loss = loss_fn(out, regression ? b.targets : b.labels);
    const double lv = loss.item();
    if (!std::isfinite(lv))
      fail(config.name, ": the training loss became ", lv, " at epoch ", epoch + 1, " step ", i + 1, "; ",
           config.lr_hint, " (now ", schedule.lr, ")");
    if (const std::string why = guard->observe(lv); !why.empty())
      fail(prefix(config), why, " at epoch ", epoch + 1, " step ", i + 1, "; the run is diverging: ",
           config.lr_hint, " (now ", schedule.lr, ")");
    if (config.parallel)
      config.parallel->backward(loss);
    else
      backward(loss);
    opt.step();
    const int64_t n = regression ? b.targets.size(0) : b.labels.size(0);
    loss_sum += lv * double(n);
    // Accuracy only means something for class scores against class indices [B].
    std::vector<int64_t> p;
    if (classification && !regression && b.labels.dim() == 1) p = predicted_classes(out, n);
    classification = !p.empty();
    if (classification) {
      const auto y = b.labels.to_vector<int64_t>();
      for (size_t k = 0; k < p.size(); ++k) correct += p[k] == y[k];
    }
    st.images += n;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ProgressFields fields = {{"loss", loss_sum / double(st.images)}};
    if (classification) fields.push_back({"acc", double(correct) / double(st.images)});
    fields.push_back({"img/s", secs > 0 ? double(st.images) / secs : 0.0});
    bar.update(1, fields);
    if (on_step) on_step(i, lv);
  }
  bar.finish();
  if (config.parallel) {
    // The epoch's figures over every rank's shard, so all ranks log, compare and schedule alike.
    std::vector<double> totals = {loss_sum, double(correct), double(st.images), classification ? 0.0 : 1.0};
    config.parallel->sum(totals);
    loss_sum = totals[0];
    correct = int64_t(totals[1]);
    st.images = int64_t(totals[2]);
    classification = totals[3] == 0;
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (st.images > 0) {
    st.loss = loss_sum / double(st.images);
    st.accuracy = classification ? double(correct) / double(st.images) : std::numeric_limits<double>::quiet_NaN();
  }
  return st;
}

nlohmann::json history_row(int64_t epoch, const EpochStats& s, const EvalResult& r) {
  return {{"epoch", epoch},
          {"lr", s.lr},
          {"train_loss", s.loss},
          {"train_acc", s.accuracy},
          {"test_loss", r.loss},
          {"test_acc", r.accuracy},
          {"seconds", round_significant(s.seconds)},
          {"images_per_second", round_significant(s.images_per_second())},
          {"images", s.images}};
}

EvalResult fit(nn::Module& model, optim::Optimizer& opt, data::DataLoader& loader, const LossFn& loss,
               const ScheduleConfig& schedule, const LoopConfig& config, TrainState& state,
               const Evaluator& evaluate, const std::vector<Callback*>& callbacks) {
  Context ctx{model, opt, state, config};
  if (config.parallel) config.parallel->broadcast_parameters();
  for (Callback* c : callbacks) c->on_train_begin(ctx);
  EvalResult last;
  int64_t ran = 0;
  DivergenceGuard guard(config.divergence);
  for (int64_t epoch = state.epochs_done; epoch < config.epochs; ++epoch) {
    if (config.stop_after_epochs > 0 && ran == config.stop_after_epochs) break;
    if (ctx.stop) break;  // a callback ended the run (early stopping)
    for (Callback* c : callbacks) c->on_epoch_begin(ctx, epoch);
    EpochEnd e;
    e.epoch = epoch;
    // The plateau schedule's LR follows the training losses so far (optim_config.h).
    ScheduleConfig epoch_schedule = schedule;
    if (schedule.kind == "plateau") {
      std::vector<double> losses;
      for (const auto& row : state.history)
        losses.push_back(row["train_loss"].is_number() ? row["train_loss"].get<double>()
                                                       : std::numeric_limits<double>::quiet_NaN());
      epoch_schedule.kind = "constant";
      epoch_schedule.lr = plateau_lr(schedule, losses);
    }
    e.train = train_epoch(model, opt, loader, loss, epoch_schedule, config, epoch, [&](int64_t step, double lv) {
      for (Callback* c : callbacks) c->on_batch_end(ctx, epoch, step, lv);
    }, &guard);
    if (const std::string bad = first_non_finite_tensor(model); !bad.empty())
      fail(prefix(config), bad, " holds a NaN or an infinity after epoch ", epoch + 1,
           " although the loss stayed finite; the run is diverging: ", config.lr_hint, " (now ", schedule.lr, ")");
    if (evaluate) e.test = evaluate(model);
    last = e.test;
    state.history.push_back(history_row(epoch + 1, e.train, e.test));
    state.epochs_done = epoch + 1;
    ++ran;
    if (e.test.regression) {
      // Lowest test loss so far, from the history (so a resumed run agrees without extra state).
      double lowest = std::numeric_limits<double>::infinity();
      for (size_t k = 0; k + 1 < state.history.size(); ++k)
        if (state.history[k]["test_loss"].is_number()) lowest = std::min(lowest, state.history[k]["test_loss"].get<double>());
      e.best = e.test.loss < lowest || epoch == 0;  // best_test_accuracy stays 0 (no accuracy)
    } else {
      e.best = e.test.accuracy > state.best_test_accuracy || epoch == 0;
      if (e.best) state.best_test_accuracy = e.test.accuracy;
    }
    for (Callback* c : callbacks) c->on_epoch_end(ctx, e);
  }
  for (Callback* c : callbacks) c->on_train_end(ctx);
  return last;
}

}  // namespace finch::train
