// `finch compress` (see compress_cmd.h): for each variant, its steps through the single-step
// commands of the model's kind (compress_model.h) in DIR/<variant>.partial/steps/, then the program
// evaluated, the folder renamed; then every program timed side by side with the baseline and the
// report written.
#include "apps/lib/compress_cmd.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "apps/lib/compress_cmd_common.h"
#include "apps/lib/compress_model.h"
#include "apps/lib/compress_recipe.h"
#include "apps/lib/compress_report.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "runtime/program_file.h"

namespace finch::apps {

namespace fs = std::filesystem;

void add_compress_options(CLI::App& app, CompressOptions& o) {
  TrainOptions& t = o.train;
  add_compress_input_options(app, t);  // --model --checkpoint --width --dataset --data --out
  app.add_option("--recipe", o.recipe, "a recipe file (JSON) or a named recipe: quick, seed003-alg1, seed003-alg2, "
                                       "seed004, each defined per model kind (docs/compress.md)")
      ->required();
  app.add_option("--weights", o.weights, "wS,wT,wA of the criterion L = wS·ΔS + wT·ΔT − wA·ΔA")->capture_default_str();
  app.add_flag("--seed-sign", o.seed_sign, "L = ΔS + ΔT + ΔA as seed 004 printed it (rewards accuracy loss)");
  app.add_option("--latency-rounds", o.latency_rounds, "rounds of side-by-side batch-1 timing")
      ->check(CLI::Range(int64_t(1), int64_t(1000)))
      ->capture_default_str();
  app.add_option("--latency-iters", o.latency_iters, "timed runs of each program per round")
      ->check(CLI::Range(int64_t(1), int64_t(100000)))
      ->capture_default_str();
  app.add_option("--latency-threads", o.latency_threads, "threads of the timed runs (default: --threads)")
      ->check(CLI::Range(0, 1024));
  add_compress_fine_tune_options(app, t, /*normalization=*/true);
  add_bert_squad_flags(app, o.bert);         // a BERT directory's SQuAD flags (finch prune's)
  add_sequence_data_flags(app, o.series);    // a series/text checkpoint's data flags (finch prune's)
}

void check_compress_flags(const CLI::App& app, CompressOptions& o) {
  o.train.model_given = app.count("--model") > 0, o.train.width_given = app.count("--width") > 0;
  o.lr_given = app.count("--lr") > 0;
  o.bert.batch_given = app.count("--batch-size") > 0;
  const std::string& ckpt = o.train.checkpoint;
  if (is_bert_directory(ckpt)) {
    if (sequence_data_flags_given(app))
      fail("--train, --test and the other series/text data flags are for train_series/train_text checkpoints; ", ckpt,
           " is a BERT directory (it takes --data with a SQuAD file)");
    return;
  }
  refuse_bert_flags(app, ckpt);
  sequence_checkpoint_or_flags(ckpt, app);  // series flags on an image checkpoint: one sentence
}

namespace {

struct Shared {
  const CompressOptions& o;
  CompressModel& model;  // what differs per model kind
  const std::string& checkpoint;
  const std::string& command_line;
  // The float models finished variants made, by the steps that made them (a JSON list): a variant
  // that starts with the same prune/lowrank/distill steps as another starts from its result
  // (seed003-alg1's filter pruning, then fp32 and int8) instead of training it again.
  std::map<std::string, std::string> made;
  // What else decides a variant's numbers (data, limits, fine-tuning options): a finished variant
  // is reused only when these are the same.
  nlohmann::json settings;
};

std::string step_dir_name(size_t i, const std::string& kind) {
  char name[48];
  std::snprintf(name, sizeof name, "%02zu-%s", i + 1, kind.c_str());
  return name;
}

bool makes_float_model(const std::string& kind) { return kind == "prune" || kind == "lowrank" || kind == "distill"; }

// Records the float models of a finished variant's leading steps in s.made.
void remember(Shared& s, const nlohmann::json& steps, const std::string& dir) {
  nlohmann::json prefix = nlohmann::json::array();
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string kind = steps[i].value("step", "");
    if (!makes_float_model(kind)) return;
    prefix.push_back(steps[i]);
    const std::string model = s.model.model_in(dir + "/steps/" + step_dir_name(i, kind));
    if (fs::exists(model)) s.made.emplace(prefix.dump(), model);
  }
}

// The finished variant's numbers: the kind's (parameters, checkpoint bytes, the program's task
// metric), the program's bytes and its precision.
void measure(const Shared& s, const std::string& dir, VariantRow& row) {
  row.metric_key = s.model.metric_key();
  s.model.measure(dir, row);
  const std::string program = dir + "/model.finch";
  row.program_bytes = int64_t(fs::file_size(program));
  const runtime::Graph g = runtime::read_program(program);
  // By the stored constants (the runtime widens f16 weights to f32 when it loads them).
  row.precision = "fp32";
  for (const auto& v : g.values)
    if (v.is_constant() && (v.dtype == DType::i8 || v.dtype == DType::u8)) row.precision = "int8";
    else if (v.is_constant() && v.dtype == DType::f16 && row.precision == "fp32") row.precision = "fp16";
}

// Runs one variant in DIR/<name>.partial and renames it; the row says ok or which step failed.
VariantRow build_variant(Shared& s, const RecipeVariant& v, const std::string& final_dir) {
  VariantRow row;
  row.name = v.name;
  for (const auto& st : v.steps) row.steps.push_back(st.json);
  const std::string partial = final_dir + ".partial";
  fs::remove_all(partial);
  fs::create_directories(partial + "/steps");
  std::string input = s.checkpoint, quantized, qat_state;
  bool same_start = true;  // every step so far made a float model (may still match s.made)
  size_t i = 0;
  try {
    for (i = 0; i < v.steps.size(); ++i) {
      const RecipeStep& st = v.steps[i];
      StepEnv e{input, partial + "/steps/" + step_dir_name(i, st.kind), s.checkpoint, s.command_line};
      std::cerr << "\n== finch compress: variant '" << v.name << "', step " << i + 1 << "/" << v.steps.size() << " ("
                << st.kind << ") ==\n";
      if (makes_float_model(st.kind) && same_start) {
        const auto it = s.made.find(nlohmann::json(std::vector<nlohmann::json>(row.steps.begin(), row.steps.begin() + long(i) + 1)).dump());
        if (it != s.made.end()) {
          input = it->second;
          fs::create_directories(e.dir);
          write_json_file(e.dir + "/reused.json", {{"model", input}});
          std::cerr << "the same steps made " << input << " for an earlier variant; starting from it\n";
          continue;
        }
      }
      same_start = same_start && makes_float_model(st.kind);
      if (const auto* c = std::get_if<CompileStep>(&st.spec)) {
        s.model.compile(*c, e, quantized, partial + "/model.finch");
        continue;
      }
      input = s.model.run_step(st, e);
      if (st.kind == "qat" || st.kind == "ptq") quantized = e.dir + "/model.finch";
      if (st.kind == "qat") qat_state = e.dir + "/qat_model.safetensors";
    }
    s.model.keep_model(input, partial);
    if (!qat_state.empty()) fs::copy_file(qat_state, partial + "/qat_model.safetensors", fs::copy_options::overwrite_existing);
    measure(s, partial, row);
  } catch (const std::exception& ex) {
    row.status = "failed";
    row.failed_step = int64_t(std::min(i, v.steps.size() - 1) + 1);
    row.failed_kind = i < v.steps.size() ? v.steps[i].kind : "measure";
    row.error = ex.what();
    std::cerr << "finch compress: variant '" << v.name << "' failed at step " << row.failed_step << " ("
              << row.failed_kind << "): " << row.error << " (its files stay in " << partial << ")\n";
    return row;
  }
  nlohmann::json vj = row.to_json();
  vj["checkpoint"] = s.checkpoint;
  vj["settings"] = s.settings;
  write_json_file(partial + "/variant.json", vj);
  fs::remove_all(final_dir);
  fs::rename(partial, final_dir);
  remember(s, row.steps, final_dir);
  return row;
}

// A finished variant from an earlier run, when its steps and checkpoint are the same; a sentence
// when the folder holds something else (never overwritten silently).
bool reuse(const Shared& s, const std::string& dir, const nlohmann::json& steps, VariantRow& row) {
  if (!fs::exists(dir)) return false;
  const std::string vj_path = dir + "/variant.json";
  nlohmann::json vj;
  try {
    vj = read_json_file(vj_path);
    if (vj.value("checkpoint", "") == s.checkpoint && vj.at("steps") == steps && vj.value("status", "") == "ok" &&
        vj.value("settings", nlohmann::json()) == s.settings && fs::exists(dir + "/model.finch") &&
        fs::exists(s.model.model_in(dir))) {
      row = VariantRow::from_json(vj, s.model.metric_key());
      return true;
    }
  } catch (const std::exception&) {
  }
  fail(dir, " exists but was not made by these steps from ", s.checkpoint,
       " with these data and fine-tuning options (variant.json differs or is missing); remove it or choose another --out");
}

}  // namespace

int run_compress(CompressOptions o, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelKind kind = model_kind_of(o.train.checkpoint);
  const Recipe recipe = load_recipe(o.recipe, kind);  // every field checked before any work (a name: the kind's recipe)
  const CriterionWeights w = parse_weights(o.weights);
  check_recipe_applies(recipe, kind);  // every step applies to this kind of model, before any work
  if (o.train.threads > 0) set_num_threads(o.train.threads);
  std::unique_ptr<CompressModel> model = kind == ModelKind::bert     ? make_bert_compress_model(o)
                                         : kind == ModelKind::series ? make_series_compress_model(o)
                                                                     : make_image_compress_model(o);
  const std::string out = o.train.out_dir;
  create_out_dir(out);
  const std::string checkpoint = o.train.checkpoint;
  Shared s{o, *model, checkpoint, command_line, {}, model->settings()};

  std::vector<std::string> dirs = {out + "/baseline"};
  std::vector<nlohmann::json> step_lists = {nlohmann::json::array({{{"step", "compile"}, {"precision", "fp32"}}})};
  for (const auto& v : recipe.variants) {
    dirs.push_back(out + "/" + v.name);
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& st : v.steps) steps.push_back(st.json);
    step_lists.push_back(steps);
  }
  std::vector<VariantRow> rows(dirs.size());
  std::vector<bool> done(dirs.size());
  for (size_t i = 0; i < dirs.size(); ++i) done[i] = reuse(s, dirs[i], step_lists[i], rows[i]);

  nlohmann::json header = {{"recipe", recipe.name},
                           {"description", recipe.description},
                           {"checkpoint", checkpoint},
                           {"model_kind", kind_words(kind)},
                           {"metric_key", model->metric_key()},
                           {"metric", model->metric_name()},
                           {"threads", get_num_threads()},
                           {"latency_rounds", o.latency_rounds},
                           {"latency_iters", o.latency_iters},
                           {"weights", {w.size, w.time, w.accuracy}},
                           {"seed_sign", o.seed_sign},
                           {"criterion", std::string("L = wS·ΔS + wT·ΔT ") + (o.seed_sign ? "+" : "−") +
                                             " wA·ΔA, Δx = (x − x_baseline) / x_baseline; S = program bytes, T = "
                                             "batch-1 median latency, A = " + model->metric_name() +
                                             "; lowest L recommended"},
                           {"finch_version", finch_version()},
                           {"command_line", command_line}};
  header.update(model->header());
  auto write_report = [&] {
    const nlohmann::json r = report_json(rows, header);
    write_json_file(out + "/report.json", r);
    write_report_html(out + "/report.html", r);
  };
  RecipeVariant baseline{"baseline", {}};
  baseline.steps.push_back({"compile", CompileStep{"fp32"}, step_lists[0][0]});
  for (size_t i = 0; i < dirs.size(); ++i) {
    const RecipeVariant& v = i == 0 ? baseline : recipe.variants[i - 1];
    if (done[i]) {
      remember(s, step_lists[i], dirs[i]);
      std::cerr << "finch compress: " << dirs[i] << " is complete from an earlier run; reused\n";
      continue;
    }
    int64_t refused_step = 0;
    if (const std::string why = i == 0 ? "" : variant_refusal(recipe, v, *model, refused_step); !why.empty()) {
      rows[i].name = v.name, rows[i].status = "refused", rows[i].error = why, rows[i].steps = step_lists[i];
      rows[i].failed_step = refused_step, rows[i].failed_kind = v.steps[size_t(refused_step - 1)].kind;
      std::cerr << "finch compress: " << why << "\n";
    } else {
      rows[i] = build_variant(s, v, dirs[i]);
    }
    if (i == 0 && rows[0].status != "ok") fail("the baseline (the checkpoint compiled to fp32) failed: ", rows[0].error);
    for (size_t j = i + 1; j < dirs.size(); ++j)
      if (!done[j]) rows[j].name = recipe.variants[j - 1].name, rows[j].status = "pending";
    write_report();  // the variants so far, untimed
  }

  std::vector<std::string> programs;
  std::vector<VariantRow*> timed;
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].status == "ok") programs.push_back(dirs[i] + "/model.finch"), timed.push_back(&rows[i]);
  if (o.latency_threads >= 0) set_num_threads(o.latency_threads);
  header["threads"] = get_num_threads();
  std::cerr << "\n== finch compress: timing " << programs.size() << " programs side by side, batch 1, "
            << get_num_threads() << " thread(s) ==\n";
  time_side_by_side(programs, timed, o.latency_rounds, o.latency_iters,
                    [&](const runtime::Graph& g) { return model->latency_input(g); });
  score_rows(rows, w, o.seed_sign);
  header["wall_seconds"] =
      train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  write_report();

  std::printf("\nmetric: %s\n%-22s %10s %10s %10s %6s %9s %10s %8s\n", model->metric_name().c_str(), "variant",
              "params", "ckpt KiB", "prog KiB", "prec", "metric", "ms/run", "L");
  int failed = 0;
  for (const auto& r : rows) {
    if (r.status != "ok") {
      failed += r.status == "failed";  // a refused variant is the recipe's own answer on this model, not a failure
      std::printf("%-22s %s at step %lld (%s): %s\n", r.name.c_str(), r.status.c_str(),
                  static_cast<long long>(r.failed_step), r.failed_kind.c_str(), r.error.c_str());
      continue;
    }
    std::printf("%-22s %10lld %10.1f %10.1f %6s %8.2f%% %10.3f %+8.3f%s\n", r.name.c_str(),
                static_cast<long long>(r.parameters), double(r.checkpoint_bytes) / 1024, double(r.program_bytes) / 1024,
                r.precision.c_str(), 100 * r.accuracy, r.latency_ms, r.criterion, r.recommended ? "  <- recommended" : "");
  }
  std::printf("%s/report.json, %s/report.html\n", out.c_str(), out.c_str());
  return failed ? 3 : 0;
}

}  // namespace finch::apps
