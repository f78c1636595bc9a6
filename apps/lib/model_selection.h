// Model selection on held-out TRAINING data, shared by train_series, train_text and train_cifar:
// the validation split (stratified, seeded), the choice of the best epoch by the validation
// metric (never the test set), early stopping (--patience), and what summary.json records about
// the choice. The test set is still evaluated after every epoch, but only to be reported.
//
// State: the validation metrics of every epoch are columns of the training history ("val_loss",
// "val_acc"), which a checkpoint saves, so the best epoch so far and the epochs since it are
// recomputed from the history on --resume — a resumed run chooses and stops exactly as an
// uninterrupted one.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "train/loop.h"

namespace finch::apps {

// The validation part of a training set of `labels.size()` examples: within each class,
// round(fraction · count) examples drawn by a seeded shuffle (data::stratified_split), so both
// parts keep the class proportions; regression sets pass one label for all. Both index lists
// ascend and are disjoint. One finch::Error sentence naming `what` (the file or folder) when the
// fraction leaves the validation part empty or takes every example of a class.
data::Split validation_split(const std::vector<int64_t>& labels, double fraction, uint64_t seed,
                             const std::string& what);

// The same for a program's DEFAULT fraction (the user asked for none): a set too small to give
// a validation example (or to keep one of every class) trains without validation instead —
// nothing is chosen, the last epoch is kept (summary.json: "validation" null, "kept" "last").
std::optional<data::Split> default_validation_split(const std::vector<int64_t>& labels, double fraction,
                                                    uint64_t seed, const std::string& what);

// How the best epoch is chosen. Classification: the highest validation accuracy, ties going to
// the lower validation loss, then to the earlier epoch; regression: the lowest validation loss
// (the MSE). A NaN never improves.
struct SelectionConfig {
  bool regression = false;
  int64_t patience = 0;  // stop after this many epochs in a row without a better one; 0: never
};

// True when the epoch with validation (acc, loss) is better than the best so far.
bool better_validation(const SelectionConfig& c, double acc, double loss, double best_acc, double best_loss);

struct SelectionState {
  int64_t best_epoch = 0;  // 1-based; 0: none yet (or no validation columns)
  double best_acc = 0, best_loss = 0;
  int64_t since_best = 0;  // epochs after best_epoch
};
// The best epoch so far and the epochs since it, from the history's val_acc / val_loss columns.
SelectionState selection_from_history(const nlohmann::json& history, const SelectionConfig& c);

// A fit() callback that evaluates the validation set after each epoch, adds val_loss and val_acc
// to the epoch's history row, marks EpochEnd::best by the validation metric, and then passes the
// epoch on to `inner` (checkpoints — whose best.safetensors is thus the best-validation epoch —,
// metrics CSV, progress lines). With an empty `validate` nothing is chosen: no epoch is best.
// With patience it sets Context::stop once `patience` epochs in a row were not better (also at
// on_train_begin, when a resumed history has already run out of patience). Under mpirun every
// rank must run it (the same weights give the same decision); pass `inner` on rank 0 only.
class ValidationSelection : public train::Callback {
 public:
  ValidationSelection(train::Evaluator validate, SelectionConfig config, std::vector<train::Callback*> inner);
  void on_train_begin(train::Context& ctx) override;
  void on_epoch_begin(train::Context& ctx, int64_t epoch) override;
  void on_batch_end(train::Context& ctx, int64_t epoch, int64_t step, double loss) override;
  void on_epoch_end(train::Context& ctx, const train::EpochEnd& e) override;
  void on_train_end(train::Context& ctx) override;
  const SelectionState& state() const { return state_; }
  bool stopped_early() const { return stopped_early_; }

 private:
  train::Evaluator validate_;
  SelectionConfig config_;
  std::vector<train::Callback*> inner_;
  SelectionState state_;
  bool stopped_early_ = false;
};

// One line per epoch on stderr: "epoch 3/10: train loss 0.41 acc 85.12%, val loss … acc …,
// test loss … acc … (best), 12.3 s (1234 samples/s)"; regression lines give MSEs. The val part
// appears when the history row has it; "(best)" marks the best-validation epoch.
class SelectionLogCallback : public train::Callback {
 public:
  explicit SelectionLogCallback(std::string rate_unit = "samples/s") : unit_(std::move(rate_unit)) {}
  void on_epoch_end(train::Context& ctx, const train::EpochEnd& e) override;

 private:
  std::string unit_;
};

// metrics.csv's columns: train_cifar's, with val_loss and val_acc after the training ones.
std::vector<std::string> metrics_columns(bool with_validation);

// summary.json's account of the choice (added beside the test metrics of the kept model):
// "validation" {source, samples}, "selection_metric", "best_epoch", "best_val_accuracy",
// "best_val_loss", "best_epoch_test_accuracy", "best_epoch_test_loss" (the test set's numbers of
// the CHOSEN epoch), the same "last_*" keys for the last epoch, "kept" ("best" or "last":
// which epoch model.safetensors holds), "model_epoch", "patience", "stopped_early". Without
// validation the best_* keys are null and kept is "last".
struct SelectionReport {
  std::string validation_source;  // e.g. "DATA/val", "10 % of --train (stratified, seed 1)"; empty: none
  int64_t validation_samples = 0;
  std::string kept = "last";
  int64_t patience = 0;
  bool stopped_early = false;
  bool regression = false;
};
nlohmann::json selection_summary(const nlohmann::json& history, const SelectionReport& r);
// The report of a run whose data `d` has `val` (a dataset pointer, null without validation) and
// `val_source`, and whose options `o` have `keep`, `patience` and `epochs`: one fill for every app.
template <class Data, class Options>
SelectionReport selection_report(const Data& d, const Options& o, const ValidationSelection& selection,
                                 int64_t epochs_done, bool regression = false) {
  SelectionReport r;
  r.validation_source = d.val ? d.val_source : "";
  r.validation_samples = d.val ? int64_t(d.val->size()) : 0;
  r.kept = o.keep;
  r.patience = o.patience;
  r.stopped_early = selection.stopped_early() && epochs_done < o.epochs;
  r.regression = regression;
  return r;
}

// The epoch whose weights model.safetensors should hold: the best-validation epoch when `keep`
// is "best" and validation chose one, else 0 (the last epoch, as trained).
int64_t kept_epoch(const nlohmann::json& history, const SelectionConfig& c, const std::string& keep);

// Before fit(), on the process that writes files: a fresh run removes a best.safetensors left in
// `out_dir` by an earlier run (this one writes its own, or none without validation); a resumed run
// whose history already chose an epoch needs that epoch's best.safetensors in `out_dir`, copied
// from beside `resume` when the run continues in another folder (one sentence when neither has it).
void prepare_best_file(const std::string& out_dir, const std::string& resume, const nlohmann::json& history,
                       const SelectionConfig& c);

// The "N % of WHAT (stratified, seed S)" words of a carved validation part.
std::string fraction_source(double fraction, const std::string& what, uint64_t seed);

}  // namespace finch::apps
