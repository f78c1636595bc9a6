// train_cifar's datasets: readers by name, --limit-* subsets and transform pipelines.
#include "apps/lib/datasets.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "apps/lib/model_selection.h"
#include "data/image_folder.h"
#include "data/readers.h"
#include "data/transforms.h"
#include "framework/error.h"

namespace finch::apps {
namespace {

// A photo folder without train/ and test/ (DIR/<class>/*): every fifth file of each class (by
// name, the 5th, 10th, …) is a test image, the rest train — a stratified 80/20 split that needs no
// random draw, so every command (train_cifar, finch quantize/run) sees the same test set.
data::LabeledImages stratified_split(const data::LabeledImages& all, bool train) {
  const int64_t n = all.size();
  const int64_t* y = all.labels.data<int64_t>();
  std::vector<int64_t> keep, seen(all.classes.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const bool test = ++seen[size_t(y[i])] % 5 == 0;
    if (test != train) keep.push_back(i);
  }
  data::LabeledImages out;
  out.classes = all.classes;
  const Shape s = all.images.shape();
  out.images = empty({int64_t(keep.size()), s[1], s[2], s[3]}, all.images.dtype());
  out.labels = empty({int64_t(keep.size())}, all.labels.dtype());
  const int64_t per = s[1] * s[2] * s[3];
  for (size_t k = 0; k < keep.size(); ++k) {
    std::copy_n(all.images.data<uint8_t>() + keep[k] * per, per, out.images.data<uint8_t>() + int64_t(k) * per);
    out.labels.data<int64_t>()[k] = y[keep[k]];
  }
  return out;
}

data::LabeledImages read_split(const DataOptions& o, bool train) {
  if (o.dataset == "fashion-mnist") {
    data::LabeledImages d = data::load_mnist_like(o.data_dir, train, 10);
    d.classes = data::fashion_mnist_classes();
    return d;
  }
  if (o.dataset == "cifar10") return data::load_cifar10(o.data_dir, train);
  if (o.dataset == "cifar100") return data::load_cifar100(o.data_dir, train, /*fine=*/true);
  data::ImageFolderOptions fo;
  fo.channels = 3;
  fo.height = fo.width = o.image_size;
  if (std::filesystem::is_directory(o.data_dir + "/train") || std::filesystem::is_directory(o.data_dir + "/test"))
    return data::load_image_folder(o.data_dir + (train ? "/train" : "/test"), fo);
  return stratified_split(data::load_image_folder(o.data_dir, fo), train);
}

// The first `limit` examples (all when limit is 0 or larger than the set).
data::LabeledImages take_first(data::LabeledImages d, int64_t limit) {
  if (limit > 0 && limit < d.size()) {
    d.images = d.images.narrow(0, 0, limit).contiguous();
    d.labels = d.labels.narrow(0, 0, limit).contiguous();
  }
  return d;
}

}  // namespace

DataBundle load_data(const DataOptions& o, bool need_train, double val_fraction, uint64_t seed) {
  DataBundle b;
  data::LabeledImages test = take_first(read_split(o, false), o.limit_test);
  if (test.size() == 0) fail(o.data_dir, ": the test split holds no images");
  b.channels = test.images.size(1);
  b.height = test.images.size(2);
  b.width = test.images.size(3);
  const size_t c = size_t(b.channels);
  if (o.mean.size() != 1 && o.mean.size() != c)
    fail("--mean/--std have ", o.mean.size(), " values but the images have ", c,
         c == 1 ? " channel; give 1 value" : " channels; give 1 or " + std::to_string(c) + " values");

  data::Transform normalize = data::transforms::compose(
      {data::transforms::to_float(), data::transforms::normalize(o.mean, o.std)});
  if (need_train) {
    data::LabeledImages train = take_first(read_split(o, true), o.limit_train);
    if (train.size() == 0) fail(o.data_dir, ": the training split holds no images");
    if (train.images.size(1) != b.channels || train.images.size(2) != b.height ||
        train.images.size(3) != b.width)
      fail(o.data_dir, ": training images are ", train.images.size(1), "x", train.images.size(2), "x",
           train.images.size(3), " but test images are ", b.channels, "x", b.height, "x", b.width);
    if (!test.classes.empty() && train.classes != test.classes)
      fail(o.data_dir, ": the training and test splits have different classes (", train.classes.size(),
           " and ", test.classes.size(), ")");
    std::vector<data::Transform> steps;
    if (o.augment) {
      // The standard recipes: CIFAR pads 4 and crops 32; 28×28 images pad 2 (same 1/8 share).
      const int64_t pad = b.height <= 28 ? 2 : 4;
      steps.push_back(data::transforms::random_crop(b.height, b.width, pad));
      steps.push_back(data::transforms::random_hflip(0.5f));
      if (o.rotation > 0) steps.push_back(data::transforms::random_rotation(o.rotation));
      if (o.brightness > 0 || o.contrast > 0) steps.push_back(data::transforms::color_jitter(o.brightness, o.contrast));
    }
    steps.push_back(normalize);
    // val_fraction < 0: the default 0.1, dropped (with a note) when the set is too small for it.
    const std::vector<int64_t> labels = val_fraction != 0 ? train.labels.contiguous().to_vector<int64_t>()
                                                          : std::vector<int64_t>{};
    const std::string what = o.data_dir + "'s training split";
    std::optional<data::Split> chosen;
    if (val_fraction > 0) chosen = validation_split(labels, val_fraction, seed, what);
    if (val_fraction < 0) chosen = default_validation_split(labels, 0.1, seed, what);
    if (chosen) {
      // One copy of the images; the training part augments, the validation part only normalizes.
      data::Split& split = *chosen;
      val_fraction = val_fraction < 0 ? 0.1 : val_fraction;
      auto base = std::make_shared<data::TensorDataset>(std::move(train));
      b.val = std::make_shared<data::SubsetDataset>(base, split.val, normalize);
      b.val_source = fraction_source(val_fraction, what, seed);
      b.train = std::make_shared<data::SubsetDataset>(base, std::move(split.train), data::transforms::compose(steps));
    } else {
      b.train = std::make_shared<data::TensorDataset>(std::move(train), data::transforms::compose(steps));
    }
  }
  if (!test.classes.empty()) b.classes = test.classes;
  if (b.classes.empty()) {
    // Formats without a names file: the dataset fixes the class count.
    const int64_t k = o.dataset == "cifar100" ? 100 : 10;
    for (int64_t i = 0; i < k; ++i) b.classes.push_back(std::to_string(i));
  }
  b.test = std::make_shared<data::TensorDataset>(std::move(test), normalize);
  return b;
}

}  // namespace finch::apps
