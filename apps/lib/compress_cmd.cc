// `finch compress` (see compress_cmd.h): for each variant, its steps through the single-step
// commands in DIR/<variant>.partial/steps/, then the program evaluated, the folder renamed; then
// every program timed side by side with the baseline and the report written.
#include "apps/lib/compress_cmd.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <type_traits>
#include <variant>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_cmd_common.h"
#include "apps/lib/compress_recipe.h"
#include "apps/lib/compress_report.h"
#include "apps/lib/datasets.h"
#include "apps/lib/lowrank_cmd.h"
#include "apps/lib/program_cmds.h"
#include "apps/lib/prune_cmd.h"
#include "apps/lib/qat_run.h"
#include "apps/lib/quantize_run.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "compress/edits.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/distill.h"
#include "train/evaluate.h"

namespace finch::apps {

namespace fs = std::filesystem;

void add_compress_options(CLI::App& app, CompressOptions& o) {
  TrainOptions& t = o.train;
  add_compress_input_options(app, t);  // --model --checkpoint --width --dataset --data --out
  app.add_option("--recipe", o.recipe, "a recipe file (JSON) or a named recipe: quick, seed003-alg1, seed003-alg2, "
                                       "seed004 (docs/compress.md)")
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
}

namespace {

// What every step gets: the options as given, the step's input model and folder, the teacher.
struct StepEnv {
  const TrainOptions& base;
  std::string input;     // the float weights this step starts from
  std::string dir;       // its folder (summary.json, model.safetensors, ...)
  std::string teacher;   // the uncompressed checkpoint
  const std::string& command_line;
};

TrainOptions step_train_options(const StepEnv& e, double lr, bool& lr_given) {
  TrainOptions t = e.base;
  t.checkpoint = e.input;
  t.out_dir = e.dir;
  lr_given = lr > 0;
  if (lr_given) t.lr = lr;
  return t;
}

std::string run_step(const PruneStep& p, const StepEnv& e) {
  PruneOptions o;
  o.train = step_train_options(e, p.lr, o.lr_given);
  o.structured = p.structured;
  if (p.structured) o.amount = p.amount, o.score = p.criterion;
  else o.sparsity = p.amount;
  o.schedule = p.schedule;
  o.rounds = p.rounds;
  o.pattern = p.pattern;
  o.global = p.global;
  o.fine_tune_epochs = p.fine_tune_epochs;
  o.bn_batches = p.bn_batches;
  o.distill = p.distill.on, o.temperature = p.distill.temperature, o.alpha = p.distill.alpha;
  o.teacher = e.teacher;
  run_prune(o, e.command_line);
  return e.dir + "/model.safetensors";
}

std::string run_step(const LowRankStep& l, const StepEnv& e) {
  LowRankCmdOptions o;
  o.train = step_train_options(e, l.lr, o.lr_given);
  o.rank_fraction = l.rank, o.energy = l.energy, o.compression = l.compression;
  o.global = l.global;
  o.skip = l.skip;
  o.fine_tune_epochs = l.fine_tune_epochs;
  o.distill = l.distill.on, o.temperature = l.distill.temperature, o.alpha = l.distill.alpha;
  o.teacher = e.teacher;
  run_lowrank(o, e.command_line);
  return e.dir + "/model.safetensors";
}

// Fine-tuning against the uncompressed model's logits, keeping the input's edits and masks.
std::string run_step(const DistillStep& s, const StepEnv& e) {
  const auto t0 = std::chrono::steady_clock::now();
  bool lr_given = false;
  TrainOptions t = step_train_options(e, s.lr, lr_given);
  prepare_compress_options(t, lr_given);
  const DataBundle d = load_data(t, true);
  const auto classes = int64_t(d.classes.size());
  manual_seed(t.seed * 2654435761u + 17);
  nn::ModulePtr student = load_trained_model(t, d);
  TrainOptions tt = t;
  tt.checkpoint = e.teacher;
  nn::ModulePtr teacher = load_trained_model(tt, d);
  const train::EvalResult before = train::evaluate(*student, d.test, 256, classes, false, t.workers);
  const bool masked = pruned_weights_in(e.input);
  compress::MaskSet masks = masked ? compress::masks_from_zeros(*student) : compress::MaskSet{};
  MaskCallback keep(masks);
  train::Distiller distiller(*student, *teacher, s.temperature, s.alpha);
  const train::EvalResult after = compress_fine_tune(t, d, *student, s.epochs, t.seed + 3, "distillation",
                                                     distiller.loss(), {&keep});
  train::Metadata meta = weight_metadata(t);
  if (const std::string edits = edits_in(e.input); !edits.empty()) meta[compress::kEditsKey] = edits;
  if (masked) meta[kMasksKey] = "zeros";
  nlohmann::json summary = {{"distill", {{"temperature", s.temperature}, {"alpha", s.alpha}, {"teacher", e.teacher}}},
                            {"lr", t.lr}};
  write_compress_outputs(t, *student, meta,
                         {student->num_parameters(), before.accuracy, after.accuracy, s.epochs, t0}, e.command_line,
                         summary);
  return e.dir + "/model.safetensors";
}

// train_cifar --qat on the input, with its int8 program exported as DIR/model.finch.
std::string run_step(const QatStep& s, const StepEnv& e) {
  TrainOptions q = e.base;
  q.checkpoint = e.input;
  q.out_dir = e.dir;
  adopt_model_of(q.checkpoint, q, q.model_given, q.width_given);
  check_width(q.model, q.width);
  q.augment = true;
  finalize_data_options(q);
  q.qat = true;
  q.qat_epochs = s.epochs;
  q.qconfig = s.qconfig;
  q.lr = default_lr(q.model, q.optimizer);
  q.qat_lr = s.lr > 0 ? s.lr : q.lr / 20;  // train_cifar --qat's default
  q.freeze_bn_epoch = q.freeze_observer_epoch = s.epochs - 1;
  if (q.weight_decay < 0) q.weight_decay = 5e-4;
  q.export_program = e.dir + "/model.finch";
  create_out_dir(e.dir);
  run_qat(q, e.command_line, /*quiet=*/false);
  return e.input;
}

QuantizeOptions quantize_options(const StepEnv& e, const std::string& mode, const std::string& qconfig) {
  QuantizeOptions q;
  q.data = e.base;
  q.data.checkpoint = e.input;
  q.mode = mode;
  q.qconfig = qconfig;
  q.out = e.dir + "/model.finch";
  q.report = e.dir + "/summary.json";
  q.latency_images = 0;  // timed later, side by side
  return q;
}

std::string run_step(const PtqStep& s, const StepEnv& e) {
  QuantizeOptions q = quantize_options(e, s.mode, s.qconfig);
  q.observer = s.observer;
  q.calib_batches = s.calib_batches;
  create_out_dir(e.dir);
  finalize_quantize_options(q);
  run_quantize(q, e.command_line);
  return e.input;
}

// Writes `program`: fp32 with finch compile, fp16 with finch quantize --mode fp16, int8 from the
// qat/ptq step before (`quantized`) or else finch quantize --mode static.
void run_compile_step(const CompileStep& c, const StepEnv& e, const std::string& quantized, const std::string& program) {
  create_out_dir(e.dir);
  if (c.precision == "fp32") {
    ProgramOptions p;
    p.data = e.base;
    p.data.checkpoint = e.input;
    p.out = program;
    run_compile(p, e.base.model_given);
    return;
  }
  if (c.precision == "int8" && !quantized.empty()) {
    fs::copy_file(quantized, program, fs::copy_options::overwrite_existing);
    return;
  }
  QuantizeOptions q = quantize_options(e, c.precision == "fp16" ? "fp16" : "static", c.precision == "fp16" ? "fp16" : "int8");
  q.out = program;
  finalize_quantize_options(q);
  run_quantize(q, e.command_line);
}

struct Shared {
  const CompressOptions& o;
  const TrainOptions& prepared;  // model and width read from the checkpoint, data defaults filled
  const DataBundle& d;
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
    const std::string model = dir + "/steps/" + step_dir_name(i, kind) + "/model.safetensors";
    if (fs::exists(model)) s.made.emplace(prefix.dump(), model);
  }
}

// The finished variant's numbers: parameters of its weights, sizes, the program's test accuracy.
void measure(const Shared& s, const std::string& dir, VariantRow& row) {
  TrainOptions t = s.prepared;
  t.checkpoint = dir + "/model.safetensors";
  row.parameters = load_trained_model(t, s.d)->num_parameters();
  row.checkpoint_bytes = int64_t(fs::file_size(t.checkpoint));
  const std::string program = dir + "/model.finch";
  row.program_bytes = int64_t(fs::file_size(program));
  runtime::Graph g = runtime::read_program(program);
  // By the stored constants (the runtime widens f16 weights to f32 when it loads them).
  row.precision = "fp32";
  for (const auto& v : g.values)
    if (v.is_constant() && (v.dtype == DType::i8 || v.dtype == DType::u8)) row.precision = "int8";
    else if (v.is_constant() && v.dtype == DType::f16 && row.precision == "fp32") row.precision = "fp16";
  runtime::Program p(std::move(g), program);
  const train::Forward f = [&p](const Tensor& x) { return p.run(x); };
  row.accuracy = train::evaluate(f, s.d.test, 64, int64_t(s.d.classes.size())).accuracy;
}

// Runs one variant in DIR/<name>.partial and renames it; the row says ok or which step failed.
VariantRow build_variant(Shared& s, const RecipeVariant& v, const std::string& final_dir) {
  VariantRow row;
  row.name = v.name;
  for (const auto& st : v.steps) row.steps.push_back(st.json);
  const std::string partial = final_dir + ".partial";
  fs::remove_all(partial);
  fs::create_directories(partial + "/steps");
  std::string input = s.prepared.checkpoint, quantized, qat_state;
  bool same_start = true;  // every step so far made a float model (may still match s.made)
  size_t i = 0;
  try {
    for (i = 0; i < v.steps.size(); ++i) {
      const RecipeStep& st = v.steps[i];
      StepEnv e{s.o.train, input, partial + "/steps/" + step_dir_name(i, st.kind), s.prepared.checkpoint, s.command_line};
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
        run_compile_step(*c, e, quantized, partial + "/model.finch");
        continue;
      }
      input = std::visit([&](const auto& spec) -> std::string {
        if constexpr (std::is_same_v<std::decay_t<decltype(spec)>, CompileStep>) return input;
        else return run_step(spec, e);
      }, st.spec);
      if (st.kind == "qat" || st.kind == "ptq") quantized = e.dir + "/model.finch";
      if (st.kind == "qat") qat_state = e.dir + "/qat_model.safetensors";
    }
    fs::copy_file(input, partial + "/model.safetensors", fs::copy_options::overwrite_existing);
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
  vj["checkpoint"] = s.prepared.checkpoint;
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
    if (vj.value("checkpoint", "") == s.prepared.checkpoint && vj.at("steps") == steps && vj.value("status", "") == "ok" &&
        vj.value("settings", nlohmann::json()) == s.settings &&
        fs::exists(dir + "/model.finch") && fs::exists(dir + "/model.safetensors")) {
      row = VariantRow::from_json(vj);
      return true;
    }
  } catch (const std::exception&) {
  }
  fail(dir, " exists but was not made by these steps from ", s.prepared.checkpoint,
       " with these data and fine-tuning options (variant.json differs or is missing); remove it or choose another --out");
}

}  // namespace

int run_compress(CompressOptions o, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  const Recipe recipe = load_recipe(o.recipe);  // every field checked before any work
  const CriterionWeights w = parse_weights(o.weights);
  TrainOptions prepared = o.train;
  prepare_compress_options(prepared, false);
  o.train.model = prepared.model, o.train.width = prepared.width;
  const DataBundle d = load_data(prepared, false);
  const std::string out = o.train.out_dir;
  create_out_dir(out);
  Shared s{o, prepared, d, command_line, {}, {}};
  s.settings = {{"dataset", prepared.dataset},     {"data", prepared.data_dir},       {"test_images", d.test->size()},
                {"limit_train", prepared.limit_train}, {"batch_size", prepared.batch_size}, {"seed", prepared.seed},
                {"lr", o.train.lr},                {"mean", prepared.mean},           {"std", prepared.std}};

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
                           {"checkpoint", prepared.checkpoint},
                           {"model", prepared.model},
                           {"dataset", prepared.dataset},
                           {"test_images", d.test->size()},
                           {"threads", get_num_threads()},
                           {"latency_rounds", o.latency_rounds},
                           {"latency_iters", o.latency_iters},
                           {"weights", {w.size, w.time, w.accuracy}},
                           {"seed_sign", o.seed_sign},
                           {"criterion", std::string("L = wS·ΔS + wT·ΔT ") + (o.seed_sign ? "+" : "−") +
                                             " wA·ΔA, Δx = (x − x_baseline) / x_baseline; S = program bytes, T = "
                                             "batch-1 median latency, A = test accuracy; lowest L recommended"},
                           {"finch_version", finch_version()},
                           {"command_line", command_line}};
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
    rows[i] = build_variant(s, v, dirs[i]);
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
  Generator g(0);
  const Tensor x = d.test->get(0, g).image.to(DType::f32).unsqueeze(0).contiguous();
  std::cerr << "\n== finch compress: timing " << programs.size() << " programs side by side, batch 1, "
            << get_num_threads() << " thread(s) ==\n";
  time_side_by_side(programs, timed, o.latency_rounds, o.latency_iters, x);
  score_rows(rows, w, o.seed_sign);
  header["wall_seconds"] =
      train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  write_report();

  std::printf("\n%-22s %10s %10s %10s %6s %9s %10s %8s\n", "variant", "params", "ckpt KiB", "prog KiB", "prec",
              "accuracy", "ms/image", "L");
  int failed = 0;
  for (const auto& r : rows) {
    if (r.status != "ok") {
      ++failed;
      std::printf("%-22s failed at step %lld (%s): %s\n", r.name.c_str(), static_cast<long long>(r.failed_step),
                  r.failed_kind.c_str(), r.error.c_str());
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
