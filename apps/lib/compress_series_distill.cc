// Fine-tuning and distillation of series/text classifiers (compress_series_distill.h).
#include "apps/lib/compress_series_distill.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/lib/checkpoint.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_train.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "autograd/functional.h"
#include "autograd/nn/sequence.h"
#include "data/dataloader.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "train/losses.h"

namespace finch::apps {
namespace {

// The student as the training loop sees it: its parameters are the student's (its only child), its
// forward is the student's, and in training mode the teacher runs on the same batch (lengths too)
// without gradient; loss() mixes those logits into the student's (train::distillation_loss).
// A binary model's one logit z as the two logits [0, z]: softmax([0, z]) = [1 − σ(z), σ(z)], so the
// cross-entropy is the model's binary cross-entropy and the KL the one of the two Bernoullis.
Tensor two_logits(const Tensor& z) {
  if (!(z.dim() == 1 || (z.dim() == 2 && z.size(1) == 1))) return z;
  const Tensor c = reshape(z, {z.size(0), 1});
  return cat({zeros({z.size(0), 1}), c}, 1);
}

class StudentWithTeacher final : public nn::Module, public nn::LengthAware {
 public:
  StudentWithTeacher(nn::ModulePtr student, nn::Module& teacher, double temperature, double alpha)
      : teacher_(teacher), temperature_(temperature), alpha_(alpha) {
    if (student.get() == &teacher) fail("distillation: the teacher must be another model than the student");
    student_ = register_module("student", std::move(student));
    teacher_.eval();
  }
  std::string type_name() const override { return "StudentWithTeacher"; }

  Tensor forward_impl(const Tensor& x) override {
    Tensor y = student_->forward(x);
    if (is_training()) keep(y, [&] { return teacher_.forward(x); });
    return y;
  }
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override {
    auto* s = dynamic_cast<nn::LengthAware*>(student_.get());
    Tensor y = s ? s->forward_with_lengths(x, lengths) : student_->forward(x);
    if (is_training())
      keep(y, [&] {
        auto* t = dynamic_cast<nn::LengthAware*>(&teacher_);
        return t ? t->forward_with_lengths(x, lengths) : teacher_.forward(x);
      });
    return y;
  }

  train::LossFn loss() {
    return [this](const Tensor& outputs, const Tensor& labels) {
      if (!teacher_logits_.defined() || student_out_ != outputs.impl())
        fail("distillation: the loss got outputs that did not come from the student's training-mode forward, so "
             "there are no teacher logits for them");
      const Tensor t = teacher_logits_;
      teacher_logits_ = Tensor();
      student_out_ = nullptr;
      return train::distillation_loss(two_logits(outputs), two_logits(t), labels, temperature_, alpha_);
    };
  }

 private:
  template <typename F>
  void keep(const Tensor& y, F&& teacher_forward) {
    NoGradGuard ng;
    teacher_logits_ = teacher_forward();
    student_out_ = y.impl();
  }

  nn::ModulePtr student_;
  nn::Module& teacher_;
  double temperature_, alpha_;
  Tensor teacher_logits_;
  const TensorImpl* student_out_ = nullptr;
};

train::EvalConfig eval_config(const SequenceData& d, const TrainOptions& t) {
  train::EvalConfig ec;
  ec.batch_size = 256;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.workers = t.workers;
  ec.target_std = d.target_std;
  return ec;
}

}  // namespace

train::EvalResult fine_tune_sequence(nn::ModulePtr model, const SequenceData& d, const TrainOptions& t, double lr,
                                     int64_t epochs, const std::string& name, const SequenceTeacher& teacher) {
  const train::EvalConfig ec = eval_config(d, t);
  if (epochs <= 0) return train::evaluate(*model, d.test, ec);
  if (teacher.model && d.regression)
    fail("distillation mixes a teacher's class probabilities into the loss; ", d.name,
         " is a forecasting set (fine-tune a forecaster on its targets, without distill)");
  data::DataLoaderOptions lo;
  lo.batch_size = t.batch_size;
  lo.shuffle = true;
  lo.drop_last = d.train->size() > t.batch_size && d.train->size() % t.batch_size == 1;
  lo.num_workers = t.workers;
  lo.seed = t.seed;
  // Adam at lr, cosine to 0, from a fresh optimizer (a pruned model's layers changed shape).
  TrainOptions ft = t;
  ft.optimizer = "adam";
  ft.lr = lr;
  ft.weight_decay = 0;
  ft.schedule = "cosine";
  ft.epochs = epochs;
  ft.warmup_epochs = 0;
  ft.stop_after_epochs = 0;
  std::shared_ptr<StudentWithTeacher> wrapped;
  nn::Module* trained = model.get();
  train::LossFn loss = d.regression ? train::regression_loss() : train::classification_loss(t.label_smoothing);
  if (teacher.model) {
    wrapped = std::make_shared<StudentWithTeacher>(model, *teacher.model, teacher.temperature, teacher.alpha);
    trained = wrapped.get();
    loss = wrapped->loss();
  }
  data::DataLoader loader(d.train, lo);
  std::unique_ptr<optim::Optimizer> opt = train::make_optimizer(optimizer_config(ft), *trained);
  train::TrainState state;
  train::LoopConfig loop = loop_config(ft, false);
  loop.name = name;
  train::EpochLogCallback log;
  train::fit(*trained, *opt, loader, loss, schedule_config(ft), loop, state,
             [&](nn::Module&) { return train::evaluate(*model, d.test, ec); }, {&log});
  model->eval();
  return train::evaluate(*model, d.test, ec);
}

nn::ModulePtr load_sequence_teacher(const std::string& path, const SeriesOptions& s, const SequenceData& d,
                                    int64_t student_classes) {
  const SafetensorsFile f = load_safetensors(path);
  SeriesOptions ts = s;
  ts.checkpoint = path;
  const models::SeriesSpec spec = checkpoint_spec(f, ts, d);
  if (spec.num_classes != student_classes)
    fail("the teacher ", path, " has ", spec.num_classes, " classes but the student has ", student_classes,
         ": distillation needs the same classes");
  nn::ModulePtr m = models::create_series(spec, nullptr);
  load_weights(path, *m);  // its compress_edits first
  m->eval();
  return m;
}

int run_sequence_distill(const SequenceDistillOptions& o, SeriesOptions s, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainOptions& t = o.train;
  const std::string& ckpt = t.checkpoint;
  if (t.threads > 0) set_num_threads(t.threads);
  const SafetensorsFile f = load_safetensors(ckpt);
  s.checkpoint = ckpt;
  const SequenceData d = load_sequence_data(s, f.metadata, t.data_dir, ckpt);
  const models::SeriesSpec spec = checkpoint_spec(f, s, d);
  manual_seed(t.seed * 2654435761u + 17);
  nn::ModulePtr student = models::create_series(spec, nullptr);
  load_weights(ckpt, *student);  // its compress_edits first: the shapes stay
  const std::string from = o.teacher.empty() ? ckpt : o.teacher;
  nn::ModulePtr teacher = load_sequence_teacher(from, s, d, spec.num_classes);
  const train::EvalResult before = train::evaluate(*student, d.test, eval_config(d, t));
  const double lr = o.lr_given ? t.lr : 1e-3;
  std::cerr << "finch compress distill: " << spec.name << " from " << ckpt << " (test accuracy " << before.accuracy
            << "), teacher " << from << ", temperature " << o.temperature << ", alpha " << o.alpha << ", " << o.epochs
            << " epochs at lr " << lr << "\n";
  const train::EvalResult after =
      fine_tune_sequence(student, d, t, lr, o.epochs, "distillation", {teacher.get(), o.temperature, o.alpha});

  train::Metadata meta(f.metadata.begin(), f.metadata.end());  // the spec, the data, the edits
  meta["finch_version"] = finch_version();
  create_out_dir(t.out_dir);
  const std::string out = t.out_dir + "/";
  train::save_weights(out + "model.safetensors", *student, meta);
  write_json_file(out + "summary.json",
                  {{"model", spec.name},
                   {"dataset", d.name},
                   {"checkpoint", ckpt},
                   {"parameters_before", student->num_parameters()},
                   {"parameters_after", student->num_parameters()},
                   {"test_accuracy_before", before.accuracy},
                   {"test_accuracy", after.accuracy},
                   {"distill", {{"temperature", o.temperature}, {"alpha", o.alpha}, {"teacher", from}}},
                   {"epochs", o.epochs},
                   {"lr", lr},
                   {"wall_seconds", train::round_significant(
                                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())},
                   {"finch_version", finch_version()},
                   {"command_line", command_line}});
  std::printf("distilled: test accuracy %.4f -> %.4f; %smodel.safetensors\n", before.accuracy, after.accuracy,
              out.c_str());
  return 0;
}

}  // namespace finch::apps
