// finch compress on a series or text classifier (train_series/train_text; compress_model.h):
// structured pruning of LSTM/GRU hidden units and conv channels through finch prune on these
// models (series_prune.h, distilled or not), distillation against the uncompressed model
// (compress_series_distill.h), QAT of the LSTM/GRU layers (train_series --qat, series_qat.h),
// programs in fp32 (finch compile) and static or dynamic int8 (finch quantize on these models),
// each scored by its test accuracy as finch run scores it, with the data flags
// train_series/train_text and those commands take.
#include <filesystem>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_model.h"
#include "apps/lib/compress_series_distill.h"
#include "apps/lib/sequence_program.h"
#include "apps/lib/series_prune.h"
#include "apps/lib/series_qat.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_train.h"
#include "apps/lib/trainer.h"
#include "autograd/nn/rnn.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/checkpoint.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;

class SeriesModel final : public CompressModel {
 public:
  explicit SeriesModel(const CompressOptions& o) : o_(o), s_(o.series) {
    const TrainOptions& t = o.train;
    if (t.model_given || t.width_given || !t.mean.empty() || !t.std.empty() || t.limit_train > 0 || t.limit_test > 0 ||
        t.dataset != TrainOptions().dataset)
      fail(t.checkpoint, " records a series or text model: --model, --width, --dataset, --mean, --std, --limit-train "
           "and --limit-test are for image models (the checkpoint rebuilds the model and its input preparation)");
    const SafetensorsFile f = load_safetensors(t.checkpoint);
    s_.checkpoint = t.checkpoint;
    d_ = load_sequence_data(s_, f.metadata, t.data_dir, t.checkpoint);
    if (d_.regression)
      fail(t.checkpoint, " is a forecaster: finch compress scores classifiers by test accuracy (prune and quantize it "
           "with finch prune and finch quantize, which report its MSE)");
    const models::SeriesSpec spec = checkpoint_spec(f, s_, d_);
    model_name_ = spec.name;
    T_ = longest_sequence(d_);
    // The recurrent layers decide which int8 schemes apply (structure_refusal).
    nn::ModulePtr m = models::create_series(spec, nullptr);
    for (auto& [path, mod] : m->named_modules())
      recurrent_ += dynamic_cast<nn::LSTM*>(mod) != nullptr || dynamic_cast<nn::GRU*>(mod) != nullptr;
  }

  std::string structure_refusal(const RecipeStep& st) const override {
    const auto* p = std::get_if<PtqStep>(&st.spec);
    if (p && p->mode == "static" && p->qconfig != "int8" && recurrent_ > 0)
      return "qconfig " + p->qconfig + " does not reach the LSTM/GRU layers of " + model_name_ +
             ": every static program runs them int8 with weights per row (the qlstm/qgru kernels, quant/qat_rnn.h), "
             "so only its convs and head would follow the qconfig";
    if (std::holds_alternative<QatStep>(st.spec) && recurrent_ == 0)
      return "qat trains LSTM/GRU layers (train_series --qat, quant/qat_rnn.h) and " + model_name_ +
             " has none; use ptq (static or dynamic)";
    return "";
  }

  std::string metric_key() const override { return "test_accuracy"; }
  std::string metric_name() const override { return "test accuracy"; }
  nlohmann::json header() const override {
    return {{"model", model_name_},
            {"dataset", d_.name},
            {"test_images", d_.test->size()},
            {"test_set", std::to_string(d_.test->size()) + " test " + (d_.tokens ? "texts" : "series")}};
  }
  nlohmann::json settings() const override {
    return {{"data", sequence_data_json(s_)}, {"data_dir", o_.train.data_dir}, {"test_size", d_.test->size()},
            {"batch_size", batch_size()}, {"lr", o_.lr_given ? o_.train.lr : 0.0}, {"seed", o_.train.seed}};
  }
  std::string model_in(const std::string& dir) const override { return dir + "/model.safetensors"; }

  std::string run_step(const RecipeStep& st, const StepEnv& e) override {
    if (const auto* p = std::get_if<PruneStep>(&st.spec)) {
      PruneOptions po;
      po.train = o_.train;
      po.train.checkpoint = e.input;
      po.train.out_dir = e.dir;
      po.train.batch_size = batch_size();
      po.lr_given = p->lr > 0 || o_.lr_given;
      if (p->lr > 0) po.train.lr = p->lr;
      po.structured = true;
      po.amount = p->amount;
      po.score = p->criterion;
      po.global = p->global;
      po.fine_tune_epochs = p->fine_tune_epochs;
      po.distill = p->distill.on, po.temperature = p->distill.temperature, po.alpha = p->distill.alpha;
      po.teacher = e.teacher;  // the uncompressed checkpoint
      run_sequence_prune(po, s_, e.command_line);
      return e.dir + "/model.safetensors";
    }
    if (const auto* ds = std::get_if<DistillStep>(&st.spec)) {
      SequenceDistillOptions so;
      so.train = o_.train;
      so.train.checkpoint = e.input;
      so.train.out_dir = e.dir;
      so.train.batch_size = batch_size();
      so.lr_given = ds->lr > 0 || o_.lr_given;
      if (ds->lr > 0) so.train.lr = ds->lr;
      so.teacher = e.teacher;
      so.temperature = ds->temperature, so.alpha = ds->alpha, so.epochs = ds->epochs;
      run_sequence_distill(so, s_, e.command_line);
      return e.dir + "/model.safetensors";
    }
    if (const auto* q = std::get_if<QatStep>(&st.spec)) {
      // train_series --qat on the input: its int8 program as DIR/model.finch, checked equal to the
      // QAT model on every test logit, and the QAT model as DIR/qat_model.safetensors.
      SeriesOptions qo = s_;
      qo.checkpoint = e.input;
      qo.out_dir = e.dir;
      qo.seed = o_.train.seed;
      qo.threads = o_.train.threads;
      qo.workers = o_.train.workers;
      qo.batch_size = batch_size();
      qo.qat = true;
      qo.qat_epochs = q->epochs;
      qo.freeze_observer_epoch = q->epochs - 1;
      qo.qat_lr = q->lr > 0 ? q->lr : (o_.lr_given ? o_.train.lr : 1e-3) / 10;  // train_series --qat's default
      qo.weight_decay = 0;
      qo.export_program = e.dir + "/model.finch";
      create_out_dir(e.dir);
      run_sequence_qat("finch compress", qo, d_, e.command_line, /*quiet=*/false);
      return e.input;
    }
    if (const auto* q = std::get_if<PtqStep>(&st.spec)) {
      QuantizeOptions qo = quantize_options(e, q->mode, e.dir + "/model.finch");
      qo.qconfig = q->qconfig;
      qo.observer = q->observer;
      qo.calib_batches = q->calib_batches;
      run_sequence_quantize(qo, s_, e.command_line);
      return e.input;
    }
    fail("finch compress: step ", st.kind, " does not apply to series and text models");  // check_recipe_applies
  }

  void compile(const CompileStep& c, const StepEnv& e, const std::string& quantized,
               const std::string& program) override {
    create_out_dir(e.dir);
    if (c.precision == "int8" && !quantized.empty()) {
      fs::copy_file(quantized, program, fs::copy_options::overwrite_existing);
      return;
    }
    if (c.precision == "fp32") {
      ProgramOptions p;
      p.data.checkpoint = e.input;
      p.data.data_dir = o_.train.data_dir;
      p.data.threads = o_.train.threads;
      p.out = program;
      run_sequence_compile(p, s_, false);
      return;
    }
    run_sequence_quantize(quantize_options(e, "static", program), s_, e.command_line);  // int8, the defaults
  }

  void keep_model(const std::string& input, const std::string& dir) const override {
    fs::copy_file(input, dir + "/model.safetensors", fs::copy_options::overwrite_existing);
  }

  void measure(const std::string& dir, VariantRow& row) override {
    const std::string ckpt = dir + "/model.safetensors";
    const SafetensorsFile f = load_safetensors(ckpt);
    nn::ModulePtr m = models::create_series(checkpoint_spec(f, s_, d_), nullptr);
    load_weights(ckpt, *m);  // its compress_edits first
    row.parameters = m->num_parameters();
    row.checkpoint_bytes = int64_t(fs::file_size(ckpt));
    const std::string path = dir + "/model.finch";
    runtime::Program p(runtime::read_program(path), path);
    train::EvalConfig ec;
    ec.batch_size = 64;
    ec.num_classes = int64_t(d_.classes.size());
    row.accuracy = train::evaluate(program_forward(p, T_), d_.test, ec).accuracy;
  }

  // The first test sample padded to the programs' step count, with its length where the program
  // takes one.
  std::vector<Tensor> latency_input(const runtime::Graph& g) override {
    Generator gen(0);
    const auto [x, len] = padded_to(d_.test->get(0, gen).image.unsqueeze(0), Tensor(), T_);
    if (g.inputs.size() == 1) return {x.contiguous()};
    return {x.contiguous(), len};
  }

 private:
  // Fine-tuning batches: --batch-size, else train_series/train_text's own default for this model and
  // training set (min(N/10, 16) for series; an image model's 128 would make a UCR epoch one step).
  int64_t batch_size() const {
    return o_.bert.batch_given ? o_.train.batch_size : default_sequence_batch(model_name_, d_.train->size());
  }

  QuantizeOptions quantize_options(const StepEnv& e, const std::string& mode, const std::string& out) const {
    QuantizeOptions q;
    q.data.checkpoint = e.input;
    q.data.data_dir = o_.train.data_dir;
    q.data.threads = o_.train.threads;
    q.mode = mode;
    q.out = out;
    q.report = e.dir + "/summary.json";
    q.latency_images = 0;  // timed later, side by side
    create_out_dir(e.dir);
    return q;
  }

  const CompressOptions& o_;
  SeriesOptions s_;  // the data flags, as the single-step commands take them
  SequenceData d_;
  std::string model_name_;
  int64_t T_ = 0;
  int recurrent_ = 0;  // LSTM and GRU modules
};

}  // namespace

std::unique_ptr<CompressModel> make_series_compress_model(const CompressOptions& o) {
  return std::make_unique<SeriesModel>(o);
}

}  // namespace finch::apps
