// The training loop of train_cifar: optimizer and LR schedule from the options, one epoch of
// SGD/Adam steps with a progress bar, and the per-epoch metrics row.
#pragma once
#include <cstdint>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/lib/train_options.h"
#include "autograd/nn/module.h"
#include "autograd/optim/optimizer.h"
#include "data/dataloader.h"

namespace finch::apps {

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, const nn::Module& model);

// Sets the learning rate (and, for onecycle/cyclic with SGD or Adam, the momentum) for global
// step `step` (0-based) of a run of `steps_per_epoch` × o.epochs steps. Pure function of the
// step, so resuming needs no scheduler state. Returns the lr set.
double apply_schedule(const TrainOptions& o, optim::Optimizer& opt, int64_t step, int64_t steps_per_epoch);

struct EpochStats {
  double lr = 0;  // at the epoch's first step
  double loss = 0, accuracy = 0;
  int64_t images = 0;
  double seconds = 0;
};

// One training epoch `epoch` (0-based) over `loader`; shows a progress bar on stderr unless
// `quiet`.
EpochStats train_epoch(const TrainOptions& o, nn::Module& model, optim::Optimizer& opt,
                       data::DataLoader& loader, int64_t epoch, bool quiet = false);

}  // namespace finch::apps
