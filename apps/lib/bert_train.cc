// The BERT training loop shared by train_bert and train_squad (bert_train.h).
#include "apps/lib/bert_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <CLI/CLI.hpp>

#include "apps/lib/train_options.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/adam.h"
#include "autograd/optim/clip_grad.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/progress.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/bert_io.h"
#include "train/callbacks.h"
#include "train/divergence.h"
#include "train/report.h"

namespace finch::apps {

void add_bert_train_options(CLI::App& app, BertTrainOptions& o, double default_lr) {
  o.lr = default_lr;
  app.add_option("--out", o.out_dir, "output directory (created)")->required();
  app.add_option("--resume", o.resume, "continue from this checkpoint.safetensors (bit for bit)");
  app.add_option("--config", o.config_path, "model size from a Hugging Face config.json");
  app.add_option("--preset", o.preset, "model size: mini (4x256), small (4x512) or base (12x768)");
  app.add_option("--threads", o.threads, "compute threads (0: all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--seed", o.seed, "seed of the data order, masks and dropout");
  app.add_option("--batch-size", o.batch_size, "sequences per micro-batch")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option("--accum", o.accum, "micro-batches per optimizer step (gradient accumulation)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option("--steps", o.steps, "optimizer steps (0: --epochs passes over the data)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--epochs", o.epochs, "passes over the training data when --steps is 0")
      ->check(number_in(1e-6, 1e6, "in (0, 1e6]"));
  app.add_option("--log-every", o.log_every, "optimizer steps per metrics row and checkpoint")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  app.add_option("--stop-after", o.stop_after, "stop after this many rows (resume later; 0: run to the end)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--lr", o.lr, "peak learning rate (AdamW)")->check(number_in(1e-12, 10, "in (0, 10]"));
  app.add_option("--weight-decay", o.weight_decay, "decoupled weight decay (not on biases and LayerNorm)")
      ->check(number_in(0, 10, "in [0, 10]"));
  app.add_option("--warmup-ratio", o.warmup_ratio, "fraction of the steps with a linear warm-up")
      ->check(number_in(0, 1, "in [0, 1]"));
  app.add_option("--clip", o.clip, "clip the gradient norm to this (0: no clipping)")
      ->check(number_in(0, 1e6, "in [0, 1e6]"));
  app.add_option("--adam-beta1", o.beta1, "AdamW beta1")->check(number_in(0, 0.999999, "in [0, 1)"));
  app.add_option("--adam-beta2", o.beta2, "AdamW beta2")->check(number_in(0, 0.999999999, "in [0, 1)"));
  app.add_option("--adam-eps", o.eps, "AdamW epsilon")->check(number_in(1e-30, 1, "in (0, 1]"));
  app.add_flag("--quiet", o.quiet, "no progress bars or per-row lines");
  app.add_option("--eval-samples", o.eval_samples, "held-out samples scored after each row (0: none)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  app.add_option("--bucket-mb", o.bucket_mb, "under mpirun: gradient all-reduce bucket size in MiB (docs/distributed.md)")
      ->check(number_in(1e-3, 1024, "in [0.001, 1024]"));
  app.add_option("--dist-timeout", o.dist_timeout, "under mpirun: end the job when a process waits this many seconds "
                                                   "for the others (a hung process; 0: wait forever)")
      ->check(number_in(0, 1e7, "in [0, 1e7]"));
}

void validate(const BertTrainOptions& o) {
  if (o.out_dir.empty()) fail("--out is required: the directory the model and results go to");
  if (o.batch_size < 1) fail("--batch-size should be at least 1, found ", o.batch_size);
  if (o.accum < 1) fail("--accum should be at least 1, found ", o.accum);
  if (o.steps < 0) fail("--steps should be 0 or more, found ", o.steps);
  if (!(o.epochs > 0 && o.epochs <= 1e6)) fail("--epochs should be in (0, 1e6], found ", o.epochs);
  if (o.log_every < 1) fail("--log-every should be at least 1, found ", o.log_every);
  if (!(o.lr > 0 && o.lr <= 10)) fail("--lr should be in (0, 10], found ", o.lr);
  if (!(o.weight_decay >= 0 && o.weight_decay <= 10)) fail("--weight-decay should be in [0, 10], found ", o.weight_decay);
  if (!(o.warmup_ratio >= 0 && o.warmup_ratio <= 1)) fail("--warmup-ratio should be in [0, 1], found ", o.warmup_ratio);
  if (!(o.clip >= 0 && o.clip <= 1e6)) fail("--clip should be in [0, 1e6], found ", o.clip);
  if (!o.config_path.empty() && !o.preset.empty()) fail("give --config or --preset, not both");
  if (!(o.bucket_mb >= 1e-3 && o.bucket_mb <= 1024)) fail("--bucket-mb should be in [0.001, 1024], found ", o.bucket_mb);
  if (!(o.dist_timeout >= 0 && o.dist_timeout <= 1e7)) fail("--dist-timeout should be in [0, 1e7], found ", o.dist_timeout);
}

models::BertConfig bert_config_from(const BertTrainOptions& o, int64_t vocab_size, const std::string& fallback) {
  models::BertConfig c;
  if (!o.config_path.empty()) {
    c = models::load_bert_config(o.config_path);
    if (c.vocab_size != vocab_size)
      fail(o.config_path, ": vocab_size is ", c.vocab_size, " but the vocabulary has ", vocab_size, " tokens");
    return c;
  }
  const std::string p = o.preset.empty() ? fallback : o.preset;
  c.vocab_size = vocab_size;
  if (p == "mini") {
    c.hidden_size = 256, c.num_hidden_layers = 4, c.num_attention_heads = 4, c.intermediate_size = 1024;
  } else if (p == "small") {
    c.hidden_size = 512, c.num_hidden_layers = 4, c.num_attention_heads = 8, c.intermediate_size = 2048;
  } else if (p != "base") {
    fail("--preset should be mini, small or base, found '", p, "'");
  }
  c.validate("--preset " + p);
  return c;
}

double linear_warmup_decay(double lr, int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return lr * double(step) / double(std::max<int64_t>(1, warmup_steps));
  return lr * std::max(0.0, double(total_steps - step) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
}

bool decays(const std::string& name) {
  return name.find("bias") == std::string::npos && name.find("LayerNorm") == std::string::npos;
}

void decay_parameters(const std::vector<Tensor>& params, double lr, double weight_decay) {
  if (weight_decay == 0) return;
  NoGradGuard ng;
  // float(1 − lr·wd), as the AdamW kernel rounds its decay factor.
  const float factor = float(1.0 - lr * weight_decay);
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;  // torch skips parameters without a gradient entirely
    Tensor q = p;
    float* d = q.data<float>();
    for (int64_t i = 0, n = q.numel(); i < n; ++i) d[i] *= factor;
  }
}

uint64_t mix_seed(uint64_t a, uint64_t b) {
  // splitmix64 of a combination: nearby (seed, index) pairs give unrelated streams.
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t SampleStream::at(int64_t q) {
  const int64_t pass = q / n_;
  if (pass != pass_) {
    order_.resize(size_t(n_));
    for (int64_t i = 0; i < n_; ++i) order_[size_t(i)] = i;
    Generator g(mix_seed(seed_, uint64_t(pass)));
    for (int64_t i = n_ - 1; i > 0; --i) std::swap(order_[size_t(i)], order_[size_t(g.below(uint64_t(i + 1)))]);
    pass_ = pass;
  }
  return order_[size_t(q % n_)];
}

namespace {

using Clock = std::chrono::steady_clock;

void check_resume_tags(const std::string& path, const train::Metadata& want) {
  const SafetensorsFile f = load_safetensors(path);
  for (const auto& [key, value] : want) {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end() || it->second != value)
      fail(path, " was written by another run: its '", key, "' is ",
           it == f.metadata.end() ? std::string("missing") : "'" + it->second + "'", " but this run has '", value,
           "'");
  }
}

}  // namespace

int64_t bert_total_steps(const BertTrainOptions& o, int64_t train_size, int64_t ranks) {
  if (o.steps > 0) return o.steps;
  const double per_step = double(o.batch_size * ranks * o.accum);
  return std::max<int64_t>(1, int64_t(std::ceil(o.epochs * double(train_size) / per_step)));
}

BertTrainResult run_bert_training(const BertTask& t, const BertTrainOptions& o) {
  if (t.train_size < 1) fail(t.program, ": there are no training samples");
  BertTrainResult r;
  // Data parallelism: N ranks of micro-batch B together take the stream's micro-batches of N·B.
  train::DataParallel* dp = t.parallel;
  const int64_t ranks = dp ? dp->size() : 1, rank = dp ? dp->rank() : 0;
  const bool root = rank == 0;
  const int64_t micro_batch = o.batch_size * ranks;
  const int64_t per_step = micro_batch * o.accum;
  r.total_steps = bert_total_steps(o, t.train_size, ranks);
  r.warmup_steps = int64_t(std::ceil(o.warmup_ratio * double(r.total_steps)));
  const int64_t intervals = (r.total_steps + o.log_every - 1) / o.log_every;

  nn::Module& model = *t.model;
  std::vector<Tensor> params, decayed;
  for (const auto& [name, p] : model.named_parameters()) {
    params.push_back(p);
    if (decays(name)) decayed.push_back(p);
  }
  // AdamW without decay in the optimizer: the decay is applied below to the decayed group only,
  // before the step, which is what torch's AdamW does first (p ← p·(1 − lr·wd)) — the same bits.
  optim::AdamOptions ao;
  ao.lr = o.lr, ao.beta1 = o.beta1, ao.beta2 = o.beta2, ao.eps = o.eps, ao.weight_decay = 0;
  optim::AdamW opt(params, ao);

  train::Metadata tags = t.tags;
  tags["total_steps"] = std::to_string(r.total_steps);
  tags["log_every"] = std::to_string(o.log_every);
  tags["batch_size"] = std::to_string(micro_batch);  // of all processes: resumable with any count
  tags["accum"] = std::to_string(o.accum);
  tags["seed"] = std::to_string(o.seed);
  if (root) create_out_dir(o.out_dir);
  const std::string ckpt = o.out_dir + "/checkpoint.safetensors";
  if (!o.resume.empty()) {  // every rank reads it (it holds the optimizer state too)
    check_resume_tags(o.resume, tags);
    train::LoadedCheckpoint c = train::load_checkpoint(o.resume, model, opt, bool(t.load_state));
    if (t.load_state) t.load_state(c.extra, o.resume);
    r.state = std::move(c.state);
    if (r.state.epochs_done >= intervals)
      fail(o.resume, " has already run all ", r.total_steps, " steps; raise --steps to train further");
  }
  r.first_row = r.state.history.size();
  if (dp) dp->broadcast_parameters();

  train::LoopConfig lc;  // for the callbacks' context and the guard
  lc.epochs = intervals;
  lc.name = t.program;
  train::Context ctx{model, opt, r.state, lc};
  train::MetricsCsvCallback metrics(o.out_dir + "/metrics.csv");
  train::DivergenceGuard guard(lc.divergence);
  SampleStream stream(t.train_size, o.seed);
  std::vector<int64_t> all(static_cast<size_t>(micro_batch)), mine;
  BertTask::Seeds all_seeds(static_cast<size_t>(micro_batch)), my_seeds;

  int64_t ran = 0;
  for (int64_t iv = r.state.epochs_done; iv < intervals; ++iv) {
    if (o.stop_after > 0 && ran == o.stop_after) break;
    const int64_t s0 = iv * o.log_every, s1 = std::min(r.total_steps, s0 + o.log_every);
    ProgressOptions po;
    po.unit = "step";
    std::ostringstream sink;
    if (o.quiet || !root) po.out = &sink;
    Progress bar(s1 - s0, "steps " + std::to_string(s0 + 1) + "-" + std::to_string(s1) + "/" +
                              std::to_string(r.total_steps), po);
    train::EpochStats st;
    double loss_sum = 0, correct = 0, counted = 0;
    const auto t0 = Clock::now();
    model.train();
    for (int64_t s = s0; s < s1; ++s) {
      const double lr = linear_warmup_decay(o.lr, s, r.warmup_steps, r.total_steps);
      if (s == s0) st.lr = lr;
      opt.set_lr(lr);
      opt.zero_grad();
      if (t.before_step) t.before_step(s);
      // Dropout masks: rank 0 draws what a single process draws; the others their own stream.
      if (t.dropout_gen) {
        const uint64_t seed = mix_seed(o.seed ^ 0xD0D0ull, uint64_t(s));
        t.dropout_gen->manual_seed(rank == 0 ? seed : mix_seed(seed, uint64_t(rank)));
      }
      double step_loss = 0, step_correct = 0, step_counted = 0;
      for (int64_t k = 0; k < o.accum; ++k) {
        // Micro-batch j is stream positions j·NB … j·NB + NB − 1, row i seeded by (seed, j, i);
        // rank r takes rows r, r + N, … (dist::shard's rule), so N ranks together take exactly
        // what one process with the N-fold batch takes.
        const int64_t micro = s * o.accum + k;
        const uint64_t micro_seed = mix_seed(o.seed, uint64_t(micro));
        for (int64_t i = 0; i < micro_batch; ++i) {
          all[size_t(i)] = stream.at(micro * micro_batch + i);
          all_seeds[size_t(i)] = mix_seed(micro_seed, uint64_t(i));
        }
        mine.clear(), my_seeds.clear();
        for (int64_t i = rank; i < micro_batch; i += ranks) mine.push_back(all[size_t(i)]), my_seeds.push_back(all_seeds[size_t(i)]);
        BatchLoss bl = t.batch(mine, my_seeds);
        const double lv = bl.loss.item();
        if (!std::isfinite(lv))
          fail(t.program, ": the training loss became ", lv, " at step ", s + 1, "; lower the learning rate (now ",
               o.lr, ")");
        // This rank's share of the micro-batch's loss terms, times N (the reducer divides by N).
        double share = 1;
        if (ranks > 1 && t.loss_terms) {
          const double whole = t.loss_terms(all, all_seeds);
          if (whole > 0) share = double(ranks) * t.loss_terms(mine, my_seeds) / whole;
        }
        const Tensor loss = share == 1 && o.accum == 1 ? bl.loss
                            : share == 1           ? bl.loss * (1.0 / double(o.accum))
                                                   : bl.loss * (share / double(o.accum));
        // Gradients are averaged once per optimizer step: the last micro-batch's backward runs
        // with the reducer, which takes each parameter's accumulated .grad as it becomes final.
        if (dp && k == o.accum - 1)
          dp->backward(loss);
        else
          backward(loss);
        step_loss += lv * share / double(o.accum);
        step_correct += bl.correct;
        step_counted += bl.counted;
      }
      if (dp) {  // the step's figures over all ranks, so every rank's guard decides alike
        std::vector<double> v = {step_loss, step_correct, step_counted};
        dp->sum(v);
        step_loss = v[0] / double(ranks), step_correct = v[1], step_counted = v[2];
      }
      correct += step_correct;
      counted += step_counted;
      if (const std::string why = guard.observe(step_loss); !why.empty())
        fail(t.program, ": ", why, " at step ", s + 1, "; the run is diverging: lower the learning rate (now ", o.lr,
             ")");
      // On the averaged gradient: the same norm, the same clipping on every rank.
      if (o.clip > 0) optim::clip_grad_norm_(params, o.clip);
      decay_parameters(decayed, lr, o.weight_decay);
      opt.step();
      loss_sum += step_loss;
      st.images += per_step;
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      bar.update(1, {{"loss", loss_sum / double(s - s0 + 1)},
                     {"acc", counted > 0 ? correct / counted : 0.0},
                     {"seq/s", secs > 0 ? double(st.images) / secs : 0.0}});
    }
    bar.finish();
    st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    st.loss = loss_sum / double(s1 - s0);
    st.accuracy = counted > 0 ? correct / counted : NAN;
    if (const std::string bad = train::first_non_finite_tensor(model); !bad.empty())
      fail(t.program, ": ", bad, " holds a NaN or an infinity after step ", s1,
           " although the loss stayed finite; the run is diverging: lower the learning rate (now ", o.lr, ")");
    ++ran;
    r.state.epochs_done = iv + 1;
    // Rank 0 alone scores the held-out samples and writes: nothing in training depends on them,
    // and the other ranks' weights are rank 0's.
    if (!root) continue;
    train::EvalResult test;
    test.loss = test.accuracy = NAN;
    if (t.evaluate && o.eval_samples > 0) {
      NoGradGuard ng;
      model.eval();
      test = t.evaluate();
      model.train();
    }
    nlohmann::json row = train::history_row(iv + 1, st, test);
    row["step"] = s1;
    r.state.history.push_back(row);
    if (std::isfinite(test.accuracy)) r.state.best_test_accuracy = std::max(r.state.best_test_accuracy, test.accuracy);
    train::save_checkpoint(ckpt, model, opt, r.state, tags, t.save_state ? t.save_state() : NamedTensors{});
    train::EpochEnd e;
    e.epoch = iv;
    e.train = st;
    e.test = test;
    metrics.on_epoch_end(ctx, e);
    if (!o.quiet)
      std::fprintf(stderr, "%s: step %lld/%lld: loss %.4f acc %.4f, held-out loss %.4f acc %.4f, lr %.3g, %.1f seq/s\n",
                   t.program.c_str(), static_cast<long long>(s1), static_cast<long long>(r.total_steps), st.loss,
                   st.accuracy, test.loss, test.accuracy, st.lr, st.images_per_second());
  }
  r.steps_done = std::min(r.total_steps, r.state.epochs_done * o.log_every);
  r.finished = r.state.epochs_done == intervals;
  return r;
}

nlohmann::json bert_train_summary(const BertTrainResult& r, const BertTrainOptions& o) {
  double seconds = 0, samples = 0;
  for (const auto& row : r.state.history) {
    if (row["seconds"].is_number()) seconds += row["seconds"].get<double>();
    if (row["images"].is_number()) samples += row["images"].get<double>();
  }
  nlohmann::json s;
  s["steps"] = r.total_steps;
  s["steps_done"] = r.steps_done;
  s["warmup_steps"] = r.warmup_steps;
  s["finished"] = r.finished;
  s["train_sequences"] = int64_t(samples);
  s["train_seconds"] = train::round_significant(seconds);
  s["train_sequences_per_second"] = seconds > 0 ? train::round_significant(samples / seconds) : 0.0;
  if (!r.state.history.empty()) {
    const auto& last = r.state.history.back();
    s["last_train_loss"] = last["train_loss"];
    s["last_train_acc"] = last["train_acc"];
    s["last_test_loss"] = last["test_loss"];
    s["last_test_acc"] = last["test_acc"];
  }
  s["threads"] = get_num_threads();
  s["hyperparameters"] = {{"batch_size", o.batch_size}, {"accum", o.accum},     {"lr", o.lr},
                          {"weight_decay", o.weight_decay}, {"warmup_ratio", o.warmup_ratio}, {"clip", o.clip},
                          {"adam_beta1", o.beta1},      {"adam_beta2", o.beta2}, {"adam_eps", o.eps},
                          {"seed", o.seed},             {"log_every", o.log_every}, {"optimizer", "adamw"},
                          {"schedule", "linear warm-up, linear decay"}};
  return s;
}

void write_bert_report(const std::string& path, const nlohmann::json& summary, const BertTrainResult& r,
                       const BertTrainOptions& o) {
  train::ReportExtras extras;
  const int64_t n = std::min<int64_t>(200, r.total_steps);
  for (int64_t i = 0; i <= n; ++i) {
    const int64_t step = std::min(r.total_steps - 1, i * r.total_steps / std::max<int64_t>(1, n));
    extras.lr_curve.push_back({double(step) / double(o.log_every),
                               linear_warmup_decay(o.lr, step, r.warmup_steps, r.total_steps)});
  }
  train::write_report_html(path, summary, r.state.history, extras);
}

void finish_bert_run(const BertTrainOptions& o, const models::BertConfig& config, const nn::Module& model,
                     const std::string& vocab_path, nlohmann::json& s, const BertTrainResult& r,
                     const std::string& command_line, std::chrono::steady_clock::time_point t0) {
  namespace fs = std::filesystem;
  const std::string out = o.out_dir + "/";
  models::save_bert(o.out_dir, config, model);
  if (fs::absolute(vocab_path) != fs::absolute(out + "vocab.txt"))
    fs::copy_file(vocab_path, out + "vocab.txt", fs::copy_options::overwrite_existing);
  s["config"] = nlohmann::json::parse(models::bert_config_json(config));
  s["finch_version"] = finch_version();
  s["command_line"] = command_line;
  s["wall_seconds"] =
      train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  write_json_file(out + "summary.json", s);
  write_bert_report(out + "report.html", s, r, o);
}

}  // namespace finch::apps
