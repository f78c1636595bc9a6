// The train and test datasets of a train_cifar run: the reader for --dataset, the --limit-*
// subsets, and the transform pipelines (augmentation for training, normalization for both).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "apps/lib/train_options.h"
#include "data/dataset.h"

namespace finch::apps {

struct DataBundle {
  std::shared_ptr<const data::Dataset> train;  // augmented (per --augment), normalized
  std::shared_ptr<const data::Dataset> test;   // normalized
  std::vector<std::string> classes;            // class names ("0".."K-1" when the format has none)
  int64_t channels = 0, height = 0, width = 0;
};

// Loads the data. `need_train` false (eval-only) skips reading the training split. Errors
// (missing files, mean/std of the wrong length) are finch::Error sentences.
DataBundle load_data(const DataOptions& o, bool need_train = true);

}  // namespace finch::apps
