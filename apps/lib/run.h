// The whole train_cifar run behind main(): load data, build the model, train (or resume, or
// evaluate only) and leave the result files in --out. Returns the process exit code; problems
// are finch::Error sentences that main() prints.
#pragma once
#include <string>

#include "apps/lib/train_options.h"

namespace finch::apps {

// `command_line` is recorded in summary.json. `quiet` hides the progress bars (tests).
int run_train_cifar(TrainOptions o, const std::string& command_line, bool quiet = false);

}  // namespace finch::apps
