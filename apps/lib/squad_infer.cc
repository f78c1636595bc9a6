// infer_squad's run: Hugging Face BERT QA directory + SQuAD JSON -> answers, EM/F1, latency,
// throughput, peak memory and the official predictions file.
#include "apps/lib/squad_infer.h"

#include "apps/lib/bert_program_build.h"
#include "apps/lib/bert_sim_check.h"

#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "data/squad.h"
#include "data/squad_eval.h"
#include "data/squad_features.h"
#include "data/wordpiece.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/tensor.h"
#include "models/bert_config.h"
#include "models/bert_io.h"
#include "quant/observer.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch::apps {

namespace fs = std::filesystem;

void add_squad_infer_options(CLI::App& app, SquadInferOptions& o) {
  app.add_option("--model", o.model_dir,
                 "Hugging Face BERT question-answering directory (config.json, vocab.txt, model.safetensors), "
                 "or a BERT program (.finch, from --save-program; needs --vocab)")
      ->required();
  app.add_flag("--int8", o.int8,
               "compile the directory to a dynamic int8 program on the fly (int8 per-channel weights, "
               "activations quantized per row at run time) and answer with it");
  app.add_flag("--fp16", o.fp16,
               "compile the directory to an fp16 program on the fly (f16 Linear weights and embedding tables: about "
               "half the file; computed in fp32 where the CPU has no fp16 arithmetic) and answer with it");
  app.add_flag("--int8-static", o.int8_static,
               "compile the directory to a static int8 program (int8 Linears, attention and GELU with calibrated "
               "scales; docs/bert-integer.md) and answer with it");
  app.add_option("--calibration-questions", o.calibration_questions,
                 "--int8-static: calibrate on the features of the last N questions of --data")
      ->capture_default_str();
  app.add_option("--observer", o.observer, "--int8-static: range observer (minmax, percentile, histogram-mse, ...)")
      ->capture_default_str();
  app.add_flag("--integer-gelu", o.integer_gelu, "--int8-static: I-BERT's integer GELU instead of the float table");
  app.add_option("--save-program", o.save_program_path,
                 "write the program compiled from the directory here (fp32, or int8 with --int8 / --int8-static, or fp16)");
  app.add_flag("--verify", o.verify,
               "int8 (static or dynamic): run the simulated model (quant/bert_sim.h) beside the program and compare "
               "every logit and every simulated value bit for bit (exit 1 when any differs)");
  app.add_option("--weights", o.weights_dir,
                 "--verify with a .finch program as --model: the Hugging Face directory of the float weights it was "
                 "made from");
  app.add_option("--data", o.data_path, "SQuAD v1.1 or v2.0 JSON file (e.g. dev-v1.1.json)")->required();
  app.add_option("--vocab", o.vocab_path, "WordPiece vocabulary (default: MODEL/vocab.txt)");
  app.add_option("--predictions", o.predictions_path, "write {question id: answer text} here (official format)");
  app.add_option("--logits", o.logits_path,
                 "write every feature's start and end logits here as JSON {question id: [{start, end}, ...]} (the positions "
                 "that ran: the real tokens, or all --max-seq-length with --pad)");
  app.add_option("--threads", o.threads, "compute threads (0: all cores)")->capture_default_str();
  app.add_option("--limit", o.limit, "answer only the first N questions of the file (0: all)")->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "features (windows of one question) per forward pass")
      ->capture_default_str();
  app.add_option("--max-seq-length", o.max_seq_length, "tokens per feature, padding included")->capture_default_str();
  app.add_flag("--pad", o.pad,
               "run every feature at --max-seq-length with its padding (transformers' padding=\"max_length\"); "
               "default: each feature runs at its real length, which gives its real tokens the same logits");
  app.add_option("--doc-stride", o.doc_stride, "context tokens shared by consecutive windows")->capture_default_str();
  app.add_option("--max-query-length", o.max_query_length, "question tokens kept")->capture_default_str();
  app.add_option("--n-best", o.n_best, "best starts and ends tried per feature")->capture_default_str();
  app.add_option("--max-answer-length", o.max_answer_length, "longest answer in tokens")->capture_default_str();
}

void validate(const SquadInferOptions& o) {
  auto bad = [](const char* name, auto v, const char* want) {
    fail("option ", name, " expects ", want, ", got ", v);
  };
  if (o.threads < 0) bad("--threads", o.threads, "a count >= 0 (0: all cores)");
  if (o.limit < 0) bad("--limit", o.limit, "a count >= 0 (0: every question)");
  if (int(o.int8) + int(o.int8_static) + int(o.fp16) > 1)
    fail("options --int8, --int8-static and --fp16 exclude each other: choose one");
  if (o.calibration_questions < 1 || o.calibration_questions > 100000)
    bad("--calibration-questions", o.calibration_questions, "a count in [1, 100000]");
  const auto names = quant::observer_names();
  if (std::find(names.begin(), names.end(), o.observer) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    fail("option --observer expects one of ", list, ", got '", o.observer, "'");
  }
  if (o.batch_size < 1 || o.batch_size > 4096) bad("--batch-size", o.batch_size, "a count in [1, 4096]");
  if (o.n_best < 1 || o.n_best > 10000) bad("--n-best", o.n_best, "a count in [1, 10000]");
  if (o.max_answer_length < 1) bad("--max-answer-length", o.max_answer_length, "a count >= 1");
  if (o.max_seq_length < 1 || o.max_seq_length > 1 << 20)
    bad("--max-seq-length", o.max_seq_length, "a count in [1, 1048576]");
  data::validate(data::SquadFeatureOptions{o.max_seq_length, o.doc_stride, o.max_query_length});
}

data::WordPieceOptions tokenizer_options(const std::string& dir) {
  data::WordPieceOptions opt;
  const fs::path p = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(p)) return opt;
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  const auto j = nlohmann::json::parse(s.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    fail(p.string(), ": expected a JSON object (the tokenizer configuration), found malformed JSON");
  if (j.contains("do_lower_case")) {
    if (!j["do_lower_case"].is_boolean())
      fail(p.string(), ": expected do_lower_case to be true or false, found ", j["do_lower_case"].dump());
    opt.lower_case = j["do_lower_case"].get<bool>();
  }
  if (j.contains("strip_accents") && j["strip_accents"].is_boolean())
    opt.strip_accents = j["strip_accents"].get<bool>() ? 1 : 0;
  if (j.contains("tokenize_chinese_chars") && j["tokenize_chinese_chars"].is_boolean())
    opt.split_cjk = j["tokenize_chinese_chars"].get<bool>();
  return opt;
}

namespace {

// Nearest-rank percentile of sorted values (q in (0, 1]).
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = int64_t(std::ceil(q * double(sorted.size())));
  return sorted[size_t(std::clamp<int64_t>(rank, 1, int64_t(sorted.size())) - 1)];
}

// data/squad.cc reports a bad file as one finch::Error sentence naming the file and the JSON path.
std::vector<data::SquadExample> read_examples(const std::string& path) { return data::read_squad(path); }

// Peak resident memory of this program. getrusage's ru_maxrss survives exec on Linux, so a run
// started by a big parent (a Python script holding a model) would report the parent's peak;
// /proc/self/status's VmHWM belongs to this address space alone and is read first.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  1234 kB"
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// The static int8 program of o.model_dir, calibrated on the features of the last
// o.calibration_questions questions of o.data_path (the questions answered are the first ones:
// they stay apart unless --limit and the calibration together cover the whole file).
runtime::Graph static_program(const SquadInferOptions& o, const data::WordPieceTokenizer& tok) {
  const std::vector<data::SquadExample> all = read_examples(o.data_path);
  const auto n = std::min<int64_t>(o.calibration_questions, int64_t(all.size()));
  const int64_t answered = o.limit > 0 ? std::min<int64_t>(o.limit, int64_t(all.size())) : int64_t(all.size());
  if (answered + n > int64_t(all.size()))
    std::fprintf(stderr, "infer_squad: warning: the %lld calibration questions overlap the %lld answered ones\n",
                 (long long)n, (long long)answered);
  const data::SquadFeatureOptions fopt{o.max_seq_length, o.doc_stride, o.max_query_length};
  std::vector<std::vector<Tensor>> samples;
  for (auto e = int64_t(all.size()) - n; e < int64_t(all.size()); ++e)
    for (const auto& f : data::make_squad_features(all[size_t(e)], e, tok, fopt)) {
      auto t = [&](const std::vector<int32_t>& v) {
        return from_vector(std::vector<int64_t>(v.begin(), v.end()), {1, int64_t(v.size())});
      };
      samples.push_back({t(f.input_ids), t(f.token_type_ids), t(f.attention_mask)});
    }
  quant::BertStaticOptions so;
  so.observer = o.observer;
  so.integer_gelu = o.integer_gelu;
  return bert_static_program_from_dir(o.model_dir, o.max_seq_length, samples, so);
}

}  // namespace

int64_t trimmed_length(const std::vector<int32_t>& attention_mask) {
  auto n = int64_t(attention_mask.size());
  while (n > 1 && attention_mask[size_t(n - 1)] == 0) --n;
  return n;
}

int run_infer_squad(const SquadInferOptions& o) {
  validate(o);
  const bool program_file = fs::is_regular_file(o.model_dir);
  if (!program_file && !fs::is_directory(o.model_dir))
    fail("--model ", o.model_dir, " is not a directory (expected config.json, vocab.txt and model.safetensors) or a "
         ".finch program");
  if (program_file && o.vocab_path.empty())
    fail("--model ", o.model_dir, " is a program, which holds no vocabulary: give its vocab.txt with --vocab");
  if (o.verify && !(o.int8_static || o.int8 || (program_file && !o.weights_dir.empty())))
    fail("--verify compares an int8 program with its simulation: use it with --int8-static or --int8, or with a "
         ".finch program as --model and its float weights' directory as --weights");
  if (!o.weights_dir.empty() && !(o.verify && program_file))
    fail("--weights ", o.weights_dir, " is used with --verify and a .finch program as --model");
  if (program_file && (o.int8 || o.int8_static || o.fp16 || !o.save_program_path.empty()))
    fail("--int8, --int8-static, --fp16 and --save-program compile a Hugging Face directory; --model ", o.model_dir,
         " is already a program");
  // Output folders are checked before the (long) run, not after it.
  for (const auto* out : {&o.predictions_path, &o.logits_path, &o.save_program_path}) {
    if (out->empty()) continue;
    const fs::path parent = fs::path(*out).parent_path();
    if (!parent.empty() && !fs::is_directory(parent))
      fail("cannot write ", *out, ": expected an existing folder, found no folder ", parent.string());
  }
  set_num_threads(o.threads);

  // The cheap checks (config against vocabulary and options) come before reading the weights.
  std::optional<runtime::Graph> program_graph;
  int64_t vocab_size = 0, max_positions = 0;
  if (program_file) {
    program_graph = read_bert_program(o.model_dir);
    vocab_size = bert_program_vocab_size(*program_graph);
    max_positions = bert_program_max_seq(*program_graph);
  } else {
    const models::BertConfig cfg = models::load_bert_config((fs::path(o.model_dir) / "config.json").string());
    vocab_size = cfg.vocab_size, max_positions = cfg.max_position_embeddings;
  }
  const std::string vocab_path = o.vocab_path.empty() ? (fs::path(o.model_dir) / "vocab.txt").string() : o.vocab_path;
  const auto tok = data::WordPieceTokenizer::from_file(
      vocab_path, tokenizer_options(program_file ? fs::path(vocab_path).parent_path().string() : o.model_dir));
  if (tok.size() != vocab_size)
    fail(vocab_path, ": expected ", vocab_size, " tokens (the vocab_size of ", o.model_dir, "), found ", tok.size(),
         "; the vocabulary does not belong to this ", program_file ? "program" : "checkpoint");
  if (o.max_seq_length > max_positions)
    fail("--max-seq-length ", o.max_seq_length, " exceeds the ", program_file ? "program's longest sequence (" :
         "model's max_position_embeddings (", max_positions, ")");

  // One forward over a batch of features: the nn model (fp32 directory) or a program.
  std::shared_ptr<models::BertForQuestionAnswering> model;
  std::unique_ptr<runtime::Program> program;
  std::shared_ptr<models::BertForQuestionAnswering> sim_model;  // --verify: the float weights
  std::unique_ptr<quant::BertStaticSim> sim;
  bool dynamic_verify = false;  // --verify on a dynamic int8 program: quant::bert_dynamic_sim_forward
  compile::BertProgramSpec sim_spec;
  SimCheck check;
  std::string precision = "fp32";
  if (program_file || o.int8 || o.int8_static || o.fp16 || !o.save_program_path.empty()) {
    if (o.int8_static) {
      program_graph = static_program(o, tok);
      if (!o.save_program_path.empty()) runtime::write_program(*program_graph, o.save_program_path);
    } else if (!program_file) {
      program_graph = bert_program_from_dir(o.model_dir, o.max_seq_length,
                                            o.int8   ? BertPrecision::int8_dynamic
                                            : o.fp16 ? BertPrecision::fp16
                                                     : BertPrecision::fp32);
      if (!o.save_program_path.empty()) runtime::write_program(*program_graph, o.save_program_path);
    }
    program = std::make_unique<runtime::Program>(std::move(*program_graph), o.model_dir);
    program_graph.reset();
    if (o.verify) {
      const std::string prec = program->graph().meta.value("precision", std::string("fp32"));
      dynamic_verify = prec == "int8-dynamic";
      if (prec != "int8-static" && !dynamic_verify)
        fail("--verify: ", o.model_dir, " is a ", prec, " program; only int8 ones (static or dynamic) have a "
             "simulated model to compare with");
      sim_model = models::load_bert_for_question_answering(program_file ? o.weights_dir : o.model_dir);
      sim_model->eval();
      sim_spec = bert_program_spec(sim_model->bert->config, o.max_seq_length);
      if (!dynamic_verify) {
        quant::BertStaticOptions so;
        const quant::BertStaticParams params = quant::bert_static_params(program->graph(), &so);
        sim = std::make_unique<quant::BertStaticSim>(*sim_model, sim_spec, so);
        sim->set_params(params);
      }
    }
    // verify (in the Program) has checked that meta.precision, when present, is a string.
    precision = program->graph().meta.value("precision", std::string("fp32")) + " program";
  } else {
    model = models::load_bert_for_question_answering(o.model_dir);
    model->eval();
  }
  std::vector<data::SquadExample> examples = read_examples(o.data_path);
  // A v2.0 file (one with an impossible question anywhere, --limit or not) is decoded with the
  // null answer and scored by evaluate-v2.0's rules.
  const bool version_2 = std::any_of(examples.begin(), examples.end(), [](auto& e) { return e.is_impossible; });
  if (o.limit > 0 && int64_t(examples.size()) > o.limit) examples.resize(size_t(o.limit));
  if (examples.empty()) fail(o.data_path, ": expected at least one question, found none");
  const bool has_answers =
      std::any_of(examples.begin(), examples.end(), [](auto& e) { return !e.answers.empty() || e.is_impossible; });

  const data::SquadFeatureOptions fopt{o.max_seq_length, o.doc_stride, o.max_query_length};
  data::SquadDecodeOptions dopt;
  dopt.n_best = o.n_best;
  dopt.max_answer_length = o.max_answer_length;
  dopt.version_2 = version_2;

  NoGradGuard no_grad;  // inference: no tape
  const int64_t S = o.max_seq_length;
  std::map<std::string, std::string> predictions;
  nlohmann::ordered_json answers_json = nlohmann::ordered_json::object();
  nlohmann::ordered_json logits_json = nlohmann::ordered_json::object();
  std::vector<double> latency_ms;
  int64_t n_features = 0, tokens_run = 0;
  using clock = std::chrono::steady_clock;
  const auto t_all = clock::now();
  for (size_t e = 0; e < examples.size(); ++e) {
    const auto t0 = clock::now();  // a question's latency: tokens, features, forward passes, decoding
    const auto& ex = examples[e];
    const auto feats = data::make_squad_features(ex, int64_t(e), tok, fopt);
    // The length each window runs at: its real tokens, or S with --pad (trimmed_length).
    std::vector<int64_t> len(feats.size());
    for (size_t f = 0; f < feats.size(); ++f) len[f] = o.pad ? S : trimmed_length(feats[f].attention_mask);
    std::vector<std::vector<float>> starts(feats.size()), ends(feats.size());
    // A batch: up to --batch-size consecutive windows of one length (a question's windows are
    // full but for the last, so trimming costs at most one more forward pass per question).
    for (size_t b0 = 0, b1 = 0; b0 < feats.size(); b0 = b1) {
      const int64_t L = len[b0];
      for (b1 = b0 + 1; b1 < feats.size() && b1 - b0 < size_t(o.batch_size) && len[b1] == L;) ++b1;
      const auto B = int64_t(b1 - b0);
      std::vector<int64_t> ids, types, mask;
      ids.reserve(size_t(B * L));
      for (size_t f = b0; f < b1; ++f) {
        ids.insert(ids.end(), feats[f].input_ids.begin(), feats[f].input_ids.begin() + L);
        types.insert(types.end(), feats[f].token_type_ids.begin(), feats[f].token_type_ids.begin() + L);
        mask.insert(mask.end(), feats[f].attention_mask.begin(), feats[f].attention_mask.begin() + L);
      }
      const Tensor ids_t = from_vector<int64_t>(ids, {B, L}), mask_t = from_vector<int64_t>(mask, {B, L}),
                   types_t = from_vector<int64_t>(types, {B, L});
      std::vector<float> st, en;
      if (sim || dynamic_verify) {
        const std::vector<Tensor> out =
            sim ? check_against_sim(*program, *sim, {ids_t, types_t, mask_t}, check)
                : check_against_dynamic_sim(*program, *sim_model, sim_spec, {ids_t, types_t, mask_t}, check);
        st = out[0].contiguous().to_vector<float>(), en = out[1].contiguous().to_vector<float>();
      } else if (program) {
        const std::vector<Tensor> out = program->run({ids_t, types_t, mask_t});
        st = out[0].to_vector<float>(), en = out[1].to_vector<float>();
      } else {
        const auto out = model->forward(ids_t, mask_t, types_t);
        st = out.start_logits.to_vector<float>(), en = out.end_logits.to_vector<float>();
      }
      for (size_t f = b0; f < b1; ++f) {
        const auto off = ptrdiff_t((f - b0) * size_t(L));
        starts[f].assign(st.begin() + off, st.begin() + off + L);
        ends[f].assign(en.begin() + off, en.begin() + off + L);
      }
    }
    // Decoded over the positions that ran: a trimmed window's candidates are its real tokens.
    std::vector<data::SquadFeatureLogits> fl;
    for (size_t f = 0; f < feats.size(); ++f)
      fl.push_back({std::span(feats[f].offsets).first(size_t(len[f])), starts[f], ends[f]});
    std::string answer = data::decode_squad_answer(ex.context, fl, dopt);
    latency_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    n_features += int64_t(feats.size());
    for (int64_t l : len) tokens_run += l;
    if (!o.logits_path.empty()) {
      auto& arr = logits_json[ex.id] = nlohmann::ordered_json::array();
      for (size_t f = 0; f < feats.size(); ++f) arr.push_back({{"start", starts[f]}, {"end", ends[f]}});
    }
    answers_json[ex.id] = answer;
    predictions[ex.id] = std::move(answer);
  }
  const double total_s = std::chrono::duration<double>(clock::now() - t_all).count();

  if (!o.predictions_path.empty()) write_file_atomically(o.predictions_path, answers_json.dump(1) + "\n");
  if (!o.logits_path.empty()) write_file_atomically(o.logits_path, logits_json.dump() + "\n");

  std::sort(latency_ms.begin(), latency_ms.end());
  std::printf("infer_squad: %zu questions, %lld features (max_seq_length %lld, %s: %.1f tokens per feature), %s, "
              "threads %d\n",
              examples.size(), (long long)n_features, (long long)S, o.pad ? "padded" : "trimmed",
              double(tokens_run) / double(std::max<int64_t>(n_features, 1)), precision.c_str(), get_num_threads());
  if (has_answers) {
    const auto score = data::evaluate_squad(examples, predictions, version_2);
    std::printf("exact_match %.2f  f1 %.2f  (SQuAD %s evaluation)\n", score.exact, score.f1,
                version_2 ? "v2.0" : "v1.1");
  }
  std::printf("latency per question: p50 %.1f ms  p90 %.1f ms\n", percentile(latency_ms, 0.5),
              percentile(latency_ms, 0.9));
  std::printf("throughput: %.2f questions/s\n", double(examples.size()) / std::max(total_s, 1e-9));
  std::printf("peak memory: %.1f MiB\n", peak_rss_mib());
  if (!o.predictions_path.empty()) std::printf("predictions: %s\n", o.predictions_path.c_str());
  if (!o.save_program_path.empty()) std::printf("program: %s\n", o.save_program_path.c_str());
  if (sim || dynamic_verify) {
    std::printf("%s\n", check.summary().c_str());
    return check.agree() ? 0 : 1;
  }
  return 0;
}

}  // namespace finch::apps
