// finch compress on image models (compress_model.h): the steps through finch prune, finch lowrank,
// distillation against the uncompressed model, train_cifar --qat, finch quantize and finch
// compile; the program's test accuracy over the test set, as finch run computes it.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <type_traits>
#include <variant>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_cmd_common.h"
#include "apps/lib/compress_model.h"
#include "apps/lib/datasets.h"
#include "apps/lib/lowrank_cmd.h"
#include "apps/lib/program_cmds.h"
#include "apps/lib/prune_cmd.h"
#include "apps/lib/qat_run.h"
#include "apps/lib/quantize_run.h"
#include "apps/lib/trainer.h"
#include "compress/edits.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/results.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/distill.h"
#include "train/evaluate.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;

class ImageModel final : public CompressModel {
 public:
  explicit ImageModel(const CompressOptions& o) : base_(o.train), prepared_(o.train) {
    prepare_compress_options(prepared_, false);
    base_.model = prepared_.model, base_.width = prepared_.width;
    d_ = load_data(prepared_, false);
  }

  std::string metric_key() const override { return "test_accuracy"; }
  std::string metric_name() const override { return "test accuracy"; }
  nlohmann::json header() const override {
    return {{"model", prepared_.model},
            {"dataset", prepared_.dataset},
            {"test_images", d_.test->size()},
            {"test_set", std::to_string(d_.test->size()) + " test images"}};
  }
  nlohmann::json settings() const override {
    return {{"dataset", prepared_.dataset},         {"data", prepared_.data_dir},
            {"test_images", d_.test->size()},       {"limit_train", prepared_.limit_train},
            {"batch_size", prepared_.batch_size},   {"seed", prepared_.seed},
            {"lr", base_.lr},                       {"mean", prepared_.mean},
            {"std", prepared_.std}};
  }
  std::string model_in(const std::string& dir) const override { return dir + "/model.safetensors"; }

  std::string run_step(const RecipeStep& st, const StepEnv& e) override {
    return std::visit(
        [&](const auto& spec) -> std::string {
          if constexpr (std::is_same_v<std::decay_t<decltype(spec)>, CompileStep>) return e.input;
          else return step(spec, e);
        },
        st.spec);
  }

  // fp32 with finch compile, fp16 with finch quantize --mode fp16, int8 from the qat/ptq step
  // before (`quantized`) or else finch quantize --mode static.
  void compile(const CompileStep& c, const StepEnv& e, const std::string& quantized,
               const std::string& program) override {
    create_out_dir(e.dir);
    if (c.precision == "fp32") {
      ProgramOptions p;
      p.data = base_;
      p.data.checkpoint = e.input;
      p.out = program;
      run_compile(p, base_.model_given);
      return;
    }
    if (c.precision == "int8" && !quantized.empty()) {
      fs::copy_file(quantized, program, fs::copy_options::overwrite_existing);
      return;
    }
    const bool fp16 = c.precision == "fp16";
    QuantizeOptions q = quantize_options(e, fp16 ? "fp16" : "static", fp16 ? "fp16" : "int8");
    q.out = program;
    finalize_quantize_options(q);
    run_quantize(q, e.command_line);
  }

  void keep_model(const std::string& input, const std::string& dir) const override {
    fs::copy_file(input, dir + "/model.safetensors", fs::copy_options::overwrite_existing);
  }

  void measure(const std::string& dir, VariantRow& row) override {
    TrainOptions t = prepared_;
    t.checkpoint = dir + "/model.safetensors";
    row.parameters = load_trained_model(t, d_)->num_parameters();
    row.checkpoint_bytes = int64_t(fs::file_size(t.checkpoint));
    const std::string program = dir + "/model.finch";
    runtime::Program p(runtime::read_program(program), program);
    const train::Forward f = [&p](const Tensor& x) { return p.run(x); };
    row.accuracy = train::evaluate(f, d_.test, 64, int64_t(d_.classes.size())).accuracy;
  }

  std::vector<Tensor> latency_input(const runtime::Graph&) override {
    Generator g(0);
    return {d_.test->get(0, g).image.to(DType::f32).unsqueeze(0).contiguous()};
  }

 private:
  TrainOptions step_options(const StepEnv& e, double lr, bool& lr_given) const {
    TrainOptions t = base_;
    t.checkpoint = e.input;
    t.out_dir = e.dir;
    lr_given = lr > 0;
    if (lr_given) t.lr = lr;
    return t;
  }

  std::string step(const PruneStep& p, const StepEnv& e) {
    PruneOptions o;
    o.train = step_options(e, p.lr, o.lr_given);
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

  std::string step(const LowRankStep& l, const StepEnv& e) {
    LowRankCmdOptions o;
    o.train = step_options(e, l.lr, o.lr_given);
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
  std::string step(const DistillStep& s, const StepEnv& e) {
    const auto t0 = std::chrono::steady_clock::now();
    bool lr_given = false;
    TrainOptions t = step_options(e, s.lr, lr_given);
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
  std::string step(const QatStep& s, const StepEnv& e) {
    TrainOptions q = base_;
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

  QuantizeOptions quantize_options(const StepEnv& e, const std::string& mode, const std::string& qconfig) const {
    QuantizeOptions q;
    q.data = base_;
    q.data.checkpoint = e.input;
    q.mode = mode;
    q.qconfig = qconfig;
    q.out = e.dir + "/model.finch";
    q.report = e.dir + "/summary.json";
    q.latency_images = 0;  // timed later, side by side
    return q;
  }

  std::string step(const PtqStep& s, const StepEnv& e) {
    QuantizeOptions q = quantize_options(e, s.mode, s.qconfig);
    q.observer = s.observer;
    q.calib_batches = s.calib_batches;
    create_out_dir(e.dir);
    finalize_quantize_options(q);
    run_quantize(q, e.command_line);
    return e.input;
  }

  TrainOptions base_;      // the options as given, with the checkpoint's model and width
  TrainOptions prepared_;  // model and width read from the checkpoint, data defaults filled
  DataBundle d_;
};

}  // namespace

std::unique_ptr<CompressModel> make_image_compress_model(const CompressOptions& o) {
  return std::make_unique<ImageModel>(o);
}

}  // namespace finch::apps
