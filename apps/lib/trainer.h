// train_cifar's settings mapped onto the training library's small structs (train/): which
// optimizer, which LR schedule, the loop's length and messages, and the classification loss.
#pragma once
#include <map>
#include <string>

#include "apps/lib/train_options.h"
#include "train/loop.h"
#include "train/optim_config.h"

namespace finch::apps {

train::OptimizerConfig optimizer_config(const TrainOptions& o);
train::ScheduleConfig schedule_config(const TrainOptions& o);
// `quiet` hides the progress bars (tests).
train::LoopConfig loop_config(const TrainOptions& o, bool quiet);
// Cross-entropy on logits [B, K] against class indices [B], with --label-smoothing.
train::LossFn classification_loss(double label_smoothing);

// Creates the --out folder (and its parents); a failure is one sentence naming --out and the
// reason ("Not a directory" when a file is in the way, "Permission denied", ...).
void create_out_dir(const std::string& dir);

}  // namespace finch::apps
