// The optimizer-step loop shared by train_bert (masked-LM pretraining) and train_squad
// (question-answering fine-tuning): AdamW with transformers' decoupled weight decay (none on
// biases and LayerNorm), linear warm-up then linear decay, gradient clipping and accumulation,
// with train_cifar's result files from the training library (train/): progress bars, an
// interval row per --log-every steps in metrics.csv, checkpoint.safetensors after each interval
// for a bit-exact --resume, the divergence guard, summary.json and report.html.
//
// One "epoch" of train/'s history is one interval of --log-every optimizer steps here, since
// BERT runs are measured in steps: the rows, checkpoints and report curves count intervals.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"
#include "framework/random.h"
#include "models/bert_config.h"
#include "train/checkpoint.h"
#include "train/loop.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct BertTrainOptions {
  std::string out_dir, resume;
  std::string config_path, preset;  // model size (train_bert; train_squad without --init)
  int threads = 0;                   // 0: all cores
  uint64_t seed = 0;
  int64_t batch_size = 32, accum = 1;
  int64_t steps = 0;                 // optimizer steps; 0: epochs over the training samples
  double epochs = 1;
  int64_t log_every = 50;            // optimizer steps per metrics row and checkpoint
  int64_t stop_after = 0;            // > 0: stop after this many intervals in this call (resume later)
  double lr = 1e-4, weight_decay = 0.01, warmup_ratio = 0.1, clip = 1.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // transformers' AdamW defaults
  int64_t eval_samples = 256;        // held-out samples scored after each interval
  bool quiet = false;                // no progress bars (tests)
  // Under mpirun -np N (docs/distributed.md): gradient bucket size in MiB, and the watchdog.
  double bucket_mb = 1.0;
  double dist_timeout = 300;
};

// The options above as flags (--out, --resume, --config, --preset, --threads, --seed, ...).
void add_bert_train_options(CLI::App& app, BertTrainOptions& o, double default_lr);
// One sentence for the first option out of range.
void validate(const BertTrainOptions& o);

// --config FILE (a Hugging Face config.json) or --preset mini|small|base with `vocab_size`;
// both or neither given: preset `fallback`. mini = 4 × 256, 4 heads, 1024; small = 4 × 512,
// 8 heads, 2048; base = 12 × 768, 12 heads, 3072 (Turc et al. 2019's sizes).
models::BertConfig bert_config_from(const BertTrainOptions& o, int64_t vocab_size, const std::string& fallback);

// transformers' get_linear_schedule_with_warmup at optimizer step `step` (0-based, as its
// scheduler has stepped `step` times): lr·step/warmup during the warm-up, then
// lr·(total − step)/(total − warmup), never below 0.
double linear_warmup_decay(double lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

// transformers' Trainer leaves biases and LayerNorm weights out of weight decay.
bool decays(const std::string& parameter_name);

// p ← p·(1 − lr·wd) for every parameter that has a gradient: AdamW's decoupled decay, done
// before an AdamW step built with weight_decay 0 so that only `params` (the decayed group) get it;
// bit for bit what AdamW with weight_decay `weight_decay` does to them.
void decay_parameters(const std::vector<Tensor>& params, double lr, double weight_decay);

// What one micro-batch gives the loop: the mean loss over its samples (with a gradient) and the
// accuracy's numerator and denominator (masked tokens right, or spans right).
struct BatchLoss {
  Tensor loss;
  double correct = 0, counted = 0;
};

struct BertTask {
  std::string program;  // names the run in progress lines and errors ("train_bert")
  nn::Module* model = nullptr;
  Generator* dropout_gen = nullptr;  // reseeded before every step, so resumed steps repeat
  int64_t train_size = 0;            // training samples
  // The loss of training samples `samples`; seeds[i] seeds everything random about sample i
  // (its masks): a function of the sample's place in the stream, whichever process takes it.
  using Seeds = std::vector<uint64_t>;
  std::function<BatchLoss(const std::vector<int64_t>& samples, const Seeds& seeds)> batch;
  // How many terms the mean loss of these samples averages over (masked tokens), when that is not
  // one per sample. Data-parallel runs scale each process's mean by its share of the terms of the
  // whole micro-batch, so the gradient is that of one mean over all processes' samples — what one
  // process with the N-fold batch computes — not a mean of N means over different token counts.
  std::function<double(const std::vector<int64_t>& samples, const Seeds& seeds)> loss_terms;
  // Held-out loss and accuracy (count = samples), run in eval mode without gradients.
  std::function<train::EvalResult()> evaluate;
  train::Metadata tags;  // checkpoint metadata that a --resume must match
  // Called before optimizer step `step` (0-based) runs, in a fresh run and a resumed one alike, so
  // state that changes with the step (QAT observers freezing) follows the step, not the call.
  std::function<void(int64_t step)> before_step;
  // State outside the model and optimizer that a resumed run needs (train_squad --qat's
  // activation ranges): written into every checkpoint as "extra.<name>", and given back to
  // load_state on --resume (required then: a checkpoint without it is refused by load_state).
  std::function<NamedTensors()> save_state;
  std::function<void(const NamedTensors& entries, const std::string& file)> load_state;
  // Under mpirun -np N (apps/lib/distributed.h's start_data_parallel; null in one process): the
  // parameters start as rank 0's, rank r takes every N-th sample of each micro-batch of N·B
  // stream positions from r on, gradients are averaged once per optimizer step (after the last
  // micro-batch), and rank 0 alone writes files and scores the held-out samples.
  train::DataParallel* parallel = nullptr;
};

struct BertTrainResult {
  train::TrainState state;
  int64_t total_steps = 0, steps_done = 0, warmup_steps = 0;
  bool finished = false;  // every step of the schedule ran (not stopped by --stop-after)
  size_t first_row = 0;   // history rows from here on ran in this call (the rest were resumed)
};

// Runs (or resumes, o.resume) the schedule, writing checkpoint.safetensors and metrics.csv into
// o.out_dir after each interval (rank 0 of a data-parallel run). Problems are finch::Error
// sentences. A checkpoint's batch tag is the micro-batch of all processes (N·B), so a run resumes
// with any process count at the same effective batch.
// The optimizer steps a run takes: --steps, or --epochs over `train_size` samples in steps of
// batch × ranks × accum samples (at least 1).
int64_t bert_total_steps(const BertTrainOptions& o, int64_t train_size, int64_t ranks);
BertTrainResult run_bert_training(const BertTask& task, const BertTrainOptions& o);

// The training part of summary.json: steps, throughput (sequences/s), the last interval's
// figures and the hyper-parameters.
nlohmann::json bert_train_summary(const BertTrainResult& r, const BertTrainOptions& o);

// report.html with the lr curve of the schedule.
void write_bert_report(const std::string& path, const nlohmann::json& summary, const BertTrainResult& r,
                       const BertTrainOptions& o);

// The end of a train_bert / train_squad run in o.out_dir: the Hugging Face directory (config.json,
// model.safetensors, and vocab.txt copied from vocab_path unless it already is that file), then
// summary.json — `s` plus the fields every run has (config, finch version, command line, wall time
// since t0) — and report.html.
void finish_bert_run(const BertTrainOptions& o, const models::BertConfig& config, const nn::Module& model,
                     const std::string& vocab_path, nlohmann::json& s, const BertTrainResult& r,
                     const std::string& command_line, std::chrono::steady_clock::time_point t0);

// The position in the training stream of sample `q`: the samples of pass e = q / n in the order
// of a permutation seeded by (seed, e) (deterministic, so a resumed run draws what it would have).
class SampleStream {
 public:
  SampleStream(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t at(int64_t q);

 private:
  int64_t n_;
  uint64_t seed_;
  int64_t pass_ = -1;
  std::vector<int64_t> order_;
};

uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace finch::apps
