// Data-parallel runs of the training programs: launch check, rank-0 files, summary block, abort.
#include "apps/lib/distributed.h"

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "train/loop.h"

namespace finch::apps {
namespace {
// The shortest text that reads back as `v` (0.1, not 0.10000000000000001): what the user typed.
std::string str(double v) {
  for (int digits = 1;; ++digits) {
    std::ostringstream os;
    os.precision(digits);
    os << v;
    if (digits >= 17 || std::strtod(os.str().c_str(), nullptr) == v) return os.str();
  }
}
}  // namespace

Fingerprint train_options_fingerprint(const TrainOptions& o) {
  std::string mean, std;
  for (float v : o.mean) mean += str(v) + " ";
  for (float v : o.std) std += str(v) + " ";
  return {{"--model", o.model},
          {"--width", str(o.width)},
          {"--dataset", o.dataset},
          {"--batch-size", std::to_string(o.batch_size)},
          {"--lr", str(o.lr)},
          {"--optimizer", o.optimizer},
          {"--momentum", str(o.momentum)},
          {"--nesterov", o.nesterov ? "on" : "off"},
          {"--weight-decay", str(o.weight_decay)},
          {"--schedule", o.schedule},
          {"--warmup-epochs", str(o.warmup_epochs)},
          {"--epochs", std::to_string(o.epochs)},
          {"--label-smoothing", str(o.label_smoothing)},
          {"--augment", o.augment ? "on" : "off"},
          {"--seed", std::to_string(o.seed)},
          {"--mean", mean},
          {"--std", std},
          {"--limit-train", std::to_string(o.limit_train)},
          {"--val-fraction", str(o.val_fraction)},
          {"--patience", std::to_string(o.patience)},
          {"--resume", o.resume},
          {"--bucket-mb", str(o.bucket_mb)},
          {"--sync-bn", o.sync_bn ? "on" : "off"}};
}

Fingerprint bert_train_fingerprint(const BertTrainOptions& o) {
  return {{"--config", o.config_path},
          {"--preset", o.preset},
          {"--seed", std::to_string(o.seed)},
          {"--batch-size", std::to_string(o.batch_size)},
          {"--accum", std::to_string(o.accum)},
          {"--steps", std::to_string(o.steps)},
          {"--epochs", str(o.epochs)},
          {"--log-every", std::to_string(o.log_every)},
          {"--stop-after", std::to_string(o.stop_after)},
          {"--lr", str(o.lr)},
          {"--weight-decay", str(o.weight_decay)},
          {"--warmup-ratio", str(o.warmup_ratio)},
          {"--clip", str(o.clip)},
          {"--adam-beta1", str(o.beta1)},
          {"--adam-beta2", str(o.beta2)},
          {"--adam-eps", str(o.eps)},
          {"--eval-samples", std::to_string(o.eval_samples)},
          {"--resume", o.resume},
          {"--bucket-mb", str(o.bucket_mb)}};
}

void check_launch(const Fingerprint& items, double dist_timeout) {
  dist::Communicator& comm = dist::world();
  if (comm.size() == 1) return;
  comm.set_timeout(dist_timeout);
  train::check_same_launch(comm, items);
}

std::unique_ptr<train::DataParallel> start_data_parallel(nn::Module& model, Fingerprint items, double bucket_mb,
                                                         bool sync_bn, double dist_timeout) {
  dist::Communicator& comm = dist::world();
  if (comm.size() == 1) {
    if (sync_bn) std::cerr << "note: --sync-bn has no effect in a single process (BatchNorm sees the whole batch)\n";
    return nullptr;
  }
  // Before the first collective: the launch check below already waits for every rank.
  comm.set_timeout(dist_timeout);
  for (auto& kv : train::model_fingerprint(model)) items.push_back(std::move(kv));
  train::check_same_launch(comm, items);
  auto dp = std::make_unique<train::DataParallel>(comm, model, int64_t(bucket_mb * 1024 * 1024));
  if (sync_bn && dp->enable_sync_batchnorm() == 0 && comm.rank() == 0)
    std::cerr << "note: --sync-bn: the model has no BatchNorm layer, so there is nothing to synchronize\n";
  return dp;
}

std::unique_ptr<train::DataParallel> start_data_parallel(nn::Module& model, const data::Dataset& train_set,
                                                         Fingerprint items, const TrainOptions& o) {
  if (dist::world().size() > 1)
    for (auto& kv : train::dataset_fingerprint(train_set, "the training set")) items.push_back(std::move(kv));
  return start_data_parallel(model, std::move(items), o.bucket_mb, o.sync_bn, o.dist_timeout);
}

bool writes_files() { return dist::world().rank() == 0; }

nlohmann::json distributed_summary(const train::DataParallel* dp, int64_t per_rank_batch, double lr,
                                   const nlohmann::json& history, size_t first_row) {
  dist::Communicator& comm = dist::world();
  nlohmann::json j = {{"world_size", comm.size()},
                      {"backend", comm.backend()},
                      {"per_rank_batch", per_rank_batch},
                      {"effective_batch", per_rank_batch * comm.size()},
                      {"lr", lr},
                      {"lr_applies_to", "the effective batch (not scaled with the world size)"}};
  if (!dp) return j;
  const train::CommStats& s = dp->stats();
  double seconds = 0;
  for (size_t k = first_row; k < history.size(); ++k)
    if (history[k].contains("seconds") && history[k]["seconds"].is_number()) seconds += history[k]["seconds"].get<double>();
  j["sync_batchnorm"] = dp->sync_batchnorm();
  j["dist_timeout_seconds"] = comm.timeout();
  j["buckets"] = dp->num_buckets();
  j["gradient_bytes_per_step"] = dp->gradient_bytes();
  if (s.steps > 0) {
    const double n = double(s.steps);
    const double step = seconds / n;
    j["steps"] = s.steps;
    j["step_seconds"] = train::round_significant(step);
    j["allreduce_seconds_per_step"] = train::round_significant(s.reduce_seconds / n);
    j["wait_seconds_per_step"] = train::round_significant(s.wait_seconds / n);
    j["allreduce_share_of_step"] = step > 0 ? train::round_significant(s.reduce_seconds / n / step) : 0.0;
    j["wait_share_of_step"] = step > 0 ? train::round_significant(s.wait_seconds / n / step) : 0.0;
    if (dp->sync_batchnorm()) {
      // BN's collectives run on the training thread, inside forward and backward: their time is
      // part of the step, not overlapped with it.
      j["sync_bn_collectives_per_step"] = train::round_significant(double(s.sync_bn_calls) / n);
      j["sync_bn_bytes_per_step"] = train::round_significant(double(s.sync_bn_bytes) / n);
      j["sync_bn_seconds_per_step"] = train::round_significant(s.sync_bn_seconds / n);
      j["sync_bn_share_of_step"] = step > 0 ? train::round_significant(s.sync_bn_seconds / n / step) : 0.0;
    }
  }
  return j;
}

nlohmann::json bert_distributed_summary(const train::DataParallel* dp, const BertTrainOptions& o,
                                        const BertTrainResult& r) {
  nlohmann::json j = distributed_summary(dp, o.batch_size * o.accum, o.lr, r.state.history, r.first_row);
  j["per_rank_micro_batch"] = o.batch_size;
  j["accum"] = o.accum;
  j["bucket_mb"] = o.bucket_mb;
  return j;
}

int end_job_on_error(int rc) {
  if (rc == 0) return rc;
  try {
    if (dist::launcher_world_size() > 1) dist::world().abort(rc);
  } catch (const std::exception&) {
    // No communicator to abort through (it failed to start): the exit below ends this rank and
    // mpirun ends the job, as it does when any process exits non-zero.
  }
  return rc;
}

}  // namespace finch::apps
