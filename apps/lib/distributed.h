// The training programs' side of data-parallel runs (mpirun -np N train_cifar …): starting the
// reducer after checking that every rank was launched alike, which rank writes files, the
// "distributed" block of summary.json, and ending the whole job when one rank fails.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/bert_train.h"
#include "apps/lib/train_options.h"
#include "autograd/nn/module.h"
#include "data/dataset.h"
#include "framework/dist.h"
#include "train/distributed.h"

namespace finch::apps {

using Fingerprint = std::vector<std::pair<std::string, std::string>>;

// The options every rank must share (model, data, optimization, seed, resume file) as
// fingerprint items named like the command-line options.
Fingerprint train_options_fingerprint(const TrainOptions& o);

// train_bert's and train_squad's shared options (bert_train.h) as fingerprint items; the
// programs add their own (sequence length, masking, split) and hashes of vocabulary and data.
Fingerprint bert_train_fingerprint(const BertTrainOptions& o);

// Under mpirun with N > 1 processes: arms the watchdog (`dist_timeout` seconds) and compares
// `items` across the ranks (a difference is one finch::Error sentence); with one process,
// nothing. For the options, before a long data load: a mismatched launch is then refused within
// seconds, not after every rank has tokenized its corpus.
void check_launch(const Fingerprint& items, double dist_timeout);

// Under mpirun with N > 1 processes: arms the watchdog, compares `items` (options, data hashes)
// plus the model's fingerprint across the ranks and returns the reducer for `model` (buckets of
// `bucket_mb` MiB; synchronized BatchNorm when `sync_bn`); with one process, null.
std::unique_ptr<train::DataParallel> start_data_parallel(nn::Module& model, Fingerprint items, double bucket_mb,
                                                         bool sync_bn, double dist_timeout);

// The same for train_cifar and train_series: `items` plus the model's and the training set's fingerprints across the ranks (a difference is one
// finch::Error sentence) and returns the reducer for `model` (--bucket-mb), with synchronized
// BatchNorm when --sync-bn; with one process, null (training runs exactly as before; --sync-bn
// is then plain BN and says so).
std::unique_ptr<train::DataParallel> start_data_parallel(nn::Module& model, const data::Dataset& train_set,
                                                         Fingerprint items, const TrainOptions& o);

// True on the process that writes checkpoints, metrics, reports and summaries (rank 0).
bool writes_files();

// summary.json's "distributed" block: world size, backend, per-rank and effective batch, the
// learning rate (applied to the effective batch, not scaled), bucket layout and the measured
// communication per step (bytes, all-reduce time, time the step waited for it, share of the
// step; with --sync-bn also BN's collectives, bytes and time per step). `history` rows from `first_row` on are this process's epochs (resumed runs skip older).
nlohmann::json distributed_summary(const train::DataParallel* dp, int64_t per_rank_batch, double lr,
                                   const nlohmann::json& history, size_t first_row);

// The same block for train_bert and train_squad: per_rank_batch and effective_batch count the
// sequences of one optimizer step (micro-batch × --accum, on one rank and on all), with the
// micro-batch, --accum and the bucket size beside them.
nlohmann::json bert_distributed_summary(const train::DataParallel* dp, const BertTrainOptions& o,
                                        const BertTrainResult& r);

// A training program's exit: with several MPI processes a failed rank (rc != 0, its message
// already printed) ends every rank at once (MPI_Abort) instead of leaving them waiting in their
// next all-reduce; otherwise returns rc.
int end_job_on_error(int rc);

}  // namespace finch::apps
