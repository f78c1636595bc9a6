// train_squad: the article split, QA batches, fine-tuning and held-out EM/F1 (squad_train.h).
#include "apps/lib/squad_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include <CLI/CLI.hpp>

#include "apps/lib/distributed.h"
#include "apps/lib/squad_task.h"
#include "apps/lib/bert_sim_check.h"
#include "apps/lib/train_options.h"
#include "autograd/functional.h"
#include "data/squad_eval.h"
#include "data/squad_features.h"
#include "data/wordpiece.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "train/checkpoint.h"
#include "compile/bert_program.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "ops/reduce.h"
#include "train/fingerprint.h"
#include "quant/bert_sim.h"
#include "quant/bert_static.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch::apps {

namespace fs = std::filesystem;

void add_squad_train_options(CLI::App& app, SquadTrainOptions& o) {
  add_bert_train_options(app, o.train, 5e-5);
  app.add_option("--data", o.data_path, "SQuAD JSON file (v1.1 or v2.0)")->required();
  app.add_option("--init", o.init_dir, "start from this Hugging Face BERT directory (train_bert's output) or a train_bert checkpoint.safetensors");
  app.add_option("--vocab", o.vocab_path, "WordPiece vocab.txt (default: --init's vocab.txt)");
  app.add_option("--split-by-article", o.split_fraction, "share of the file's articles trained on; the rest is held out")
      ->check(number_in(1e-9, 1 - 1e-9, "in (0, 1)"));
  app.add_option("--split-seed", o.split_seed, "seed of the article split");
  app.add_option("--max-seq-length", o.max_seq_length, "tokens per window")->check(CLI::Range(int64_t(8), int64_t(4096)));
  app.add_option("--doc-stride", o.doc_stride, "tokens shared by consecutive windows")
      ->check(CLI::Range(int64_t(0), int64_t(4096)));
  app.add_option("--max-query-length", o.max_query_length, "question tokens kept")
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--n-best", o.n_best, "start/end candidates per window")->check(CLI::Range(int64_t(1), int64_t(1000)));
  app.add_option("--max-answer-length", o.max_answer_length, "longest answer in tokens")
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--eval-batch-size", o.eval_batch_size, "windows per forward pass when scoring")
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--eval-limit", o.eval_limit, "score only the first N held-out questions (0: all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  app.add_option("--predictions", o.predictions_path, "predictions file (default: OUT/predictions.json)");
  app.add_flag("--qat", o.qat,
               "quantization-aware fine-tuning of --init for the static int8 program: the simulated int8 encoder in the "
               "forward, straight-through gradients; writes OUT/model-int8-static.finch, checked equal to the "
               "simulation bit for bit");
  app.add_option("--qat-observer-steps", o.qat_observer_steps,
                 "--qat: steps with the range observers on before they freeze (-1: half the steps)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  app.add_option("--qat-averaging", o.qat_averaging, "--qat: moving-average constant of the range observers")
      ->check(number_in(1e-9, 1, "in (0, 1]"));
  app.add_flag("--eval-int8-static", o.eval_int8_static,
               "also score the held-out questions with a post-training static int8 program of the final weights");
  app.add_option("--calibration-windows", o.calibration_windows,
                 "--eval-int8-static: training windows the program is calibrated on")
      ->check(CLI::Range(int64_t(1), int64_t(100000)));
}

std::vector<bool> split_by_article(const std::vector<data::SquadExample>& examples, double fraction, uint64_t seed) {
  if (!(fraction > 0 && fraction < 1)) fail("--split-by-article should be a fraction in (0, 1), found ", fraction);
  std::vector<std::string> titles;
  std::map<std::string, size_t> index;
  for (const auto& ex : examples)
    if (index.emplace(ex.title, titles.size()).second) titles.push_back(ex.title);
  const size_t n = titles.size();
  if (n < 2) fail("--split-by-article needs at least two articles, the file has ", n);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  Generator g(seed);
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[size_t(g.below(uint64_t(i + 1)))]);
  const size_t k = std::clamp<size_t>(size_t(std::llround(fraction * double(n))), 1, n - 1);
  std::vector<bool> article_train(n, false);
  for (size_t i = 0; i < k; ++i) article_train[order[i]] = true;
  std::vector<bool> train(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) train[i] = article_train[index.at(examples[i].title)];
  return train;
}

namespace {

// The BERT weights of a train_bert (masked-LM) or transformers directory into a fresh QA model:
// every bert.* tensor must be there (the pooler and the MLM head are not used); qa_outputs is
// taken when the directory has it, else it keeps its seeded initialisation.
void load_encoder_weights(const nn::StateDict& weights, const std::string& source,
                          models::BertForQuestionAnswering& model) {
  nn::StateDict want;
  for (const auto& [name, t] : weights)
    if (name.rfind("bert.pooler.", 0) != 0 && name.rfind("cls.", 0) != 0) want.insert(name, t);
  const nn::LoadResult lr = model.load_state_dict(want, /*strict=*/false);
  for (const std::string& m : lr.missing_keys)
    if (m.rfind("qa_outputs.", 0) != 0) fail(source, " has no tensor '", m, "' (a BERT encoder needs it)");
  for (const std::string& u : lr.unexpected_keys) fail(source, " has a tensor '", u, "' that BERT does not have");
}

bool is_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// A train_bert checkpoint.safetensors (a run stopped before its end): the model's size is its
// "config" metadata, the weights its "model." tensors.
models::BertConfig checkpoint_config(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("config");
  if (it == f.metadata.end() || f.metadata.count("format_run") == 0 || f.metadata.at("format_run") != "train_bert")
    fail(path, ": --init takes a Hugging Face directory or a train_bert checkpoint.safetensors, and this file is "
               "neither (no train_bert 'config' metadata)");
  return models::parse_bert_config(it->second, path + " (config metadata)");
}

void load_encoder(const std::string& init, const models::BertConfig& c, models::BertForQuestionAnswering& model) {
  if (is_file(init)) {
    models::BertForMaskedLM mlm(c);
    train::load_weights(init, mlm);
    return load_encoder_weights(mlm.state_dict(), init, model);
  }
  const models::BertCheckpoint ck = models::read_bert_checkpoint(init);
  load_encoder_weights(ck.weights, ck.weights_path, model);
}

struct Window {
  std::vector<int64_t> ids, types, mask;
  int64_t start = 0, end = 0;
};

}  // namespace

int run_squad_training(SquadTrainOptions o, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(o.train);
  set_num_threads(o.train.threads);
  if (o.vocab_path.empty()) {
    if (o.init_dir.empty()) fail("--vocab is required without --init (the vocabulary of the new model)");
    if (is_file(o.init_dir)) fail("--vocab is required with a checkpoint file as --init (", o.init_dir, ")");
    o.vocab_path = (fs::path(o.init_dir) / "vocab.txt").string();
  }
  const data::WordPieceTokenizer tok = data::WordPieceTokenizer::from_file(o.vocab_path);
  models::BertConfig config;
  if (!o.init_dir.empty()) {
    if (!o.train.config_path.empty() || !o.train.preset.empty())
      fail("--init ", o.init_dir, " sets the model size; leave out --config and --preset");
    config = is_file(o.init_dir) ? checkpoint_config(o.init_dir)
                                 : models::load_bert_config((fs::path(o.init_dir) / "config.json").string());
    if (config.vocab_size != tok.size())
      fail(o.init_dir, " has vocab_size ", config.vocab_size, " but ", o.vocab_path, " has ", tok.size(),
           " tokens: the vocabulary does not match the checkpoint");
  } else {
    config = bert_config_from(o.train, tok.size(), "mini");
  }
  if (o.max_seq_length > config.max_position_embeddings)
    fail("--max-seq-length ", o.max_seq_length, " is longer than the model's max_position_embeddings (",
         config.max_position_embeddings, ")");
  data::SquadFeatureOptions fo;
  fo.max_seq_length = o.max_seq_length, fo.doc_stride = o.doc_stride, fo.max_query_length = o.max_query_length;
  data::validate(fo);
  // Under mpirun: the options, model size and vocabulary compared before the file is read.
  Fingerprint launch = bert_train_fingerprint(o.train);
  uint64_t vocab_hash = train::kFingerprintSeed;
  for (int32_t i = 0; i < int32_t(tok.size()); ++i) vocab_hash = train::fingerprint_hash(tok.token(i) + "\n", vocab_hash);
  launch.insert(launch.end(), {{"the model's config", models::bert_config_json(config)},
                               {"--vocab (hash of its tokens)", train::fingerprint_hex(vocab_hash)},
                               {"--init", o.init_dir},
                               {"--split-by-article", std::to_string(o.split_fraction)},
                               {"--split-seed", std::to_string(o.split_seed)},
                               {"--max-seq-length", std::to_string(o.max_seq_length)},
                               {"--doc-stride", std::to_string(o.doc_stride)},
                               {"--max-query-length", std::to_string(o.max_query_length)}});
  check_launch(launch, o.train.dist_timeout);

  const std::vector<data::SquadExample> examples = data::read_squad(o.data_path);
  const std::vector<bool> is_train = split_by_article(examples, o.split_fraction, o.split_seed);
  std::vector<size_t> train_ex, test_ex;
  for (size_t i = 0; i < examples.size(); ++i) (is_train[i] ? train_ex : test_ex).push_back(i);
  if (o.eval_limit > 0 && int64_t(test_ex.size()) > o.eval_limit) test_ex.resize(size_t(o.eval_limit));
  bool version_2 = false;
  for (const auto& ex : examples) version_2 = version_2 || ex.is_impossible;

  // Features of every example, made in parallel, kept in example order.
  std::vector<std::vector<data::SquadFeature>> feats(examples.size());
  parallel_for(0, int64_t(examples.size()), 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) feats[size_t(i)] = data::make_squad_features(examples[size_t(i)], i, tok, fo);
  });
  auto window_of = [](const data::SquadFeature& f) {
    Window w;
    w.ids.assign(f.input_ids.begin(), f.input_ids.end());
    w.types.assign(f.token_type_ids.begin(), f.token_type_ids.end());
    w.mask.assign(f.attention_mask.begin(), f.attention_mask.end());
    w.start = f.start_position, w.end = f.end_position;
    return w;
  };
  std::vector<Window> train_w, heldout_w;
  for (size_t i : train_ex)
    for (const auto& f : feats[i]) train_w.push_back(window_of(f));
  for (size_t i : test_ex)
    for (const auto& f : feats[i])
      if (int64_t(heldout_w.size()) < o.train.eval_samples) heldout_w.push_back(window_of(f));

  models::BertForQuestionAnswering model(config, false, mix_seed(o.train.seed, 0x9A));
  if (!o.init_dir.empty()) load_encoder(o.init_dir, config, model);
  const int64_t S = o.max_seq_length;
  const compile::BertProgramSpec spec = bert_program_spec(config, S);

  // --qat: the simulated static int8 encoder over the model's weights.
  std::unique_ptr<quant::BertStaticSim> sim;
  if (o.qat) {
    if (o.init_dir.empty()) fail("--qat fine-tunes a trained model: give it with --init (e.g. a train_squad output)");
    if (o.qat_observer_steps == 0)
      fail("--qat-observer-steps 0 would freeze the range observers before they saw a batch: give at least 1");
    // Each process would calibrate its own ranges, so the processes would train different simulations.
    if (dist::world().size() > 1) fail("--qat runs in one process: its range observers are not synchronized across processes; run it without mpirun");
    sim = std::make_unique<quant::BertStaticSim>(model, spec);
    sim->enable_observers(true, o.qat_averaging);
  }
  // The start and end logits [B, S] of a batch: the float model, or its simulation under --qat.
  auto logits_of = [&](const Tensor& ids, const Tensor& types, const Tensor& mask) {
    if (sim) {
      const quant::BertSimOutputs so = sim->forward(ids, types, mask);
      return std::pair{so.start_logits, so.end_logits};
    }
    const auto qo = model.forward(ids, mask, types);
    return std::pair{qo.start_logits, qo.end_logits};
  };

  // transformers' loss: (CE(start) + CE(end)) / 2 over the windows; an answer outside the window
  // points at [CLS] (position 0), as the features already say.
  auto qa_loss = [&](const std::vector<const Window*>& rows, BatchLoss& out) {
    const int64_t B = int64_t(rows.size());
    std::vector<int64_t> ids, types, mask, st, en;
    for (const Window* w : rows) {
      ids.insert(ids.end(), w->ids.begin(), w->ids.end());
      types.insert(types.end(), w->types.begin(), w->types.end());
      mask.insert(mask.end(), w->mask.begin(), w->mask.end());
      st.push_back(w->start), en.push_back(w->end);
    }
    const auto [sl, el] = logits_of(from_vector(ids, {B, S}), from_vector(types, {B, S}), from_vector(mask, {B, S}));
    out.loss = (cross_entropy(sl, from_vector(st, {B})) + cross_entropy(el, from_vector(en, {B}))) * 0.5;
    const auto ps = ops::argmax(sl.detach(), 1).to_vector<int64_t>();
    const auto pe = ops::argmax(el.detach(), 1).to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b) out.correct += ps[size_t(b)] == st[size_t(b)] && pe[size_t(b)] == en[size_t(b)];
    out.counted += double(B);
  };

  BertTask task;
  task.program = "train_squad";
  task.model = &model;
  task.dropout_gen = model.bert->dropout_gen.get();
  task.train_size = int64_t(train_w.size());
  // --qat runs in one process (refused under mpirun above), so its steps are one process's.
  const int64_t observer_steps = o.qat_observer_steps >= 0
                                     ? o.qat_observer_steps
                                     : (bert_total_steps(o.train, int64_t(train_w.size()), 1) + 1) / 2;
  if (sim) {
    // The observers freeze at step observer_steps; a resumed run freezes them at its first step
    // when the checkpoint is past it. Their ranges travel in the checkpoint ("extra.qat_range.*").
    task.before_step = [&](int64_t step) {
      if (sim->observers_enabled() && step >= observer_steps) sim->enable_observers(false);
    };
    task.save_state = [&] { return sim->state(); };
    task.load_state = [&](const NamedTensors& entries, const std::string& file) { sim->load_state(entries, file); };
  }
  task.batch = [&](const std::vector<int64_t>& samples, const BertTask::Seeds&) {
    std::vector<const Window*> rows;
    for (int64_t s : samples) rows.push_back(&train_w[size_t(s)]);
    BatchLoss bl;
    qa_loss(rows, bl);
    return bl;
  };
  if (!heldout_w.empty())
    task.evaluate = [&] {
      // The held-out windows must not move the QAT ranges.
      const bool observing = sim && sim->observers_enabled();
      if (observing) sim->enable_observers(false);
      double loss_sum = 0, correct = 0, counted = 0;
      for (size_t b0 = 0; b0 < heldout_w.size(); b0 += size_t(o.eval_batch_size)) {
        std::vector<const Window*> rows;
        for (size_t i = b0; i < std::min(heldout_w.size(), b0 + size_t(o.eval_batch_size)); ++i)
          rows.push_back(&heldout_w[i]);
        BatchLoss bl;
        qa_loss(rows, bl);
        loss_sum += bl.loss.item() * bl.counted;
        correct += bl.correct;
        counted += bl.counted;
      }
      if (observing) sim->enable_observers(true, o.qat_averaging);
      train::EvalResult r;
      r.count = int64_t(counted);
      r.loss = loss_sum / counted;
      r.accuracy = correct / counted;
      return r;
    };
  task.tags = {{"format_run", "train_squad"},
               {"config", models::bert_config_json(config)},
               {"data", fs::path(o.data_path).filename().string()},
               {"split", std::to_string(o.split_fraction) + "/" + std::to_string(o.split_seed)},
               {"init", o.init_dir},
               {"max_seq_length", std::to_string(S)},
               {"doc_stride", std::to_string(o.doc_stride)},
               {"train_windows", std::to_string(train_w.size())}};
  if (sim) {  // a --qat checkpoint resumes only as the same --qat run (and holds its ranges)
    task.tags["qat"] = "static int8 simulation";
    task.tags["qat_observer_steps"] = std::to_string(observer_steps);
    task.tags["qat_averaging"] = nlohmann::json(o.qat_averaging).dump();
  }
  // Under mpirun: the training windows (every token, type and answer position), the initial
  // weights' layout compared, then the reducer (the weights themselves are rank 0's from here on).
  uint64_t data_hash = train::kFingerprintSeed;
  for (const Window& w : train_w) {
    for (const auto* v : {&w.ids, &w.types, &w.mask})
      data_hash = train::fingerprint_hash(v->data(), v->size() * sizeof(int64_t), data_hash);
    const int64_t span[2] = {w.start, w.end};
    data_hash = train::fingerprint_hash(span, sizeof(span), data_hash);
  }
  const std::unique_ptr<train::DataParallel> dp = start_data_parallel(
      model,
      {{"the training windows", std::to_string(train_w.size()) + " of " + std::to_string(S) + " tokens"},
       {"the training windows' content (hash of every token and answer)", train::fingerprint_hex(data_hash)},
       {"the held-out questions", std::to_string(test_ex.size())}},
      o.train.bucket_mb, false, o.train.dist_timeout);
  task.parallel = dp.get();
  const int64_t ranks = dp ? dp->size() : 1;
  if (!o.train.quiet && writes_files())
    std::cerr << "train_squad: BERT " << config.num_hidden_layers << " x " << config.hidden_size << " ("
              << model.num_parameters() << " parameters, " << (o.init_dir.empty() ? "random init" : "from " + o.init_dir)
              << "), " << train_ex.size() << " training questions (" << train_w.size() << " windows of " << S << "), "
              << test_ex.size() << " held-out, batch " << o.train.batch_size << " x " << o.train.accum << ", lr "
              << o.train.lr << ", " << get_num_threads() << " threads"
              << (dp ? ", " + std::to_string(ranks) + " processes (" + dist::world().backend() +
                           "), effective batch " + std::to_string(o.train.batch_size * ranks) + " x " +
                           std::to_string(o.train.accum)
                     : "")
              << "\n";
  const BertTrainResult r = run_bert_training(task, o.train);
  // Rank 0 alone scores the held-out questions and writes the results.
  if (!writes_files()) return 0;

  // Held-out EM/F1: every window of each held-out question, decoded as infer_squad does, with the
  // logits of `forward` (the model, its simulation, or a program).
  using Logits = std::pair<Tensor, Tensor>;
  data::SquadDecodeOptions dopt;
  dopt.n_best = o.n_best, dopt.max_answer_length = o.max_answer_length, dopt.version_2 = version_2;
  auto score_heldout = [&](const std::function<Logits(const Tensor&, const Tensor&, const Tensor&)>& forward,
                           nlohmann::ordered_json* answers) {
    std::vector<std::pair<std::string, std::string>> texts;
    const data::SquadScore score =
        score_questions(examples, feats, test_ex, S, forward, dopt, o.eval_batch_size, answers ? &texts : nullptr);
    for (auto& [id, text] : texts) (*answers)[id] = std::move(text);
    return score;
  };
  const auto te0 = std::chrono::steady_clock::now();
  model.eval();
  if (sim) sim->enable_observers(false);
  nlohmann::ordered_json answers = nlohmann::ordered_json::object();
  const data::SquadScore score = score_heldout(logits_of, &answers);
  const double eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - te0).count();

  // --qat: the static int8 program of the trained weights and the simulation's ranges, which must
  // compute the simulation's logits bit for bit (checked on the first held-out windows).
  nlohmann::json int8_summary;
  auto deployed = [](runtime::Program& p) {
    return [&p](const Tensor& ids, const Tensor& types, const Tensor& mask) {
      const std::vector<Tensor> y = p.run({ids, types, mask});
      return Logits{y[0], y[1]};
    };
  };
  if (sim) {
    runtime::Graph g = quant::lower_bert_static(compile::bert_qa_program(model, spec), sim->params());
    g.meta["vocab_size"] = config.vocab_size;
    g.meta["calibration"]["observer"] = "qat (moving-average minmax)";
    const std::string path = o.train.out_dir + "/model-int8-static.finch";
    runtime::write_program(g, path);
    runtime::Program p(runtime::read_program(path), path);
    SimCheck check;
    for (size_t b0 = 0; b0 < heldout_w.size() && b0 < 4 * size_t(o.eval_batch_size); b0 += size_t(o.eval_batch_size)) {
      std::vector<int64_t> ids, types, mask;
      const size_t b1 = std::min(heldout_w.size(), b0 + size_t(o.eval_batch_size));
      for (size_t i = b0; i < b1; ++i) {
        ids.insert(ids.end(), heldout_w[i].ids.begin(), heldout_w[i].ids.end());
        types.insert(types.end(), heldout_w[i].types.begin(), heldout_w[i].types.end());
        mask.insert(mask.end(), heldout_w[i].mask.begin(), heldout_w[i].mask.end());
      }
      const int64_t B = int64_t(b1 - b0);
      check_against_sim(p, *sim, {from_vector(ids, {B, S}), from_vector(types, {B, S}), from_vector(mask, {B, S})},
                        check);
    }
    std::printf("train_squad --qat: %s: %s\n", path.c_str(), check.summary().c_str());
    if (!check.agree()) fail("train_squad --qat: the exported program ", path, " differs from the simulation it was trained as");
    int8_summary = {{"program", path}, {"verified_windows", check.windows}, {"agree", true}};
  } else if (o.eval_int8_static) {
    // Post-training static int8 of the final weights, calibrated on training windows.
    std::vector<std::vector<Tensor>> samples;
    for (size_t i = 0; i < train_w.size() && int64_t(i) < o.calibration_windows; ++i)
      samples.push_back({from_vector(train_w[i].ids, {1, S}), from_vector(train_w[i].types, {1, S}),
                         from_vector(train_w[i].mask, {1, S})});
    runtime::Program p(quant::quantize_bert_static(compile::bert_qa_program(model, spec), samples), "ptq");
    const data::SquadScore q = score_heldout(deployed(p), nullptr);
    std::printf("train_squad: static int8 (post-training, %zu calibration windows): held-out EM %.2f F1 %.2f\n",
                samples.size(), q.exact, q.f1);
    int8_summary = {{"method", "post-training static int8"}, {"calibration_windows", int64_t(samples.size())},
                    {"exact_match", q.exact}, {"f1", q.f1}};
  }

  const std::string out = o.train.out_dir + "/";
  const std::string pred_path = o.predictions_path.empty() ? out + "predictions.json" : o.predictions_path;
  write_file_atomically(pred_path, answers.dump(1) + "\n");
  nlohmann::json s = bert_train_summary(r, o.train);
  s["model"] = "BertForQuestionAnswering";
  s["dataset"] = fs::path(o.data_path).filename().string();
  s["init"] = o.init_dir.empty() ? "random" : o.init_dir;
  s["parameters"] = model.num_parameters();
  s["split"] = {{"by_article", o.split_fraction}, {"seed", o.split_seed}};
  s["train_questions"] = int64_t(train_ex.size());
  s["train_samples"] = int64_t(train_w.size());
  s["test_questions"] = int64_t(test_ex.size());
  s["exact_match"] = score.exact;
  s["f1"] = score.f1;
  s["test_accuracy"] = score.exact / 100.0;  // the report's headline: EM as a fraction
  s["eval_seconds"] = train::round_significant(eval_s);
  s["max_seq_length"] = S;
  s["doc_stride"] = o.doc_stride;
  s["distributed"] = bert_distributed_summary(dp.get(), o.train, r);
  if (sim) s["qat"] = {{"observer_steps", observer_steps}, {"averaging", o.qat_averaging}};
  if (!int8_summary.is_null()) s["int8_static"] = int8_summary;
  finish_bert_run(o.train, config, model, o.vocab_path, s, r, command_line, t0);
  std::printf("train_squad: %lld of %lld steps; held-out %lld questions%s: EM %.2f F1 %.2f; model: %s\n",
              static_cast<long long>(r.steps_done), static_cast<long long>(r.total_steps),
              static_cast<long long>(score.total), sim ? " (static int8 simulation == program)" : "", score.exact,
              score.f1, o.train.out_dir.c_str());
  return 0;
}

}  // namespace finch::apps
