// Readers for the published image-classification formats: MNIST/Fashion-MNIST (IDX) and
// CIFAR-10/100 (binary version). Each returns U8 images [N, C, H, W] and I64 labels [N]
// (data/dataset.h's LabeledImages); a bad or missing file is a finch::Error naming the file,
// what was expected and what was found, and a missing folder says where to get the data.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace finch::data {

// MNIST-like IDX files in `dir`: {train,t10k}-images-idx3-ubyte and -labels-idx1-ubyte, each
// plain or .gz. Images come back [N, 1, H, W]. Labels must lie in [0, num_classes). IDX holds
// no class names, so `classes` is empty (fashion_mnist_classes() has Fashion-MNIST's).
LabeledImages load_mnist_like(const std::string& dir, bool train, int64_t num_classes = 10);
const std::vector<std::string>& fashion_mnist_classes();

// CIFAR-10 binary: data_batch_1..5.bin (train) or test_batch.bin, records of 1 label byte +
// 3072 pixel bytes (R, G, B planes of 32×32). Class names from batches.meta.txt when present.
LabeledImages load_cifar10(const std::string& dir, bool train);

// CIFAR-100 binary: train.bin or test.bin, records of a coarse label byte, a fine label byte and
// 3072 pixel bytes. `fine` picks the 100 fine classes, else the 20 coarse superclasses; names
// from fine_label_names.txt / coarse_label_names.txt when present.
LabeledImages load_cifar100(const std::string& dir, bool train, bool fine = true);

}  // namespace finch::data
