// finch prune / lowrank / compile on a BERT directory (bert_compress_cmd.h): load → score →
// compress → [fine-tune] → score → save.
#include "apps/lib/bert_compress_cmd.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/lib/bert_program_build.h"
#include "apps/lib/squad_task.h"
#include "apps/lib/train_options.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "compress/lowrank.h"
#include "compress/structured.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "models/bert_io.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/checkpoint.h"
#include "train/loop.h"

namespace finch::apps {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kBertFlags = {"--vocab",      "--split-by-article", "--split-seed",
                                             "--max-seq-length", "--doc-stride",   "--max-query-length",
                                             "--fine-tune-steps", "--eval-limit",  "--eval-batch-size",
                                             "--log-every"};

}  // namespace

void add_bert_squad_flags(CLI::App& app, BertSquadFlags& f) {
  app.add_option("--vocab", f.vocab, "BERT: WordPiece vocab.txt (default: the directory's)");
  app.add_option("--split-by-article", f.split, "BERT: share of --data's articles fine-tuned on; the rest is scored")
      ->check(number_in(1e-9, 1 - 1e-9, "in (0, 1)"))
      ->capture_default_str();
  app.add_option("--split-seed", f.split_seed, "BERT: seed of the article split (train_squad's)")->capture_default_str();
  app.add_option("--max-seq-length", f.max_seq_length, "BERT: tokens per window")
      ->check(CLI::Range(int64_t(8), int64_t(4096)))
      ->capture_default_str();
  app.add_option("--doc-stride", f.doc_stride, "BERT: tokens shared by consecutive windows")
      ->check(CLI::Range(int64_t(0), int64_t(4096)))
      ->capture_default_str();
  app.add_option("--max-query-length", f.max_query_length, "BERT: question tokens kept")
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str();
  app.add_option("--fine-tune-steps", f.fine_tune_steps, "BERT: optimizer steps of fine-tuning (instead of "
                                                         "--fine-tune-epochs passes over the training windows)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  app.add_option("--eval-limit", f.eval_limit, "BERT: score only the first N held-out questions (0: all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  app.add_option("--eval-batch-size", f.eval_batch_size, "BERT: windows per forward pass when scoring")
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str();
  app.add_option("--log-every", f.log_every, "BERT: fine-tuning steps per metrics.csv row")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))
      ->capture_default_str();
}

void refuse_bert_flags(const CLI::App& app, const std::string& checkpoint) {
  for (const auto& f : kBertFlags)
    if (app.count(f) > 0)
      fail(f, " is for a BERT directory (config.json, model.safetensors, vocab.txt, as train_squad writes), and ",
           checkpoint, " is not one");
}

bool is_bert_directory(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) || !fs::is_regular_file(fs::path(path) / "config.json", ec)) return false;
  std::ifstream in(fs::path(path) / "config.json");
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  // transformers writes model_type; a config without one is read as BERT by load_bert_config too.
  return j.is_object() && (!j.contains("model_type") || j["model_type"] == "bert");
}

namespace {

// --distill: fine-tuning against the teacher's start/end logits (squad_task.h's QaDistill).
struct DistillFrom {
  bool on = false;
  std::string teacher;  // default: the input directory (the uncut model)
  double temperature = 4, alpha = 0.9;
};

nlohmann::json distill_json(const DistillFrom& d, const std::string& from) {
  return {{"temperature", d.temperature}, {"alpha", d.alpha}, {"teacher", from}};
}

// What both commands share: the loaded model, its data, its scores and its output.
struct BertRun {
  const TrainOptions& t;
  const BertSquadFlags& f;
  std::string vocab;
  models::BertConfig config;
  std::shared_ptr<models::BertForQuestionAnswering> model;
  SquadSplit squad;
  data::SquadDecodeOptions decode;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

  BertRun(const TrainOptions& t_, const BertSquadFlags& f_, const std::string& command) : t(t_), f(f_) {
    if (t.out_dir.empty()) fail("finch ", command, ": --out is required");
    if (t.data_dir.empty())
      fail("finch ", command, " on the BERT directory ", t.checkpoint, " needs --data: a SQuAD JSON file "
           "(fine-tuned on --split-by-article of its articles, scored on the rest)");
    set_num_threads(t.threads);
    vocab = f.vocab.empty() ? (fs::path(t.checkpoint) / "vocab.txt").string() : f.vocab;
    const data::WordPieceTokenizer tok = data::WordPieceTokenizer::from_file(vocab);
    model = models::load_bert_for_question_answering(t.checkpoint);
    config = model->bert->config;
    if (config.vocab_size != tok.size())
      fail(t.checkpoint, " has vocab_size ", config.vocab_size, " but ", vocab, " has ", tok.size(),
           " tokens: the vocabulary does not match the checkpoint");
    if (f.max_seq_length > config.max_position_embeddings)
      fail("--max-seq-length ", f.max_seq_length, " is longer than the model's max_position_embeddings (",
           config.max_position_embeddings, ")");
    SquadSplitOptions so;
    so.fraction = f.split, so.seed = f.split_seed, so.eval_limit = f.eval_limit;
    so.features.max_seq_length = f.max_seq_length, so.features.doc_stride = f.doc_stride;
    so.features.max_query_length = f.max_query_length;
    squad = load_squad_split(t.data_dir, tok, so);
    decode.version_2 = squad.version_2;
  }

  data::SquadScore score() {
    model->eval();
    return score_heldout(
        squad,
        [this](const Tensor& ids, const Tensor& types, const Tensor& mask) {
          const auto o = model->forward(ids, mask, types);
          return std::pair{o.start_logits, o.end_logits};
        },
        decode, f.eval_batch_size);
  }

  // train_squad's loop over the training windows: --fine-tune-steps steps, or --fine-tune-epochs
  // passes; AdamW with linear warm-up (10 %) and decay, metrics.csv and checkpoint.safetensors in
  // --out. Returns the steps run.
  int64_t fine_tune(int64_t epochs, bool lr_given, const DistillFrom& d) {
    if (f.fine_tune_steps == 0 && epochs == 0) return 0;
    BertTrainOptions b;
    b.out_dir = t.out_dir;
    b.seed = t.seed;
    b.threads = t.threads;
    b.batch_size = f.batch_given ? t.batch_size : 16;
    b.steps = f.fine_tune_steps;
    b.epochs = double(std::max<int64_t>(epochs, 1));
    b.lr = lr_given ? t.lr : 5e-5;  // train_squad's default
    b.log_every = f.log_every;
    b.eval_samples = 0;
    validate(b);
    std::shared_ptr<models::BertForQuestionAnswering> teacher;
    QaDistill qd;
    if (d.on) {
      const std::string from = d.teacher.empty() ? t.checkpoint : d.teacher;
      teacher = models::load_bert_for_question_answering(from);
      if (teacher->bert->config.vocab_size != config.vocab_size)
        fail("the teacher ", from, " has vocab_size ", teacher->bert->config.vocab_size, " but ", t.checkpoint, " has ",
             config.vocab_size, ": distillation needs the same vocabulary");
      qd = {teacher.get(), d.temperature, d.alpha};
      std::cerr << "distilling from " << from << " (temperature " << d.temperature << ", alpha " << d.alpha << ")\n";
      distilled_from = from;
    }
    const BertTask task = squad_qa_task(squad, *model, "finch", qd);
    const BertTrainResult r = run_bert_training(task, b);
    // The resume state (weights + AdamW moments, 3x the model) is for train_squad --resume; the
    // fine-tuned model is saved as the directory, so only metrics.csv (the log) stays.
    std::error_code ec;
    fs::remove(fs::path(t.out_dir) / "checkpoint.safetensors", ec);
    lr_used = b.lr;
    return r.steps_done;
  }
  double lr_used = 0;
  std::string distilled_from;

  void save(nlohmann::json& s, int64_t params_before, const data::SquadScore& before, const data::SquadScore& after,
            const std::string& command_line) {
    create_out_dir(t.out_dir);
    const std::string out = t.out_dir + "/";
    models::save_bert(t.out_dir, config, *model);
    // The sizes the directory now records (config.json's finch_* keys; bert_config.h).
    const models::BertConfig saved = models::load_bert_config(out + "config.json");
    std::vector<int64_t> heads, ffn;
    for (int64_t l = 0; l < saved.num_hidden_layers; ++l)
      heads.push_back(saved.heads_of(l)), ffn.push_back(saved.intermediate_of(l));
    s["layer_heads"] = heads;
    s["layer_intermediate_sizes"] = ffn;
    nlohmann::json ranks = nlohmann::json::object();
    for (const auto& [name, v] : saved.layer_ranks) ranks[name] = v;
    s["layer_ranks"] = ranks;  // 0: dense
    const std::string vocab_out = out + "vocab.txt";
    std::error_code ec;
    if (!fs::equivalent(vocab, vocab_out, ec)) {
      std::ifstream in(vocab, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      write_file_atomically(vocab_out, text);
    }
    s["model"] = "BertForQuestionAnswering";
    s["checkpoint"] = t.checkpoint;
    s["dataset"] = fs::path(t.data_dir).filename().string();
    s["split"] = {{"by_article", f.split}, {"seed", f.split_seed}};
    s["train_windows"] = int64_t(squad.train_windows.size());
    s["test_questions"] = int64_t(squad.heldout.size());
    s["max_seq_length"] = f.max_seq_length;
    s["doc_stride"] = f.doc_stride;
    s["parameters_before"] = params_before;
    s["parameters_after"] = model->num_parameters();
    s["f1_before"] = before.f1;
    s["exact_match_before"] = before.exact;
    s["f1"] = after.f1;
    s["exact_match"] = after.exact;
    // The fields every compress command writes: accuracy as a fraction (EM, train_squad's headline).
    s["test_accuracy_before"] = before.exact / 100.0;
    s["test_accuracy"] = after.exact / 100.0;
    s["finch_version"] = finch_version();
    s["command_line"] = command_line;
    s["wall_seconds"] =
        train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    write_json_file(out + "summary.json", s);
  }
};

void print_result(const char* what, int64_t before_p, int64_t after_p, const data::SquadScore& before,
                  const data::SquadScore& mid, const data::SquadScore& after, const std::string& out) {
  std::printf("%s: parameters %lld -> %lld (%.3fx), held-out F1 %.2f -> %.2f (%.2f before fine-tuning), EM %.2f -> "
              "%.2f; %s/\n",
              what, static_cast<long long>(before_p), static_cast<long long>(after_p), double(after_p) / double(before_p),
              before.f1, after.f1, mid.f1, before.exact, after.exact, out.c_str());
}

}  // namespace

int run_bert_prune(const PruneOptions& o, const BertSquadFlags& f, const std::string& command_line) {
  if (!o.structured)
    fail("finch prune on the BERT directory ", o.train.checkpoint, " removes whole heads and FFN neurons: give "
         "--structured (unstructured masks are for image and series models)");
  if (o.score == "bn") fail("finch prune on BERT: --score bn needs BatchNorm, and BERT has LayerNorm: use l1, l2 or taylor");
  BertRun run(o.train, f, "prune");
  auto& m = *run.model;
  const int64_t params_before = m.num_parameters();
  const data::SquadScore before = run.score();
  std::cerr << "finch prune: BERT " << run.config.num_hidden_layers << " x " << run.config.hidden_size << " from "
            << o.train.checkpoint << " (" << params_before << " parameters, held-out F1 " << before.f1 << ", "
            << run.squad.heldout.size() << " questions)\n";
  compress::StructuredOptions so;
  so.amount = o.amount;
  so.score = compress::parse_score(o.score);
  so.global = o.global;
  // The graph is captured on one training window: heads tie through the attention op to their
  // columns of attention.output.dense, FFN neurons through the activation (compress/channel_groups.h).
  const auto [e, w] = run.squad.train_windows.front();
  const auto& ids = run.squad.features[e][w].input_ids;
  const Tensor example = from_vector(std::vector<int64_t>(ids.begin(), ids.end()), {1, int64_t(ids.size())});
  const int64_t batch = f.batch_given ? o.train.batch_size : 16;
  m.eval();
  const auto r = compress::prune_structured(m, example, so, [&](nn::Module&) {
    m.zero_grad();
    accumulate_squad_gradients(run.squad, m, o.taylor_batches * batch, batch);
  });
  if (r.prunable_channels == 0) fail(o.train.checkpoint, ": found no heads or FFN neurons that pruning can remove");
  const data::SquadScore pruned = run.score();
  std::cerr << "removed " << r.removed_channels << " of " << r.prunable_channels << " heads and FFN neurons ("
            << o.score << (o.global ? ", global" : ", per group") << "): " << r.parameters_after
            << " parameters, held-out F1 before fine-tuning " << pruned.f1 << "\n";
  const DistillFrom dist{o.distill, o.teacher, o.temperature, o.alpha};
  const int64_t steps = run.fine_tune(o.fine_tune_epochs, o.lr_given, dist);
  const data::SquadScore after = steps > 0 ? run.score() : pruned;
  nlohmann::json s;
  s["structured"] = {{"amount", o.amount},
                     {"score", o.score},
                     {"global", o.global},
                     {"prunable_channels", r.prunable_channels},
                     {"removed_channels", r.removed_channels},
                     {"f1_pruned", pruned.f1},
                     {"exact_match_pruned", pruned.exact}};
  s["fine_tune_steps"] = steps;
  if (steps > 0) s["lr"] = run.lr_used;
  if (!run.distilled_from.empty()) s["distill"] = distill_json(dist, run.distilled_from);
  run.save(s, params_before, before, after, command_line);
  print_result("finch prune", params_before, m.num_parameters(), before, pruned, after, o.train.out_dir);
  return 0;
}

int run_bert_lowrank(const LowRankCmdOptions& o, const BertSquadFlags& f, const std::string& command_line) {
  const int rules = (o.rank_fraction > 0) + (o.energy > 0) + (o.compression > 0);
  if (rules != 1) fail("finch lowrank: give exactly one of --rank-fraction, --energy and --compression");
  if (o.global && o.compression <= 0) fail("finch lowrank: --global goes with --compression");
  BertRun run(o.train, f, "lowrank");
  auto& m = *run.model;
  const int64_t params_before = m.num_parameters();
  const data::SquadScore before = run.score();
  std::cerr << "finch lowrank: BERT " << run.config.num_hidden_layers << " x " << run.config.hidden_size << " from "
            << o.train.checkpoint << " (" << params_before << " parameters, held-out F1 " << before.f1 << ")\n";
  compress::LowRankOptions lo;
  lo.rank_fraction = o.rank_fraction, lo.energy = o.energy, lo.compression = o.compression;
  lo.global = o.global;
  lo.conv = false;
  // Only the encoder's Linears have a place in config.json (finch_layer_ranks): the QA head and
  // the pooler stay dense; --skip leaves more (e.g. every attention: "attention").
  lo.skip = {"qa_outputs"};
  if (m.bert->pooler) lo.skip.push_back("bert.pooler");
  for (const std::string& s : o.skip) {
    if (s.rfind("bert.", 0) == 0 || s == "qa_outputs") {
      lo.skip.push_back(s);
      continue;
    }
    // A path under each layer ("attention", "intermediate.dense", "output.dense").
    for (int64_t l = 0; l < run.config.num_hidden_layers; ++l)
      lo.skip.push_back("bert.encoder.layer." + std::to_string(l) + "." + s);
  }
  const compress::LowRankResult r = compress::factorize(m, lo);
  nlohmann::json layers = nlohmann::json::array();
  int64_t factorized = 0;
  for (const auto& l : r.layers) {
    factorized += l.rank > 0;
    nlohmann::json j = {{"module", l.path}, {"out", l.out}, {"fan_in", l.fan_in}, {"full_rank", l.full_rank},
                        {"rank", l.rank}, {"params_before", l.params_before}, {"params_after", l.params_after}};
    if (l.rank > 0) j["kept_energy"] = l.kept_energy;
    if (!l.skipped.empty()) j["left_dense"] = l.skipped;
    layers.push_back(j);
  }
  if (factorized == 0) fail("finch lowrank: no encoder Linear of ", o.train.checkpoint, " shrinks at this rank rule; ask for a lower rank");
  const data::SquadScore mid = run.score();
  std::cerr << "factorized " << factorized << " of " << r.layers.size() << " Linear layers: " << r.params_after
            << " parameters, held-out F1 before fine-tuning " << mid.f1 << "\n";
  const DistillFrom dist{o.distill, o.teacher, o.temperature, o.alpha};
  const int64_t steps = run.fine_tune(o.fine_tune_epochs, o.lr_given, dist);
  const data::SquadScore after = steps > 0 ? run.score() : mid;
  nlohmann::json s;
  s["rule"] = o.rank_fraction > 0 ? nlohmann::json{{"rank_fraction", o.rank_fraction}}
              : o.energy > 0      ? nlohmann::json{{"energy", o.energy}}
                                  : nlohmann::json{{"compression", o.compression}, {"global", o.global}};
  s["f1_factorized"] = mid.f1;
  s["exact_match_factorized"] = mid.exact;
  s["layers"] = layers;
  s["fine_tune_steps"] = steps;
  if (steps > 0) s["lr"] = run.lr_used;
  if (!run.distilled_from.empty()) s["distill"] = distill_json(dist, run.distilled_from);
  run.save(s, params_before, before, after, command_line);
  print_result("finch lowrank", params_before, m.num_parameters(), before, mid, after, o.train.out_dir);
  return 0;
}

int run_bert_distill(const BertDistillOptions& o, const BertSquadFlags& f, const std::string& command_line) {
  BertRun run(o.train, f, "compress (distill)");
  const int64_t params = run.model->num_parameters();
  const data::SquadScore before = run.score();
  std::cerr << "distillation: BERT " << run.config.num_hidden_layers << " x " << run.config.hidden_size << " from "
            << o.train.checkpoint << " (" << params << " parameters, held-out F1 " << before.f1 << ")\n";
  const DistillFrom dist{true, o.teacher, o.temperature, o.alpha};
  const int64_t steps = run.fine_tune(o.epochs, o.lr_given, dist);
  const data::SquadScore after = steps > 0 ? run.score() : before;
  nlohmann::json s;
  s["distill"] = distill_json(dist, run.distilled_from);
  s["fine_tune_steps"] = steps;
  if (steps > 0) s["lr"] = run.lr_used;
  run.save(s, params, before, after, command_line);
  print_result("distillation", params, params, before, before, after, o.train.out_dir);
  return 0;
}

int run_bert_compile(const ProgramOptions& o) {
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  const models::BertConfig c = models::load_bert_config(o.data.checkpoint + "/config.json");
  runtime::Graph g = bert_program_from_dir(o.data.checkpoint, c.max_position_embeddings, BertPrecision::fp32);
  runtime::Program check(g, o.out);  // validate before writing
  runtime::write_program(g, o.out);
  std::printf("fp32 BERT program: %s (%.1f KiB, sequences of 1..%lld tokens; the weights are %.1f KiB)\n", o.out.c_str(),
              double(fs::file_size(o.out)) / 1024.0, static_cast<long long>(c.max_position_embeddings),
              double(fs::file_size(o.data.checkpoint + "/model.safetensors")) / 1024.0);
  return 0;
}

}  // namespace finch::apps
