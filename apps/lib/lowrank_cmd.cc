// `finch lowrank` (see lowrank_cmd.h): load → evaluate → factorize → [fine-tune, distil] →
// evaluate → save.
#include "apps/lib/lowrank_cmd.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_cmd_common.h"
#include "apps/lib/datasets.h"
#include "apps/lib/trainer.h"
#include "compress/edits.h"
#include "compress/lowrank.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/results.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "train/evaluate.h"

namespace finch::apps {

void add_lowrank_options(CLI::App& app, LowRankCmdOptions& o) {
  TrainOptions& t = o.train;
  add_compress_input_options(app, t);
  app.add_option("--rank-fraction", o.rank_fraction, "each layer's rank as a fraction of its full rank")
      ->check(number_in(1e-9, 1, "a fraction in (0, 1]"));
  app.add_option("--energy", o.energy, "each layer keeps the smallest rank holding this share of Σ s²")
      ->check(number_in(1e-9, 1, "a fraction in (0, 1]"));
  app.add_option("--compression", o.compression, "each layer (or with --global the whole model) this many times "
                                                 "smaller in parameters")
      ->check(number_in(1, 1e9, "a number ≥ 1"));
  app.add_flag("--global", o.global, "--compression for the whole model: one kept-energy threshold for all layers");
  app.add_option("--skip", o.skip, "module paths left dense (e.g. classifier.1)");
  app.add_option("--fine-tune-epochs", o.fine_tune_epochs, "fine-tuning epochs after factorizing")
      ->check(CLI::Range(int64_t(0), int64_t(1000)))
      ->capture_default_str();
  app.add_flag("--distill", o.distill, "fine-tune against the unfactorized model's logits (knowledge distillation)");
  app.add_option("--temperature", o.temperature, "distillation temperature T")
      ->check(number_in(1e-3, 1e3, "a number in [0.001, 1000]"))
      ->capture_default_str();
  app.add_option("--alpha", o.alpha, "distillation: weight of the soft (teacher) term, 1 − α on the labels")
      ->check(number_in(0, 1, "a fraction in [0, 1]"))
      ->capture_default_str();
  add_compress_fine_tune_options(app, t, /*normalization=*/false);
}

int run_lowrank(LowRankCmdOptions o, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainOptions& t = o.train;
  const int rules = (o.rank_fraction > 0) + (o.energy > 0) + (o.compression > 0);
  if (rules != 1) fail("finch lowrank: give exactly one of --rank-fraction, --energy and --compression");
  if (o.global && o.compression <= 0) fail("finch lowrank: --global goes with --compression");
  if (o.distill && o.fine_tune_epochs < 1) fail("finch lowrank: --distill needs --fine-tune-epochs 1 or more");
  prepare_compress_options(t, o.lr_given);
  const DataBundle d = load_data(t, o.fine_tune_epochs > 0);
  const auto classes = int64_t(d.classes.size());
  manual_seed(t.seed * 2654435761u + 13);
  nn::ModulePtr model = load_trained_model(t, d);
  auto test = [&](nn::Module& m) { return train::evaluate(m, d.test, 256, classes, false, t.workers); };
  const train::EvalResult before = test(*model);
  const int64_t params_before = model->num_parameters();
  std::cerr << "finch lowrank: " << t.model << " from " << t.checkpoint << " (" << params_before
            << " parameters, test accuracy " << before.accuracy << ")\n";

  compress::LowRankOptions lo;
  lo.rank_fraction = o.rank_fraction, lo.energy = o.energy, lo.compression = o.compression;
  lo.global = o.global;
  lo.skip = o.skip;
  const compress::LowRankResult r = compress::factorize(*model, lo);
  nlohmann::json layers = nlohmann::json::array();
  int64_t factorized = 0;
  for (const auto& l : r.layers) {
    factorized += l.rank > 0;
    nlohmann::json j = {{"module", l.path},        {"layer", l.layer},   {"out", l.out},
                        {"fan_in", l.fan_in},      {"full_rank", l.full_rank}, {"rank", l.rank},
                        {"params_before", l.params_before}, {"params_after", l.params_after}};
    if (l.rank > 0) j["kept_energy"] = l.kept_energy;
    if (!l.skipped.empty()) j["left_dense"] = l.skipped;
    layers.push_back(j);
  }
  if (factorized == 0) fail("finch lowrank: no layer of ", t.model, " shrinks at this rank rule; ask for a lower rank");
  const train::EvalResult factorized_r = test(*model);
  std::cerr << "factorized " << factorized << " of " << r.layers.size() << " Linear/Conv2d layers: " << r.params_after
            << " parameters, test accuracy before fine-tuning " << factorized_r.accuracy << "\n";
  train::EvalResult after = factorized_r;
  if (o.fine_tune_epochs > 0) {
    nn::ModulePtr teacher;
    std::unique_ptr<train::Distiller> distiller;
    train::LossFn loss = classification_loss(t.label_smoothing);
    if (o.distill) {
      TrainOptions tt = t;
      if (!o.teacher.empty()) tt.checkpoint = o.teacher;
      teacher = load_trained_model(tt, d);  // the unfactorized model, as it was loaded
      distiller = std::make_unique<train::Distiller>(*model, *teacher, o.temperature, o.alpha);
      loss = distiller->loss();
    }
    // fit's last evaluation
    after = compress_fine_tune(t, d, *model, o.fine_tune_epochs, t.seed + 1, "low-rank fine-tune", loss);
  }
  train::Metadata meta = weight_metadata(t);
  std::string edits = edits_in(t.checkpoint);
  for (const auto& e : r.edits) edits = compress::append_edit(edits, e);
  meta[compress::kEditsKey] = edits;
  nlohmann::json s = nlohmann::json::object();
  s["rule"] = o.rank_fraction > 0 ? nlohmann::json{{"rank_fraction", o.rank_fraction}}
              : o.energy > 0      ? nlohmann::json{{"energy", o.energy}}
                                  : nlohmann::json{{"compression", o.compression}, {"global", o.global}};
  s["test_accuracy_factorized"] = factorized_r.accuracy;
  if (o.fine_tune_epochs > 0) s["lr"] = t.lr;
  if (o.distill) s["distill"] = {{"temperature", o.temperature}, {"alpha", o.alpha}};
  s["layers"] = layers;
  write_compress_outputs(t, *model, meta, {params_before, before.accuracy, after.accuracy, o.fine_tune_epochs, t0},
                         command_line, s);
  const std::string out = t.out_dir + "/";
  std::printf("parameters %lld -> %lld (%.3fx), test accuracy %.4f -> %.4f (%.4f before fine-tuning); %smodel.safetensors\n",
              static_cast<long long>(params_before), static_cast<long long>(model->num_parameters()),
              double(model->num_parameters()) / double(params_before), before.accuracy, after.accuracy,
              factorized_r.accuracy, out.c_str());
  return 0;
}

}  // namespace finch::apps
