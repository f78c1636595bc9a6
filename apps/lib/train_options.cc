// train_cifar's options: CLI11 registration, defaults per model and dataset, validation.
#include "apps/lib/train_options.h"

#include <algorithm>
#include <cmath>

#include <CLI/CLI.hpp>

#include "framework/error.h"
#include "models/factory.h"

namespace finch::apps {

// CLI11's PositiveNumber prints the full range up to DBL_MAX, and its Range lets "nan" through
// (every comparison with NaN is false): these say the bounds in words and take finite numbers only.
CLI::Validator number_in(double lo, double hi, const std::string& words) {
  return CLI::Validator(
      [lo, hi, words](std::string& s) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(s, &used);
          if (used != s.size()) return "'" + s + "' is not a number";
        } catch (const std::exception&) {
          return "'" + s + "' is not a number";
        }
        if (!std::isfinite(v)) return "must be a finite number, got " + s;
        if (!(v >= lo && v <= hi)) return "must be " + words + ", got " + s;
        return "";
      },
      words);
}
CLI::Validator positive_number() { return number_in(1e-300, HUGE_VAL, "positive"); }
CLI::Validator non_negative_number() { return number_in(0, HUGE_VAL, "zero or more"); }

namespace {
const CLI::Validator kPositive = positive_number();
const CLI::Validator kNonNegative = non_negative_number();
}  // namespace

void check_width(const std::string& model, double width) {
  if (!(width > 0 && width <= 4))
    fail("--width must be a multiplier in (0, 4] (0.5 halves every layer's channels), got ", width);
  if (width != 1.0 && model != "mobilenet_v1" && model != "mobilenetv2")
    fail("--width applies to mobilenet_v1 and mobilenetv2 only, not ", model);
}

int64_t default_epochs(const std::string& model) {
  // Chosen so each default run reaches its issue target on Fashion-MNIST on 2 cores:
  // LeNet-5 is cheap and saturates early; the deep networks need longer cosine schedules.
  if (model == "lenet5") return 15;
  // ResNet-20 trains at ~500-700 images/s here and MobileNetV2 at ~100: 15 and 10 epochs keep
  // them under 30 minutes and 2 hours (20 ResNet-20 epochs took 36 minutes on a busy machine).
  if (model == "resnet20" || model == "resnet32" || model == "resnet56") return 15;
  if (model == "mobilenetv2") return 10;
  if (model == "mobilenet_v1") return 30;
  return 30;  // resnet18/34/50
}

double default_lr(const std::string& model, const std::string& optimizer) {
  if (optimizer == "adam" || optimizer == "adamw") return 1e-3;
  if (model == "mobilenetv2" || model == "mobilenet_v1" || model == "lenet5") return 0.05;
  return 0.1;
}

void default_normalization(const std::string& dataset, std::vector<float>& mean,
                           std::vector<float>& std) {
  if (dataset == "fashion-mnist") {
    mean = {0.2860f};
    std = {0.3530f};
  } else if (dataset == "cifar10") {
    mean = {0.4914f, 0.4822f, 0.4465f};
    std = {0.2470f, 0.2435f, 0.2616f};
  } else if (dataset == "cifar100") {
    mean = {0.5071f, 0.4865f, 0.4409f};
    std = {0.2673f, 0.2564f, 0.2762f};
  } else {  // image folders: no known statistics, map 0..1 to -1..1
    mean = {0.5f};
    std = {0.5f};
  }
}

void add_train_options(CLI::App& app, TrainOptions& o) {
  const auto& names = models::model_names();
  app.add_option("--model", o.model,
                 "network: lenet5 (default 15 epochs, lr 0.05), resnet20/32/56 (15 epochs, lr 0.1), "
                 "resnet18/34/50 (30 epochs, lr 0.1), mobilenetv2 (10 epochs, lr 0.05), mobilenet_v1 "
                 "(30 epochs, lr 0.05); "
                 "the CIFAR variant of each is used")
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  app.add_option("--width", o.width,
                 "width multiplier alpha of mobilenet_v1/mobilenetv2 (0.5: half the channels in every "
                 "layer); recorded in the weight files so finch quantize/compile rebuild the same network")
      ->capture_default_str();
  app.add_option("--stem", o.stem,
                 "cifar: stride-1 stem (and ResNet-18/34/50 with a 3x3 conv1, no max pool) for 32x32 images; "
                 "imagenet: torchvision's networks as published (224x224 photos, torchvision weights); "
                 "recorded in the weight files")
      ->check(CLI::IsMember({"cifar", "imagenet"}))
      ->capture_default_str();
  app.add_option("--dataset", o.dataset,
                 "cifar10 (data_batch_*.bin), cifar100 (train.bin/test.bin), fashion-mnist (IDX "
                 "files), folder (DIR/train/<class>/* and DIR/test/<class>/*, or DIR/<class>/* split 80/20 per class)")
      ->check(CLI::IsMember({"cifar10", "cifar100", "fashion-mnist", "folder"}))
      ->capture_default_str();
  app.add_option("--data", o.data_dir, "dataset folder (default for fashion-mnist: "
                                       "/usr/share/datasets/fashion-mnist)");
  app.add_option("--epochs", o.epochs, "training epochs (default: per model, see --model)")
      ->check(kPositive);
  app.add_option("--batch-size", o.batch_size, "batch size")->check(kPositive)->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate (default: per model, see --model; 1e-3 for adam/adamw)")
      ->check(kPositive);
  app.add_option("--optimizer", o.optimizer, "sgd (Nesterov momentum), adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->check(number_in(0, 1, "in [0, 1]"))->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "weight decay (default 5e-4; adamw 0.05)")
      ->check(number_in(0, 1, "in [0, 1]"));
  app.add_option("--schedule", o.schedule,
                 "learning-rate schedule: cosine (linear warm-up then cosine to 0), step (x0.1 at "
                 "50% and 75%), onecycle, cyclic (2 triangular cycles)")
      ->check(CLI::IsMember({"cosine", "step", "onecycle", "cyclic"}))
      ->capture_default_str();
  app.add_option("--warmup-epochs", o.warmup_epochs,
                 "linear warm-up epochs (cosine and step; default: 1, at most a fifth of --epochs)")
      ->check(kNonNegative);
  app.add_option("--label-smoothing", o.label_smoothing, "cross-entropy label smoothing")
      ->check(number_in(0, 0.999, "in [0, 0.999]"))
      ->capture_default_str();
  app.add_flag("--augment,!--no-augment", o.augment,
               "training augmentation: random crop (pad 4 for 32x32, pad 2 for 28x28) and "
               "horizontal flip (default on)");
  app.add_option("--threads", o.threads, "compute threads (0: all cores)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--workers", o.workers, "data-loader threads (0: load on the training thread)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--bucket-mb", o.bucket_mb, "under mpirun: gradient all-reduce bucket size in MiB (docs/distributed.md)")
      ->check(number_in(1e-3, 1024, "in [0.001, 1024]"))->capture_default_str();
  app.add_flag("--sync-bn", o.sync_bn, "under mpirun: BatchNorm statistics over every process's batch (default: "
                                      "each process's own; docs/distributed.md)");
  app.add_option("--dist-timeout", o.dist_timeout, "under mpirun: end the job when a process waits this many seconds "
                                                   "for the others (a hung process; 0: wait forever)")
      ->check(number_in(0, 1e7, "in [0, 1e7]"))->capture_default_str();
  app.add_option("--seed", o.seed, "seed for initialization, shuffling and augmentation")->capture_default_str();
  app.add_option("--out", o.out_dir, "output folder")->capture_default_str();
  app.add_option("--resume", o.resume, "continue training from this checkpoint.safetensors");
  app.add_option("--initial-checkpoint", o.initial_checkpoint,
                 "start from these weights (safetensors with PyTorch names: a finch weights file or "
                 "a torchvision state_dict converted by scripts/torch-to-safetensors.py); every tensor "
                 "whose name and shape match is loaded, a classifier of another class count is "
                 "re-initialized (docs/sorter.md)");
  app.add_flag("--reinit-head", o.reinit_head,
               "with --initial-checkpoint: re-initialize the classifier even when its shape matches");
  app.add_flag("--eval-only", o.eval_only, "only evaluate --checkpoint on the test set");
  app.add_option("--checkpoint", o.checkpoint,
                 "weights to evaluate (model.safetensors, best.safetensors or checkpoint.safetensors)");
  app.add_option("--mean", o.mean, "per-channel normalization mean (default: the dataset's)")->expected(1, 3);
  app.add_option("--std", o.std, "per-channel normalization std (default: the dataset's)")->expected(1, 3);
  app.add_option("--predictions", o.predictions, "write index,label,predicted,logits of every test image to this CSV");
  app.add_option("--limit-train", o.limit_train, "use only the first N training images (0, the default: all)")
      ->check(kNonNegative);
  app.add_option("--limit-test", o.limit_test, "use only the first N test images (0, the default: all)")
      ->check(kNonNegative);
  app.add_option("--image-size", o.image_size, "--dataset folder: resize images to this size (recorded in the weight files)")
      ->check(CLI::Range(8, 1024))
      ->each([&o](const std::string&) { o.image_size_given = true; })
      ->capture_default_str();
  app.add_option("--rotation", o.rotation, "with --augment: random rotation in +-DEGREES (photos; default 0: none)")
      ->check(CLI::Range(0.0, 180.0));
  app.add_option("--brightness", o.brightness, "with --augment: random brightness factor in [1-X, 1+X] (default 0: none)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--contrast", o.contrast, "with --augment: random contrast factor in [1-X, 1+X] (default 0: none)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--qat", o.qat, "quantization-aware training: fine-tune --checkpoint (or the model this run "
                              "trains first) with fake quantization for --qat-epochs, then convert to int8");
  app.add_option("--qconfig", o.qconfig, "QAT quantization: int8, int8-per-tensor, uint8-io, int8-weights-only, "
                                         "int4-weights")->capture_default_str();
  app.add_option("--export", o.export_program, "with --qat: also write the int8 program (FILE.finch) of the converted model");
  app.add_option("--qat-epochs", o.qat_epochs, "QAT fine-tuning epochs")->check(kPositive)->capture_default_str();
  app.add_option("--qat-lr", o.qat_lr, "QAT peak learning rate (default: the float lr / 20)")
      ->check(kPositive);
  app.add_option("--freeze-bn-epoch", o.freeze_bn_epoch, "QAT epoch (from 0) from which BatchNorm statistics "
                                                          "are frozen (default: the last)")
      ->check(kNonNegative);
  app.add_option("--freeze-observer-epoch", o.freeze_observer_epoch, "QAT epoch (from 0) from which observers "
                                                                      "are frozen (default: the last)")
      ->check(kNonNegative);
  app.add_option("--stop-after", o.stop_after_epochs,
                 "stop after this many epochs of this run, leaving a checkpoint to --resume from")
      ->check(kNonNegative);
  app.add_option("--val-fraction", o.val_fraction,
                 "the fraction of the training images held out (stratified, seeded) to choose the best epoch "
                 "(best.safetensors, and model.safetensors with --keep best); 0: none, the last epoch is kept "
                 "(default 0.1)")
      ->check(number_in(0, 0.9, "in [0, 0.9]"));
  app.add_option("--patience", o.patience,
                 "stop when the validation accuracy has not improved for this many epochs (default 0: never; the "
                 "schedule runs to its end)")
      ->check(CLI::Range(int64_t(0), int64_t(1000000)));
  app.add_option("--keep", o.keep,
                 "which weights model.safetensors holds: best (the best validation epoch's) or last (default: best "
                 "when there is validation data, else last)")
      ->check(CLI::IsMember({"best", "last"}));
}

void finalize_data_options(DataOptions& o) {
  if (o.data_dir.empty()) {
    if (o.dataset == "fashion-mnist")
      o.data_dir = "/usr/share/datasets/fashion-mnist";
    else
      fail("--data is required for --dataset ", o.dataset, " (the folder holding its files)");
  }
  check_width(o.model, o.width);
  if (o.mean.empty() != o.std.empty()) fail("--mean and --std must be given together");
  if (o.mean.empty()) default_normalization(o.dataset, o.mean, o.std);
  if (o.mean.size() != o.std.size())
    fail("--mean has ", o.mean.size(), " values but --std has ", o.std.size(), "; give one per channel");
  for (float m : o.mean)
    if (!std::isfinite(m)) fail("--mean values must be finite numbers, got ", m);
  for (float s : o.std)
    if (!(s > 0) || !std::isfinite(s)) fail("--std values must be finite and positive, got ", s);
}

void finalize_options(TrainOptions& o) {
  finalize_data_options(o);
  if (o.patience < 0) o.patience = 0;
  if (o.val_fraction == 0 && (o.keep == "best" || o.patience > 0) && !o.eval_only)
    fail(o.keep == "best" ? "--keep best" : "--patience", " needs validation data, but --val-fraction 0 holds out none");
  if (o.epochs == 0) o.epochs = default_epochs(o.model);
  // Bounded so the schedule's step count (epochs × batches per epoch) cannot overflow.
  constexpr int64_t kMaxEpochs = 1000000;
  if (o.epochs > kMaxEpochs) fail("--epochs must be at most ", kMaxEpochs, ", got ", o.epochs);
  if (o.qat_epochs > kMaxEpochs) fail("--qat-epochs must be at most ", kMaxEpochs, ", got ", o.qat_epochs);
  if (o.lr == 0) o.lr = default_lr(o.model, o.optimizer);
  if (o.weight_decay < 0) o.weight_decay = o.optimizer == "adamw" ? 0.05 : 5e-4;
  if (o.eval_only && o.checkpoint.empty()) fail("--eval-only needs --checkpoint FILE");
  if (!o.eval_only && !o.qat && !o.checkpoint.empty())
    fail("--checkpoint is only used with --eval-only or --qat (to continue training use --resume)");
  if (o.qat) {
    if (o.eval_only) fail("--qat and --eval-only cannot be combined");
    if (!o.resume.empty()) fail("--qat does not resume a run; give the float weights with --checkpoint");
    if (o.qconfig == "fp16") fail("--qconfig fp16 has nothing to train; use finch quantize --mode fp16");
    if (!o.export_program.empty() && (o.export_program.size() < 6 ||
                                      o.export_program.compare(o.export_program.size() - 6, 6, ".finch") != 0))
      fail("--export expects a FILE.finch, got '", o.export_program, "'");
    if (o.freeze_bn_epoch < 0) o.freeze_bn_epoch = o.qat_epochs - 1;
    if (o.freeze_observer_epoch < 0) o.freeze_observer_epoch = o.qat_epochs - 1;
    if (o.qat_lr == 0) o.qat_lr = o.lr / 20;
  }
  if (!o.qat && !o.export_program.empty()) fail("--export is used with --qat (finch compile writes fp32 programs)");
  if (o.eval_only && !o.resume.empty()) fail("--eval-only and --resume cannot be combined");
  if (!o.initial_checkpoint.empty() && (!o.resume.empty() || o.eval_only || (o.qat && !o.checkpoint.empty())))
    fail("--initial-checkpoint starts a new training run; it cannot be combined with ",
         !o.resume.empty() ? "--resume (the checkpoint already holds the weights)"
                           : o.eval_only ? "--eval-only (evaluate with --checkpoint)" : "--qat --checkpoint");
  if (o.reinit_head && o.initial_checkpoint.empty()) fail("--reinit-head needs --initial-checkpoint FILE");
  // A default warm-up of a whole epoch swallowed a 1-epoch run (0.65 accuracy against 0.70
  // without): it takes at most a fifth of the run.
  if (o.warmup_epochs < 0) o.warmup_epochs = std::min(1.0, 0.2 * double(o.epochs));
  if (o.warmup_epochs > double(o.epochs))
    fail("--warmup-epochs (", o.warmup_epochs, ") is longer than --epochs (", o.epochs, ")");
}

}  // namespace finch::apps
