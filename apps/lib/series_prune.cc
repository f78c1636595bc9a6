// `finch prune` for series and text models (see series_prune.h).
#include "apps/lib/series_prune.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_series_distill.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_train.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "autograd/engine.h"
#include "autograd/nn/rnn.h"
#include "compress/edits.h"
#include "compress/structured.h"
#include "data/dataloader.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/losses.h"

namespace finch::apps {
namespace {

double metric(const train::EvalResult& r) { return r.regression ? r.mse : r.accuracy; }

// Each recurrent module's hidden_size ("rnn": 32), what summary.json reports before and after.
nlohmann::json hidden_sizes(nn::Module& m) {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [path, mod] : m.named_modules())
    if (auto* r = dynamic_cast<nn::RNNBase*>(mod)) j[path.empty() ? "model" : path] = r->hidden_size;
  return j;
}

}  // namespace

int run_sequence_prune(const PruneOptions& o, SeriesOptions s, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainOptions& t = o.train;
  const std::string& ckpt = t.checkpoint;
  if (!o.structured)
    fail(ckpt, " holds a series or text model: finch prune removes its LSTM/GRU hidden units and conv channels with "
               "--structured; unstructured masks are for image models");
  if (t.model_given || t.width_given)
    fail(ckpt, " records a series or text model; drop --model and --width (the checkpoint rebuilds the model)");
  if (t.threads > 0) set_num_threads(t.threads);
  const SafetensorsFile f = load_safetensors(ckpt);
  s.checkpoint = ckpt;
  const SequenceData d = load_sequence_data(s, f.metadata, t.data_dir, ckpt);
  const models::SeriesSpec spec = checkpoint_spec(f, s, d);
  manual_seed(t.seed * 2654435761u + 13);
  nn::ModulePtr model = models::create_series(spec, nullptr);
  load_weights(ckpt, *model);  // a pruned file's edits first: pruning again appends one
  model->eval();

  train::EvalConfig ec;
  ec.batch_size = 256;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.workers = t.workers;
  ec.target_std = d.target_std;
  const char* what = d.regression ? "test mse" : "test accuracy";
  const train::EvalResult before = train::evaluate(*model, d.test, ec);
  const int64_t params_before = model->num_parameters();
  const nlohmann::json sizes_before = hidden_sizes(*model);
  std::cerr << "finch prune: " << spec.name << " from " << ckpt << " (" << params_before << " parameters, " << what
            << " " << metric(before) << ")\n";

  const train::LossFn loss = d.regression ? train::regression_loss() : train::classification_loss(t.label_smoothing);
  data::DataLoaderOptions lo;
  lo.batch_size = t.batch_size;
  lo.shuffle = true;
  lo.drop_last = d.train->size() > t.batch_size && d.train->size() % t.batch_size == 1;
  lo.num_workers = t.workers;
  lo.seed = t.seed;
  // Taylor: gradients of the loss over a few training batches, in eval mode (no dropout).
  auto accumulate = [&](nn::Module& m) {
    data::DataLoaderOptions tl = lo;
    tl.seed = t.seed + 99;
    data::DataLoader loader(d.train, tl);
    loader.start_epoch(0);
    data::Batch b;
    m.eval();
    for (int64_t i = 0; i < o.taylor_batches && loader.next(b); ++i)
      backward(loss(train::forward_batch(m, b), d.regression ? b.targets : b.labels));
  };
  Generator g(0);
  const Tensor example = d.test->get(0, g).image.unsqueeze(0);
  compress::StructuredOptions so;
  so.amount = o.amount;
  so.score = compress::parse_score(o.score);
  so.global = o.global;
  const compress::StructuredResult r = compress::prune_structured(*model, example, so, accumulate);
  if (r.prunable_channels == 0)
    fail(spec.name, " has no hidden units or channels that structured pruning can remove (docs/pruning.md)");
  const train::EvalResult pruned = train::evaluate(*model, d.test, ec);
  std::cerr << "removed " << r.removed_channels << " of " << r.prunable_channels << " prunable units/channels ("
            << o.score << (o.global ? ", global" : ", per group") << "): " << r.parameters_after << " parameters, "
            << what << " before fine-tuning " << metric(pruned) << "\n";

  // Fine-tuning: Adam at train_series/train_text's lr 1e-3 unless given, cosine to 0, from a fresh
  // optimizer (the layers changed shape). Their lr / 10 (image models' rule) was too low to recover
  // a halved LSTM: BasicMotions, 2 × LSTM(64) → 32 units, 20 epochs: 52.5 % at 1e-4, 80–90 % at 1e-3.
  // --distill: against the teacher's logits (--teacher, else the unpruned --checkpoint).
  const double lr = o.lr_given ? t.lr : 1e-3;
  nn::ModulePtr teacher;
  const std::string teacher_path = o.teacher.empty() ? ckpt : o.teacher;
  if (o.distill) {
    if (o.fine_tune_epochs < 1) fail("--distill fine-tunes against the teacher: give --fine-tune-epochs 1 or more");
    teacher = load_sequence_teacher(teacher_path, s, d, spec.num_classes);
    std::cerr << "distilling from " << teacher_path << " (temperature " << o.temperature << ", alpha " << o.alpha
              << ")\n";
  }
  const train::EvalResult after =
      o.fine_tune_epochs > 0
          ? fine_tune_sequence(model, d, t, lr, o.fine_tune_epochs, "pruning fine-tune",
                               {teacher.get(), o.temperature, o.alpha})
          : pruned;

  train::Metadata meta(f.metadata.begin(), f.metadata.end());  // the spec and the data preparation
  const auto e = f.metadata.find(compress::kEditsKey);
  meta[compress::kEditsKey] = compress::append_edit(e == f.metadata.end() ? "" : e->second, r.edit);
  meta["finch_version"] = finch_version();
  create_out_dir(t.out_dir);
  const std::string out = t.out_dir + "/";
  train::save_weights(out + "model.safetensors", *model, meta);
  nlohmann::json sm = {{"model", spec.name},
                       {"dataset", d.name},
                       {"checkpoint", ckpt},
                       {"parameters_before", params_before},
                       {"parameters_after", model->num_parameters()},
                       {"hidden_size_before", sizes_before},
                       {"hidden_size_after", hidden_sizes(*model)},
                       {"structured",
                        {{"amount", o.amount},
                         {"score", o.score},
                         {"global", o.global},
                         {"prunable_channels", r.prunable_channels},
                         {"removed_channels", r.removed_channels}}},
                       {"fine_tune_epochs", o.fine_tune_epochs},
                       {"lr", lr},
                       {"model_file_bytes", int64_t(std::filesystem::file_size(out + "model.safetensors"))},
                       {"finch_version", finch_version()},
                       {"command_line", command_line}};
  if (o.distill) sm["distill"] = {{"temperature", o.temperature}, {"alpha", o.alpha}, {"teacher", teacher_path}};
  if (d.regression) {
    sm["test_mse_before"] = before.mse, sm["test_mse_pruned"] = pruned.mse, sm["test_mse"] = after.mse;
  } else {
    sm["test_accuracy_before"] = before.accuracy, sm["test_accuracy_pruned"] = pruned.accuracy;
    sm["test_accuracy"] = after.accuracy;
  }
  sm["wall_seconds"] =
      train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  write_json_file(out + "summary.json", sm);
  std::printf("parameters %lld -> %lld (%.3fx), %s %.4f -> %.4f; %smodel.safetensors\n",
              static_cast<long long>(params_before), static_cast<long long>(model->num_parameters()),
              double(model->num_parameters()) / double(params_before), what, metric(before), metric(after),
              out.c_str());
  return 0;
}

}  // namespace finch::apps
