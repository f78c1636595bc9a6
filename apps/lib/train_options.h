// TrainOptions: every setting of train_cifar, the command-line parser that fills it, and the
// per-model / per-dataset defaults (learning rate, epochs, normalization) applied after parsing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
class Validator;
}

namespace finch::apps {

// What every command that reads a model and a dataset shares (train_cifar, finch compile /
// quantize / run / verify): the network, its weights, the data and how images are normalized.
struct DataOptions {
  std::string model = "lenet5";
  bool model_given = false;  // --model was on the command line (else --eval-only takes the file's)
  // MobileNet v1/v2 width multiplier α (channels scaled by α, rounded to multiples of 8). Weight
  // files and checkpoints record it as metadata "width", so later commands rebuild the network.
  double width = 1.0;
  bool width_given = false;  // --width was on the command line (else a checkpoint's is used)
  // The zoo's stem: "cifar" (stride-1 stem, ResNet-18/34/50 with a 3×3 conv1 and no max pool:
  // for 32×32 images, train_cifar's default) or "imagenet" (torchvision's networks as published:
  // for 224×224 photos and for starting from torchvision's weights). Weight files record it as
  // metadata "stem" (absent: cifar), so finch compile/quantize rebuild the same network.
  std::string stem = "cifar";
  bool stem_given = false;   // --stem was on the command line (else a checkpoint's is used)
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  bool augment = true;
  int threads = 0;           // 0: all cores
  int workers = 1;           // data-loader threads
  std::string checkpoint;    // trained weights (--eval-only, --qat, finch compile/quantize)
  std::vector<float> mean, std;  // empty: the dataset's standard values
  std::string predictions;   // CSV of per-image predictions
  int64_t image_size = 32;   // --dataset folder: images are resized to this square size
  // --image-size was on the command line; else a folder-trained weights file's metadata
  // "image_size" (finch compile/quantize) or a program's input size (finch run/verify) decides.
  bool image_size_given = false;
  // Photo augmentations (seed 004's recipe), applied after crop and flip when > 0: a random
  // rotation in ±rotation degrees and brightness/contrast factors in [1 − x, 1 + x].
  double rotation = 0;
  float brightness = 0, contrast = 0;
  int64_t limit_train = 0, limit_test = 0;  // 0: all images
};

// Every setting of train_cifar: the data options plus optimization, schedule, output and QAT.
struct TrainOptions : DataOptions {
  int64_t epochs = 0;        // 0: the model's default (default_epochs)
  int64_t batch_size = 128;
  double lr = 0;             // 0: the model/optimizer default (default_lr)
  std::string optimizer = "sgd";
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = -1;  // < 0: 5e-4 (sgd, adam) or 0.05 (adamw)
  std::string schedule = "cosine";
  double warmup_epochs = -1;  // < 0: 1 epoch, at most a fifth of the run (a 1-epoch run warms up 0.2)
  double label_smoothing = 0;
  uint64_t seed = 0;
  std::string out_dir = "out/train_cifar";
  std::string resume;        // checkpoint to continue from
  // --initial-checkpoint (timm's name): weights to start from, loaded by name and shape
  // (train/initial_weights.h); --reinit-head keeps the classifier's fresh initialization.
  std::string initial_checkpoint;
  bool reinit_head = false;
  bool eval_only = false;
  int64_t stop_after_epochs = 0;  // stop (with a checkpoint) after this many epochs in this run
  // Model selection on held-out training data (apps/lib/model_selection.h): the fraction of the
  // training set kept for validation (< 0: the program's default; 0: none, nothing is chosen),
  // early stopping after `patience` epochs without a better validation metric (< 0: the
  // program's default; 0: never), and which weights model.safetensors holds ("best": the best
  // validation epoch's; "last"; empty: best when there is validation, else last).
  double val_fraction = -1;
  int64_t patience = -1;
  std::string keep;
  // Data-parallel runs (mpirun -np N, apps/lib/distributed.h): gradient bucket size in MiB.
  double bucket_mb = 1.0;
  // Synchronized BatchNorm across the processes (train/distributed.h), and the watchdog: a
  // collective waiting longer than this many seconds for the other processes ends the job.
  bool sync_bn = false;
  double dist_timeout = 300;
  // Quantization-aware training (apps/lib/qat_run.h): fine-tune --checkpoint (or the float model
  // this run trains first) for qat_epochs with fake quantization, then convert.
  bool qat = false;
  std::string export_program;      // --export FILE.finch: the converted QAT model as a program
  std::string qconfig = "int8";
  int64_t qat_epochs = 3;
  double qat_lr = 0;               // 0: the float lr / 20
  int64_t freeze_bn_epoch = -1;    // QAT epoch (0-based) from which BN statistics are frozen; -1: the last
  int64_t freeze_observer_epoch = -1;  // from which observers are frozen; -1: the last
};

// Option validators taking finite numbers only (CLI11's Range lets "nan" through), with the
// bounds said in words: "must be in [0, 1], got nan" names the option in CLI11's message.
CLI::Validator number_in(double lo, double hi, const std::string& words);
CLI::Validator positive_number();      // finite, > 0
CLI::Validator non_negative_number();  // finite, >= 0

// Registers every option on `app` bound to `o` (CLI11 fills it on parse).
void add_train_options(CLI::App& app, TrainOptions& o);

// Fills the data defaults (--data for fashion-mnist, the dataset's mean/std) and checks them:
// --width, finite --mean, finite positive --std (one finch::Error sentence for the first problem).
void finalize_data_options(DataOptions& o);

// finalize_data_options, then fills the "0 = default" training fields from the model and
// dataset and checks the combinations CLI11 cannot.
void finalize_options(TrainOptions& o);

// The one check of --width shared by train_cifar, finch compile and finch quantize: a positive
// multiplier up to 4, and only for MobileNet v1/v2 (finch::Error naming the option otherwise).
void check_width(const std::string& model, double width);

int64_t default_epochs(const std::string& model);
double default_lr(const std::string& model, const std::string& optimizer);
// The dataset's standard per-channel pixel mean and std (0..1 scale).
void default_normalization(const std::string& dataset, std::vector<float>& mean,
                           std::vector<float>& std);

}  // namespace finch::apps
