// Validation split, best-epoch choice, early stopping and their summary (model_selection.h).
#include "apps/lib/model_selection.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <utility>

#include "framework/error.h"

namespace finch::apps {

namespace {

double number_or_nan(const nlohmann::json& row, const char* key) {
  return row.contains(key) && row[key].is_number() ? row[key].get<double>() : std::numeric_limits<double>::quiet_NaN();
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

const nlohmann::json* row_of_epoch(const nlohmann::json& history, int64_t epoch) {
  for (const auto& row : history)
    if (row.contains("epoch") && row["epoch"].is_number_integer() && row["epoch"].get<int64_t>() == epoch) return &row;
  return nullptr;
}

}  // namespace

data::Split validation_split(const std::vector<int64_t>& labels, double fraction, uint64_t seed,
                             const std::string& what) {
  if (!(fraction > 0 && fraction < 1))
    fail("--val-fraction must be in (0, 1) to hold out part of ", what, ", got ", fraction);
  data::Split s = data::stratified_split(labels, fraction, seed);
  if (s.val.empty())
    fail("--val-fraction ", fraction, " of ", what, "'s ", labels.size(),
         " examples leaves no validation example; raise it, or turn validation off with --val-fraction 0");
  std::map<int64_t, int64_t> total, kept;
  for (int64_t l : labels) ++total[l];
  for (int64_t i : s.train) ++kept[labels[size_t(i)]];
  for (const auto& [label, n] : total)
    if (kept[label] == 0)
      fail("--val-fraction ", fraction, " takes all ", n, " training examples of class ", label, " in ", what,
           " into validation; lower it, or turn validation off with --val-fraction 0");
  return s;
}

void prepare_best_file(const std::string& out_dir, const std::string& resume, const nlohmann::json& history,
                       const SelectionConfig& c) {
  namespace fs = std::filesystem;
  const fs::path best = fs::path(out_dir) / "best.safetensors";
  std::error_code ec;
  if (resume.empty()) {
    fs::remove(best, ec);
    return;
  }
  const int64_t epoch = selection_from_history(history, c).best_epoch;
  if (epoch == 0 || fs::exists(best)) return;
  const fs::path beside = fs::path(resume).parent_path() / "best.safetensors";
  if (!fs::exists(beside))
    fail(resume, " chose epoch ", epoch, " as its best validation epoch, but its best.safetensors is neither in ",
         out_dir, " nor beside the checkpoint; resume in the run's own --out folder");
  const fs::path tmp = best.string() + ".tmp";
  fs::copy_file(beside, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, best, ec);
  if (ec) fail("cannot copy ", beside.string(), " to ", best.string(), ": ", ec.message());
}

std::optional<data::Split> default_validation_split(const std::vector<int64_t>& labels, double fraction,
                                                    uint64_t seed, const std::string& what) {
  try {
    return validation_split(labels, fraction, seed, what);
  } catch (const Error&) {
    // The summary says so: its "validation" is null and "kept" is "last".
    return std::nullopt;
  }
}

std::string fraction_source(double fraction, const std::string& what, uint64_t seed) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g %%", 100 * fraction);
  return std::string(buf) + " of " + what + " (stratified, seed " + std::to_string(seed) + ")";
}

bool better_validation(const SelectionConfig& c, double acc, double loss, double best_acc, double best_loss) {
  if (c.regression) return std::isfinite(loss) && !(loss >= best_loss);
  if (!std::isfinite(acc)) return false;
  if (acc != best_acc) return acc > best_acc;
  return std::isfinite(loss) && loss < best_loss;  // equal accuracy: the lower loss
}

SelectionState selection_from_history(const nlohmann::json& history, const SelectionConfig& c) {
  SelectionState s;
  s.best_acc = -std::numeric_limits<double>::infinity();
  s.best_loss = std::numeric_limits<double>::infinity();
  for (const auto& row : history) {
    if (!row.contains("val_loss")) continue;  // an epoch trained without validation
    const double acc = number_or_nan(row, "val_acc"), loss = number_or_nan(row, "val_loss");
    if (better_validation(c, acc, loss, s.best_acc, s.best_loss)) {
      s.best_epoch = row["epoch"].get<int64_t>();
      s.best_acc = acc;
      s.best_loss = loss;
      s.since_best = 0;
    } else {
      ++s.since_best;
    }
  }
  return s;
}

ValidationSelection::ValidationSelection(train::Evaluator validate, SelectionConfig config,
                                         std::vector<train::Callback*> inner)
    : validate_(std::move(validate)), config_(config), inner_(std::move(inner)) {}

void ValidationSelection::on_train_begin(train::Context& ctx) {
  state_ = selection_from_history(ctx.state.history, config_);
  // A resumed run that had already run out of patience trains no further.
  if (validate_ && config_.patience > 0 && state_.best_epoch > 0 && state_.since_best >= config_.patience) {
    ctx.stop = true;
    stopped_early_ = true;
  }
  for (train::Callback* c : inner_) c->on_train_begin(ctx);
}

void ValidationSelection::on_epoch_begin(train::Context& ctx, int64_t epoch) {
  for (train::Callback* c : inner_) c->on_epoch_begin(ctx, epoch);
}

void ValidationSelection::on_batch_end(train::Context& ctx, int64_t epoch, int64_t step, double loss) {
  for (train::Callback* c : inner_) c->on_batch_end(ctx, epoch, step, loss);
}

void ValidationSelection::on_epoch_end(train::Context& ctx, const train::EpochEnd& e) {
  train::EpochEnd chosen = e;
  chosen.best = false;  // the test set chooses nothing
  if (validate_) {
    const train::EvalResult v = validate_(ctx.model);
    nlohmann::json& row = ctx.state.history.back();
    row["val_loss"] = finite_or_null(v.loss);
    row["val_acc"] = config_.regression ? nlohmann::json(nullptr) : finite_or_null(v.accuracy);
    if (better_validation(config_, v.accuracy, v.loss, state_.best_epoch ? state_.best_acc : -INFINITY,
                          state_.best_epoch ? state_.best_loss : INFINITY)) {
      state_.best_epoch = e.epoch + 1;
      state_.best_acc = v.accuracy;
      state_.best_loss = v.loss;
      state_.since_best = 0;
      chosen.best = true;
    } else {
      ++state_.since_best;
    }
    if (config_.patience > 0 && state_.since_best >= config_.patience) {
      ctx.stop = true;
      stopped_early_ = true;
    }
  }
  for (train::Callback* c : inner_) c->on_epoch_end(ctx, chosen);
}

void ValidationSelection::on_train_end(train::Context& ctx) {
  for (train::Callback* c : inner_) c->on_train_end(ctx);
}

void SelectionLogCallback::on_epoch_end(train::Context& ctx, const train::EpochEnd& e) {
  const nlohmann::json& row = ctx.state.history.back();
  const bool val = row.contains("val_loss");
  const double vl = number_or_nan(row, "val_loss"), va = number_or_nan(row, "val_acc");
  std::string val_part;
  char buf[160];
  if (e.test.regression) {
    if (val) std::snprintf(buf, sizeof buf, ", val MSE %.5g", vl), val_part = buf;
    std::fprintf(stderr, "epoch %lld/%lld: train MSE %.5g%s, test MSE %.5g RMSE %.5g%s, %.1f s (%.0f %s)\n",
                 static_cast<long long>(e.epoch + 1), static_cast<long long>(ctx.config.epochs), e.train.loss,
                 val_part.c_str(), e.test.mse, e.test.rmse, e.best ? " (best)" : "", e.train.seconds,
                 e.train.images_per_second(), unit_.c_str());
    return;
  }
  if (val) std::snprintf(buf, sizeof buf, ", val loss %.4f acc %.2f%%", vl, 100 * va), val_part = buf;
  std::fprintf(stderr, "epoch %lld/%lld: train loss %.4f acc %.2f%%%s, test loss %.4f acc %.2f%%%s, %.1f s (%.0f %s)\n",
               static_cast<long long>(e.epoch + 1), static_cast<long long>(ctx.config.epochs), e.train.loss,
               100 * e.train.accuracy, val_part.c_str(), e.test.loss, 100 * e.test.accuracy, e.best ? " (best)" : "",
               e.train.seconds, e.train.images_per_second(), unit_.c_str());
}

std::vector<std::string> metrics_columns(bool with_validation) {
  std::vector<std::string> c = {"epoch", "lr", "train_loss", "train_acc"};
  if (with_validation) c.insert(c.end(), {"val_loss", "val_acc"});
  c.insert(c.end(), {"test_loss", "test_acc", "seconds", "images_per_second"});
  return c;
}

int64_t kept_epoch(const nlohmann::json& history, const SelectionConfig& c, const std::string& keep) {
  if (keep != "best") return 0;
  return selection_from_history(history, c).best_epoch;
}

nlohmann::json selection_summary(const nlohmann::json& history, const SelectionReport& r) {
  const SelectionConfig c{r.regression, r.patience};
  const SelectionState st = selection_from_history(history, c);
  auto epoch_keys = [&](const std::string& prefix, const nlohmann::json* row, nlohmann::json& s) {
    const std::string test = prefix == "best" ? "best_epoch_test_" : "last_epoch_test_";
    s[prefix + "_val_accuracy"] = row && !r.regression ? finite_or_null(number_or_nan(*row, "val_acc")) : nullptr;
    s[prefix + "_val_loss"] = row ? finite_or_null(number_or_nan(*row, "val_loss")) : nullptr;
    s[test + "accuracy"] = row && !r.regression ? finite_or_null(number_or_nan(*row, "test_acc")) : nullptr;
    s[test + "loss"] = row ? finite_or_null(number_or_nan(*row, "test_loss")) : nullptr;
  };
  nlohmann::json s;
  s["validation"] = r.validation_source.empty()
                        ? nlohmann::json(nullptr)
                        : nlohmann::json{{"source", r.validation_source}, {"samples", r.validation_samples}};
  s["selection_metric"] = r.validation_source.empty() ? nlohmann::json(nullptr)
                          : r.regression              ? nlohmann::json("val_loss (MSE), lowest")
                                                      : nlohmann::json("val_accuracy, highest (ties: lower val_loss)");
  const nlohmann::json* best = st.best_epoch > 0 ? row_of_epoch(history, st.best_epoch) : nullptr;
  s["best_epoch"] = best ? nlohmann::json(st.best_epoch) : nlohmann::json(nullptr);
  epoch_keys("best", best, s);
  const nlohmann::json* last = history.empty() ? nullptr : &history.back();
  s["last_epoch"] = last ? (*last)["epoch"] : nlohmann::json(nullptr);
  epoch_keys("last", last, s);
  const bool kept_best = r.kept == "best" && best;
  s["kept"] = kept_best ? "best" : "last";
  s["model_epoch"] = kept_best ? nlohmann::json(st.best_epoch) : s["last_epoch"];
  s["patience"] = r.patience;
  s["stopped_early"] = r.stopped_early;
  return s;
}

}  // namespace finch::apps
