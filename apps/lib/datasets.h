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
  // Validation images held out of the training split (normalized, never augmented), to choose
  // the best epoch (apps/lib/model_selection.h); null: none. val_source says what it is.
  std::shared_ptr<const data::Dataset> val;
  std::string val_source;
  std::vector<std::string> classes;            // class names ("0".."K-1" when the format has none)
  int64_t channels = 0, height = 0, width = 0;
};

// Loads the data. `need_train` false (eval-only) skips reading the training split. Errors
// (missing files, mean/std of the wrong length) are finch::Error sentences. `val_fraction` > 0
// holds out that fraction of the (--limit-train) training images, stratified and seeded by
// `seed` (validation_split), as b.val; < 0 the default 0.1, or none when the set is too small.
DataBundle load_data(const DataOptions& o, bool need_train = true, double val_fraction = 0, uint64_t seed = 0);

}  // namespace finch::apps
