// finch compile / run / inspect / verify (see program_cmds.h).
#include "apps/lib/program_cmds.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>

#include "apps/lib/checkpoint.h"
#include "apps/lib/datasets.h"
#include "apps/lib/program_build.h"
#include "apps/lib/program_inspect.h"
#include "apps/lib/sparse_report.h"
#include "data/dataloader.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "models/factory.h"
#include "ops/reduce.h"
#include "compile/capture.h"
#include "compress/edits.h"
#include "kernels/quantize.h"
#include "quant/checkpoint.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "runtime/verify.h"
#include "train/metrics.h"

namespace finch::apps {

namespace {

void add_data_options(CLI::App& app, ProgramOptions& o) {
  app.add_option("--dataset", o.data.dataset, "cifar10, cifar100, fashion-mnist or folder (default: the program's)")
      ->check(CLI::IsMember({"cifar10", "cifar100", "fashion-mnist", "folder"}));
  app.add_option("--data", o.data.data_dir, "dataset folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist)");
  app.add_option("--mean", o.data.mean, "per-channel normalization mean (default: the program's)")->expected(1, 3);
  app.add_option("--std", o.data.std, "per-channel normalization std (default: the program's)")->expected(1, 3);
  app.add_option("--limit-test", o.data.limit_test, "use only the first N test images");
  app.add_option("--image-size", o.data.image_size,
                 "--dataset folder: resize photos to this size (default: the program's input, or the size "
                 "the checkpoint was trained at, else 32)")
      ->check(CLI::Range(8, 1024))
      ->each([&o](const std::string&) { o.data.image_size_given = true; });
  app.add_option("--threads", o.data.threads, "compute threads (0: all cores)");
  app.add_option("--batch-size", o.batch_size, "images per run")->check(CLI::PositiveNumber)->capture_default_str();
}

runtime::ProgramOptions program_options(const ProgramOptions& o) {
  runtime::ProgramOptions r;
  r.reference_kernels = o.reference_kernels;
  return r;
}

// Dataset and normalization default to what the program was built for.
void data_from_meta(ProgramOptions& o, const runtime::Graph& g, bool dataset_given) {
  // The program's own problems (meta.std of 0 included) name the file before its meta is adopted.
  if (const auto problems = runtime::verify(g, o.program, program_options(o)); !problems.empty()) throw Error(problems[0]);
  if (!dataset_given && g.meta.contains("dataset")) o.data.dataset = g.meta["dataset"].get<std::string>();
  if (o.data.mean.empty() && g.meta.contains("mean")) o.data.mean = g.meta["mean"].get<std::vector<float>>();
  if (o.data.std.empty() && g.meta.contains("std")) o.data.std = g.meta["std"].get<std::vector<float>>();
  if (g.meta.contains("model")) o.data.model = g.meta["model"].get<std::string>();
  if (g.meta.contains("width")) o.data.width = g.meta["width"].get<double>();  // programs before --width: 1
  // A photo folder is resized to the program's input size (a 224×224 program reads 224×224 photos).
  if (!o.data.image_size_given && g.meta.contains("input") && g.meta["input"].is_array() && g.meta["input"].size() == 3 &&
      g.meta["input"][1].is_number_integer() && g.meta["input"][1] == g.meta["input"][2]) {
    const int64_t side = g.meta["input"][1].get<int64_t>();
    if (side >= 8 && side <= 1024) o.data.image_size = side;
  }
  if (g.meta.contains("stem")) {  // programs before --stem: cifar
    const nlohmann::json& stem = g.meta["stem"];
    if (!stem.is_string() || (stem != "cifar" && stem != "imagenet"))
      fail(o.program, ": meta 'stem' should be \"cifar\" or \"imagenet\", found ", stem.dump());
    o.data.stem = stem.get<std::string>();
  }
  o.data.augment = false;
  finalize_data_options(o.data);
}

Tensor first_image(const DataBundle& d) {
  Generator g(0);
  return d.test->get(0, g).image.to(DType::f32).unsqueeze(0).contiguous();
}

}  // namespace

void add_compile_options(CLI::App& app, ProgramOptions& o) {
  app.add_option("--model", o.data.model, "network (default: the one the checkpoint names)")
      ->check(CLI::IsMember(models::model_names()));
  app.add_option("--checkpoint", o.data.checkpoint, "trained fp32 weights (model.safetensors)")->required();
  app.add_option("--width", o.data.width, "MobileNet width multiplier (default: the checkpoint's)");
  app.add_option("--out", o.out, "the program to write (.finch)")->required();
  add_data_options(app, o);
}

void add_run_options(CLI::App& app, ProgramOptions& o) {
  app.add_option("program", o.program, "a .finch program")->required();
  add_data_options(app, o);
  app.add_option("--predictions", o.data.predictions, "CSV of per-image predictions (index, label, predicted, logits)");
  app.add_option("--latency-images", o.latency_images, "test images timed one at a time")->capture_default_str();
  app.add_flag("--profile", o.profile, "per-node time table over the latency run");
  app.add_flag("--reference-kernels", o.reference_kernels,
               "run on the reference kernels instead of the optimized ones (slower; the same results, an fp32 "
               "program's conv2d/linear to float rounding)");
  app.add_option("--json", o.json, "JSON report (accuracy, per-class accuracy, latency)");
}

void add_inspect_options(CLI::App& app, ProgramOptions& o) {
  app.add_option("program", o.program, "a .finch program")->required();
  app.add_option("--dot", o.dot, "also write the graph for Graphviz (dot -Tsvg FILE)");
  add_sparse_option(app, o.sparse);
}

void add_verify_options(CLI::App& app, ProgramOptions& o) {
  app.add_option("program", o.program, "a quantized .finch program")->required();
  app.add_flag("--reference-kernels", o.reference_kernels,
               "run on the scalar reference kernels instead of the optimized ones (same results, slower)");
  // Required, but checked by each path: a BERT program takes --weights DIR (bert_sim_check_cmd.h).
  app.add_option("--checkpoint", o.data.checkpoint,
                 "the simulated model: qat_model.safetensors of train_cifar --qat, or the .sim.safetensors "
                 "finch quantize writes beside a program (a BERT program: the directory of its float weights)");
  add_data_options(app, o);
  app.add_option("--json", o.json, "JSON report of the per-layer comparison");
}

int run_compile(ProgramOptions o, bool model_given) {
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  adopt_model_of(o.data.checkpoint, o.data, model_given, o.data.width_given);
  o.data.augment = false;
  finalize_data_options(o.data);
  const DataBundle d = load_data(o.data, false);
  nn::ModulePtr model = models::create(o.data.model, d.channels, int64_t(d.classes.size()), zoo_options(o.data, d.height));
  load_weights(o.data.checkpoint, *model);
  runtime::Graph g = float_program(*model, first_image(d), program_meta(o.data, d.channels, d.height, d.width, d.classes));
  runtime::Program check(g, o.out);  // validate before writing
  runtime::write_program(g, o.out);
  print_program_summary(g, o.out);
  std::printf("fp32 program: %s (%.1f KiB; the checkpoint is %.1f KiB)\n", o.out.c_str(),
              double(std::filesystem::file_size(o.out)) / 1024.0,
              double(std::filesystem::file_size(o.data.checkpoint)) / 1024.0);
  return 0;
}

int run_run(ProgramOptions o) {
  const bool dataset_given = !o.data.dataset.empty();
  runtime::Graph g = runtime::read_program(o.program);
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  if (!dataset_given) o.data.dataset = "fashion-mnist";
  data_from_meta(o, g, dataset_given);
  const DataBundle d = load_data(o.data, false);
  runtime::Program p(std::move(g), o.program, program_options(o));
  // The executor alone computes the logits; the metrics are plain functions of them (no autograd).
  const train::Forward run = [&p](const Tensor& x) { return p.run(x); };
  const int64_t classes = int64_t(d.classes.size());
  const train::EvalResult r = train::evaluate(run, d.test, o.batch_size, classes, !o.data.predictions.empty());
  if (!o.data.predictions.empty()) train::write_predictions_csv(o.data.predictions, r);
  p.set_profiling(o.profile);
  const double lat = train::batch1_latency_ms(run, *d.test, o.latency_images);
  std::printf("%s: accuracy %.2f%% on %lld images (%s), batch-1 latency %.3f ms/image, %d threads\n",
              o.program.c_str(), 100 * r.accuracy, static_cast<long long>(r.count), o.data.dataset.c_str(), lat,
              get_num_threads());
  const auto pc = r.per_class_accuracy();
  std::printf("per class:");
  for (size_t c = 0; c < pc.size(); ++c) std::printf(" %s %.1f%%", d.classes[c].c_str(), 100 * pc[c]);
  std::printf("\n");
  if (o.profile) print_profile(p);
  if (!o.json.empty())
    write_json_file(o.json, {{"program", o.program}, {"accuracy", r.accuracy}, {"images", r.count},
                             {"per_class_accuracy", pc}, {"latency_ms", lat}, {"threads", get_num_threads()},
                             {"precision", p.graph().meta.value("precision", "")}});
  return 0;
}

int run_inspect(const ProgramOptions& o) {
  const runtime::Graph g = runtime::read_program(o.program);
  // The checks every runner makes at load (runtime/verify.h), all of them: a program inspect
  // lists must be one the runners accept, and a refused one gets every reason, not the first.
  if (const std::vector<std::string> problems = runtime::verify(g, o.program); !problems.empty()) {
    std::fprintf(stderr, "%s: every runner refuses this program; %zu problem%s:\n", o.program.c_str(), problems.size(),
                 problems.size() == 1 ? "" : "s");
    for (const std::string& p : problems) std::fprintf(stderr, "  %s\n", p.c_str());
    return 1;
  }
  print_graph_table(g, o.program);
  // The kernels a runner prepares at load: which conv/linear nodes run sparse. A program that
  // passes verify but not the load's dry run is still listed; the report says why it is missing.
  const runtime::SparseKernels mode = runtime::sparse_kernels_from_name(o.sparse, "--sparse");
  try {
    runtime::ProgramOptions po;
    po.sparse = mode;
    print_sparse_nodes(runtime::Program(g, o.program, po), mode);
  } catch (const Error& e) {
    std::printf("sparse kernels: unknown, the program does not load: %s\n", e.what());
  }
  if (!o.dot.empty()) {
    write_file_atomically(o.dot, graph_dot(g));
    std::printf("graphviz: %s\n", o.dot.c_str());
  }
  return 0;
}

void require_verify_checkpoint(const ProgramOptions& o) {
  if (o.data.checkpoint.empty())
    fail("finch verify ", o.program, " needs --checkpoint: the simulated model (qat_model.safetensors of train_cifar "
         "--qat, or the .sim.safetensors finch quantize writes beside a program)");
}

int run_verify(ProgramOptions o) {
  require_verify_checkpoint(o);
  const bool dataset_given = !o.data.dataset.empty();
  runtime::Graph g = runtime::read_program(o.program);
  if (const auto problems = runtime::verify(g, o.program, program_options(o)); !problems.empty()) throw Error(problems[0]);
  if (!g.meta.contains("quantization"))
    fail(o.program, " is a ", g.meta.value("precision", "float"), " program; verify compares a quantized program "
         "with its simulated model");
  // An fp16 program's conv2d/linear run on the packed fp32 kernels (or natively in fp16 on an
  // ARMv8.2 FP16 CPU), which sum in another order than the simulation, as an fp32 program's do:
  // what must equal the simulation bit for bit is the program run on its reference kernels.
  if (g.meta.value("precision", "") == "fp16" && !o.reference_kernels) {
    o.reference_kernels = true;
    std::printf("%s: fp16 program, compared on its reference kernels (its optimized ones differ by float rounding)\n",
                o.program.c_str());
  }
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  if (!dataset_given) o.data.dataset = "fashion-mnist";
  const std::string checkpoint = o.data.checkpoint;
  data_from_meta(o, g, dataset_given);
  const DataBundle d = load_data(o.data, false);
  const nlohmann::json qm = g.meta["quantization"];
  runtime::Program p(std::move(g), o.program, program_options(o));

  // The simulated model: the zoo model prepared as the program was, with the checkpoint's state.
  nn::ModulePtr model = models::create(o.data.model, d.channels, int64_t(d.classes.size()), zoo_options(o.data, d.height));
  const quant::QuantizedModelState saved = quant::load_quantized_state(checkpoint);
  const nn::StateDict& state = saved.quant;
  // A pruned or factorized model: its smaller layers first (the file's compress_edits).
  if (const auto e = saved.metadata.find(compress::kEditsKey); e != saved.metadata.end() && !e->second.empty())
    compress::apply_edits(*model, e->second, checkpoint);
  model->load_state_dict(saved.weights);
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(qm.at("qconfig").get<std::string>());
  po.fuse = qm.at("fuse").get<bool>();
  po.skip = qm.at("skip").get<std::vector<std::string>>();
  po.dynamic = qm.at("mode").get<std::string>() == "dynamic";
  model->eval();
  auto q = quant::prepare(*model, first_image(d), po, false);
  // fp16 programs have no observers, so their simulation state is the weights alone.
  if (state.size() == 0 && q->state->state_dict().size() != 0)
    fail(checkpoint, " holds no quantization state (no 'quant.' tensors); expected qat_model.safetensors from "
         "train_cifar --qat or the .sim.safetensors that finch quantize writes beside a program");
  q->state->load_state_dict(state);
  quant::convert(*q);
  q->enable_observers(false);

  struct Layer {
    std::string name, op;
    int64_t compared = 0, mismatched = 0;
    double max_diff = 0;
  };
  std::map<std::string, size_t> index;
  std::vector<Layer> layers;
  std::map<std::string, std::string> op_of;
  for (const auto& n : p.graph().nodes)
    for (int32_t v : n.outputs) op_of[p.graph().values[size_t(v)].name] = n.op;
  data::DataLoaderOptions lo;
  lo.batch_size = o.batch_size;
  data::DataLoader loader(d.test, lo);
  loader.start_epoch(0);
  data::Batch b;
  int64_t images = 0, same_prediction = 0;
  while (loader.next(b)) {
    std::vector<Tensor> sim;
    const runtime::Graph sg = compile::capture_graph(*model, b.images, &sim);
    std::map<std::string, size_t> sim_index;
    for (size_t i = 0; i < sg.values.size(); ++i) sim_index[sg.values[i].name] = i;
    const std::vector<Tensor> got = p.run_all({b.images});
    for (size_t v = 0; v < p.graph().values.size(); ++v) {
      const runtime::Value& pv = p.graph().values[v];
      if (pv.is_constant() || !got[v].defined()) continue;
      const auto s = sim_index.find(pv.name);
      if (s == sim_index.end() || !sim[s->second].defined()) continue;
      Tensor want = sim[s->second];
      Tensor have = got[v];
      if (pv.quant) {  // codes: the simulated value on the program's grid
        quant::QParams qp{pv.quant->scale, pv.quant->zero_point, pv.quant->axis, pv.quant->qmin, pv.quant->qmax};
        want = quant::quantize(want.contiguous(), qp);
      }
      if (want.shape() != have.shape()) fail("verify: value '", pv.name, "' has shape ", shape_str(have.shape()),
                                             " in the program and ", shape_str(want.shape()), " in the model");
      const auto a = want.to(DType::f64).contiguous().to_vector<double>();
      const auto c = have.to(DType::f64).contiguous().to_vector<double>();
      auto [it, fresh] = index.emplace(pv.name, layers.size());
      if (fresh) layers.push_back({pv.name, op_of[pv.name]});
      Layer& L = layers[it->second];
      for (size_t i = 0; i < a.size(); ++i) {
        const double diff = std::fabs(a[i] - c[i]);
        L.compared += 1;
        L.mismatched += a[i] != c[i];  // exact: codes and float bits
        L.max_diff = std::max(L.max_diff, diff);
      }
    }
    const Tensor lp = got[size_t(p.graph().outputs[0])];
    const Tensor ls = sim[size_t(sg.outputs[0])];
    const auto pa = ops::argmax(lp, 1).to_vector<int64_t>(), sa = ops::argmax(ls.detach(), 1).to_vector<int64_t>();
    for (size_t i = 0; i < pa.size(); ++i) same_prediction += pa[i] == sa[i];
    images += int64_t(pa.size());
    std::fprintf(stderr, "\rverify: %lld images", static_cast<long long>(images));
  }
  std::fprintf(stderr, "\n");
  int64_t bad = 0;
  std::printf("%-40s %-12s %12s %10s %10s\n", "value", "op", "compared", "differ", "max |diff|");
  nlohmann::json rows = nlohmann::json::array();
  for (const Layer& L : layers) {
    std::printf("%-40s %-12s %12lld %10lld %10.4g\n", L.name.c_str(), L.op.c_str(), static_cast<long long>(L.compared),
                static_cast<long long>(L.mismatched), L.max_diff);
    bad += L.mismatched;
    rows.push_back({{"value", L.name}, {"op", L.op}, {"compared", L.compared}, {"differ", L.mismatched},
                    {"max_abs_diff", L.max_diff}});
  }
  const bool ok = bad == 0 && !layers.empty() && same_prediction == images;
  std::printf("%s: %zu values compared on %lld images; %lld elements differ; predictions agree on %lld/%lld -> %s\n",
              o.program.c_str(), layers.size(), static_cast<long long>(images), static_cast<long long>(bad),
              static_cast<long long>(same_prediction), static_cast<long long>(images), ok ? "AGREE" : "DIFFER");
  if (!o.json.empty())
    write_json_file(o.json, {{"program", o.program}, {"images", images}, {"agree", ok}, {"layers", rows},
                             {"same_predictions", same_prediction}});
  return ok ? 0 : 1;
}

}  // namespace finch::apps
