// finch verify on a BERT program (bert_sim_check_cmd.h): the program, its simulated model and the
// SQuAD windows they both run.
#include "apps/lib/bert_sim_check_cmd.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <map>
#include <set>

#include "apps/lib/bert_compress_cmd.h"
#include "apps/lib/bert_program_build.h"
#include "apps/lib/bert_sim_check.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/squad_infer.h"
#include "data/squad.h"
#include "data/squad_features.h"
#include "data/wordpiece.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "models/bert_config.h"
#include "models/bert_io.h"
#include "quant/bert_sim.h"
#include "quant/bert_static.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "runtime/verify.h"

namespace finch::apps {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kBertVerifyFlags = {"--weights", "--vocab", "--limit", "--max-seq-length", "--doc-stride",
                                                   "--max-query-length"};

// One sentence unless `g` is the program of `model` (the directory `dir`): its recorded layers and
// heads, every constant named after a parameter of the same shape, every qlinear weight a
// parameter of the model (a dense program and a factorized directory, or the reverse, differ
// here), every qattention's heads the model's, and every qgelu in the form meta.calibration names
// (which the simulation reads).
void check_program_of_model(const runtime::Graph& g, const std::string& path, models::BertForQuestionAnswering& model,
                            const std::string& dir, bool integer_gelu) {
  const models::BertConfig& c = model.bert->config;
  const std::string mismatch = " was not made from " + dir + ": ";
  if (bert_program_vocab_size(g) != c.vocab_size)
    fail(path, mismatch, "its vocab_size is ", bert_program_vocab_size(g), ", the model's ", c.vocab_size);
  for (const char* key : {"layers", "heads"}) {
    const int64_t want = std::string(key) == "layers" ? c.num_hidden_layers : c.num_attention_heads;
    const auto it = g.meta.find(key);
    if (it != g.meta.end() && !(it->is_number_integer() && it->get<int64_t>() == want))
      fail(path, mismatch, "it records ", key, " ", it->dump(), ", the model has ", want);
  }
  std::map<std::string, Shape> params;
  for (const auto& [name, t] : model.named_parameters()) params[name] = t.shape();
  int64_t matched = 0;
  // A dynamic program's int8 weights are "<parameter>.int8" (compile/dynamic_rnn.cc).
  auto param_of = [](const std::string& name) {
    const std::string suffix = ".int8";
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0
               ? name.substr(0, name.size() - suffix.size())
               : name;
  };
  for (const runtime::Value& v : g.values) {
    if (!v.is_constant()) continue;
    const auto it = params.find(param_of(v.name));
    if (it == params.end()) continue;
    if (it->second != v.shape)
      fail(path, mismatch, "its constant '", v.name, "' is ", shape_str(v.shape), ", the model's parameter is ",
           shape_str(it->second));
    ++matched;
  }
  for (const runtime::Node& n : g.nodes) {
    if (n.op == "qlinear" || n.op == "dq_linear") {
      const std::string w = param_of(g.values[size_t(n.inputs.at(1))].name);
      if (!params.count(w))
        fail(path, mismatch, "its Linear '", n.name, "' has the weight '", w, "', which the model does not have (a "
             "dense program and a factorized model, or the reverse?)");
    } else if (n.op == "qattention" || n.op == "attention") {
      const int64_t width = g.values[size_t(n.inputs.at(0))].shape.back(), hd = c.head_dim();
      const nlohmann::json heads = n.attrs.value("heads", nlohmann::json());
      if (!heads.is_number_integer() || heads.get<int64_t>() * hd != width)
        fail(path, ": node '", n.name, "' has the attribute heads ", heads.dump(), ", but its attention is ", width,
             " wide with heads of width ", hd, " (", width / hd, " heads); the program was edited or not made from ",
             dir);
    } else if (n.op == "qgelu") {
      const nlohmann::json integer = n.attrs.value("integer", nlohmann::json(false));
      if (integer != nlohmann::json(integer_gelu))
        fail(path, ": node '", n.name, "' has the attribute integer ", integer.dump(), ", but meta.calibration.gelu says ",
             integer_gelu ? "\"integer\"" : "the float table", "; the program was edited");
    }
  }
  if (matched == 0) fail(path, mismatch, "none of its constants is named after a parameter of the model");
}

// The windows of `examples` (SQuAD features at each one's real length, as infer_squad runs them),
// up to `batch` consecutive windows of one length per run, through check_against_sim.
// `run` compares one batch {input_ids, token_type_ids, attention_mask} and adds it to the check.
using BatchCheck = std::function<void(const std::vector<Tensor>&, SimCheck&)>;

SimCheck check_windows(const BatchCheck& run, const std::vector<data::SquadExample>& examples,
                       const data::WordPieceTokenizer& tok, const data::SquadFeatureOptions& fopt, int64_t batch) {
  SimCheck check;
  std::vector<std::vector<int32_t>> ids, types, mask;  // the pending windows, all of one length
  auto flush = [&] {
    if (ids.empty()) return;
    const auto B = int64_t(ids.size()), L = int64_t(ids[0].size());
    auto tensor = [&](const std::vector<std::vector<int32_t>>& rows) {
      std::vector<int64_t> v;
      v.reserve(size_t(B * L));
      for (const auto& r : rows) v.insert(v.end(), r.begin(), r.end());
      return from_vector<int64_t>(v, {B, L});
    };
    run({tensor(ids), tensor(types), tensor(mask)}, check);
    ids.clear(), types.clear(), mask.clear();
    std::fprintf(stderr, "\rverify: %lld windows", static_cast<long long>(check.windows));
  };
  for (size_t e = 0; e < examples.size(); ++e)
    for (const data::SquadFeature& f : data::make_squad_features(examples[e], int64_t(e), tok, fopt)) {
      const auto L = size_t(trimmed_length(f.attention_mask));
      if (!ids.empty() && (ids[0].size() != L || int64_t(ids.size()) == batch)) flush();
      ids.emplace_back(f.input_ids.begin(), f.input_ids.begin() + ptrdiff_t(L));
      types.emplace_back(f.token_type_ids.begin(), f.token_type_ids.begin() + ptrdiff_t(L));
      mask.emplace_back(f.attention_mask.begin(), f.attention_mask.begin() + ptrdiff_t(L));
    }
  flush();
  std::fprintf(stderr, "\n");
  return check;
}

}  // namespace

void add_bert_verify_flags(CLI::App& app, BertVerifyFlags& f) {
  app.add_option("--weights", f.weights,
                 "BERT program: the Hugging Face directory of the float weights it was made from (as infer_squad "
                 "--weights; --checkpoint DIR says the same)");
  app.add_option("--vocab", f.vocab, "BERT program: WordPiece vocab.txt (default: WEIGHTS/vocab.txt)");
  app.add_option("--limit", f.limit, "BERT program: run the windows of the first N questions of --data (0: all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app.add_option("--max-seq-length", f.max_seq_length, "BERT program: tokens per window (default: the program's longest)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option("--doc-stride", f.doc_stride, "BERT program: context tokens shared by consecutive windows")
      ->capture_default_str();
  app.add_option("--max-query-length", f.max_query_length, "BERT program: question tokens kept")->capture_default_str();
}

bool bert_program_or_flags(const std::string& path, const CLI::App& app) {
  std::error_code ec;
  bool bert = false;
  if (fs::is_regular_file(path, ec)) {
    try {
      const nlohmann::json meta = runtime::read_program_meta(path);  // the constants are read once, later
      const auto m = meta.find("model");
      bert = m != meta.end() && m->is_string() && m->get<std::string>() == "bert_qa";
    } catch (const Error&) {  // not a program: the image path reports it
    }
  }
  if (bert && (image_flags_given(app) > 0 || sequence_data_flags_given(app)))
    fail("the image and series data flags (--dataset, --mean, --std, --limit-test, --train, ...) are not for ", path,
         ", a BERT program: it takes --weights, --data (a SQuAD JSON file), --vocab, --limit and the window flags");
  if (!bert)
    for (const std::string& f : kBertVerifyFlags)
      if (app.count(f) > 0)
        fail(f, " is for BERT programs (meta.model \"bert_qa\"), and ", path, " is not one");
  return bert;
}

int run_bert_verify(const ProgramOptions& o, const BertVerifyFlags& f, bool batch_given) {
  std::string dir = f.weights;
  if (!o.data.checkpoint.empty()) {
    if (!dir.empty() && fs::path(dir).lexically_normal() != fs::path(o.data.checkpoint).lexically_normal())
      fail("--weights ", dir, " and --checkpoint ", o.data.checkpoint, " name two models; give the float weights once");
    dir = o.data.checkpoint;
  }
  if (dir.empty())
    fail(o.program, " is a BERT program: give the Hugging Face directory of the float weights it was made from with "
         "--weights DIR");
  if (!is_bert_directory(dir))
    fail(f.weights.empty() ? "--checkpoint " : "--weights ", dir, ": expected a BERT directory (config.json, model.safetensors, vocab.txt), found ",
         fs::exists(dir) ? "no BERT config.json there" : "nothing");
  if (o.data.data_dir.empty())
    fail("finch verify on a BERT program needs --data: a SQuAD v1.1 or v2.0 JSON file whose windows it runs");
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  const int64_t batch = batch_given ? o.batch_size : 8;
  if (batch < 1 || batch > 4096) fail("option --batch-size expects a count in [1, 4096], got ", batch);

  runtime::Graph g = read_bert_program(o.program);
  runtime::ProgramOptions ro;
  ro.reference_kernels = o.reference_kernels;
  if (const auto problems = runtime::verify(g, o.program, ro); !problems.empty()) throw Error(problems[0]);
  const std::string precision = g.meta.value("precision", std::string("fp32"));
  const bool dynamic = precision == "int8-dynamic";
  if (precision != "int8-static" && !dynamic)
    fail(o.program, " is a ", precision, " BERT program; finch verify compares an int8 one (infer_squad --int8-static "
         "or --int8 with --save-program, train_squad --qat) with its simulated model");
  const int64_t longest = bert_program_max_seq(g);
  const int64_t S = f.max_seq_length > 0 ? f.max_seq_length : longest;
  if (S > longest) fail("--max-seq-length ", S, " exceeds the program's longest sequence (", longest, ")");
  const data::SquadFeatureOptions fopt{S, f.doc_stride, f.max_query_length};
  data::validate(fopt);

  const auto model = models::load_bert_for_question_answering(dir);
  model->eval();
  const models::BertConfig& c = model->bert->config;
  const std::string vocab = f.vocab.empty() ? (fs::path(dir) / "vocab.txt").string() : f.vocab;
  if (!fs::is_regular_file(vocab))
    fail("--vocab ", vocab, ": expected the WordPiece vocabulary (one token a line), found no file");
  quant::BertStaticOptions so;
  const quant::BertStaticParams params = dynamic ? quant::BertStaticParams{} : quant::bert_static_params(g, &so);
  check_program_of_model(g, o.program, *model, dir, so.integer_gelu);
  const auto tok = data::WordPieceTokenizer::from_file(vocab, tokenizer_options(dir));
  if (tok.size() != c.vocab_size)
    fail(vocab, ": expected ", c.vocab_size, " tokens (the vocab_size of ", o.program, " and ", dir, "), found ",
         tok.size());
  const compile::BertProgramSpec spec = bert_program_spec(c, S);
  std::unique_ptr<quant::BertStaticSim> sim;
  if (!dynamic) {
    sim = std::make_unique<quant::BertStaticSim>(*model, spec, so);
    const std::vector<std::string>& names = sim->value_names();
    for (const std::string& n : names)
      if (!params.count(n))
        fail(o.program, " was not made from ", dir, ": the simulated model codes the value '", n,
             "', which the program does not ('", n, ".q')");
    if (params.size() != names.size())
      for (const auto& [n, p] : params)
        if (std::find(names.begin(), names.end(), n) == names.end())
          fail(o.program, " was not made from ", dir, ": it codes the value '", n, "', which the simulated model does not");
    sim->set_params(params);
  }
  runtime::Program p(std::move(g), o.program, ro);
  const BatchCheck run = [&](const std::vector<Tensor>& in, SimCheck& c) {
    if (dynamic) check_against_dynamic_sim(p, *model, spec, in, c);
    else check_against_sim(p, *sim, in, c);
  };

  std::vector<data::SquadExample> examples = data::read_squad(o.data.data_dir);
  if (f.limit > 0 && int64_t(examples.size()) > f.limit) examples.resize(size_t(f.limit));
  if (examples.empty()) fail(o.data.data_dir, ": expected at least one question, found none");
  const auto t0 = std::chrono::steady_clock::now();
  const SimCheck check = check_windows(run, examples, tok, fopt, batch);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %s program, %zu questions of %s, windows of up to %lld tokens, %s kernels, %d threads, %.1f s\n",
              o.program.c_str(), precision.c_str(), examples.size(), o.data.data_dir.c_str(), static_cast<long long>(S),
              o.reference_kernels ? "reference" : "optimized", get_num_threads(), seconds);
  std::printf("%s\n", check.summary().c_str());
  if (!o.json.empty())
    write_json_file(o.json, {{"program", o.program}, {"weights", dir}, {"questions", examples.size()},
                             {"windows", check.windows}, {"logits", check.logits}, {"logits_differ", check.logits_differ},
                             {"precision", precision}, {"compared", dynamic ? "f32 values" : "int8 codes"},
                             {"codes", check.codes}, {"codes_differ", check.codes_differ}, {"values", check.values},
                             {"max_abs_logit_diff", check.max_logit_diff}, {"seconds", seconds},
                             {"agree", check.agree()}});
  return check.agree() ? 0 : 1;
}

}  // namespace finch::apps
