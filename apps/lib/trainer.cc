// train_cifar's options → the training library's OptimizerConfig, ScheduleConfig, LoopConfig.
#include "apps/lib/trainer.h"

#include <filesystem>
#include <system_error>

#include "autograd/functional.h"
#include "framework/error.h"

namespace finch::apps {

train::OptimizerConfig optimizer_config(const TrainOptions& o) {
  train::OptimizerConfig c;
  c.name = o.optimizer;
  c.lr = o.lr;
  c.momentum = o.momentum;
  c.nesterov = o.nesterov;
  c.weight_decay = o.weight_decay;
  return c;
}

train::ScheduleConfig schedule_config(const TrainOptions& o) {
  train::ScheduleConfig c;
  c.kind = o.schedule;
  c.lr = o.lr;
  c.epochs = o.epochs;
  c.warmup_epochs = o.warmup_epochs;
  return c;
}

train::LoopConfig loop_config(const TrainOptions& o, bool quiet) {
  train::LoopConfig c;
  c.epochs = o.epochs;
  c.stop_after_epochs = o.stop_after_epochs;
  c.quiet = quiet;
  c.lr_hint = "lower --lr";
  return c;
}

train::LossFn classification_loss(double label_smoothing) {
  return [label_smoothing](const Tensor& logits, const Tensor& targets) {
    return cross_entropy(logits, targets, Reduction::mean, -100, label_smoothing);
  };
}

void create_out_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec && !std::filesystem::is_directory(dir, ec)) ec = std::make_error_code(std::errc::not_a_directory);
  if (ec) fail("--out '", dir, "': cannot create the output folder (", ec.message(), ")");
}

}  // namespace finch::apps
