// Datasets: labelled images in memory (what the readers return) and the Dataset interface that
// the DataLoader draws samples from, with the in-memory, subset and stratified-split helpers.
//
// Shapes: N images, C channels, H×W pixels; a sample's image is [C, H, W].
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/random.h"
#include "framework/tensor.h"

namespace finch::data {

// What every reader returns: images U8 [N, C, H, W], labels I64 [N], and the class names where
// the format has them (classes[k] names label k; empty when the format has none).
struct LabeledImages {
  Tensor images;
  Tensor labels;
  std::vector<std::string> classes;
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// One example: an image (any dtype, [C, H, W] for the image datasets here) and its class.
// Sequence samples put their series in `image` as [C, T] (or token ids I64 [T]); T may differ
// between samples, and the DataLoader pads a batch to its longest one (Batch::lengths).
// Regression samples carry an F32 `target` (any shape) instead of a class.
struct Sample {
  Tensor image;
  int64_t label = 0;
  Tensor target;  // F32 regression target; undefined for classification
};

// A per-image transform: takes an image [C, H, W] and the sample's own generator (so random
// augmentation is reproducible per sample) and returns a new image. See data/transforms.h.
using Transform = std::function<Tensor(const Tensor& image, Generator& gen)>;

// The interface the DataLoader reads. get() must be safe to call from several threads at once
// (it is const; implementations keep no mutable state) and must draw all its randomness from
// `gen`, so the loader can make every sample's result independent of which thread made it.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index, Generator& gen) const = 0;
  // The class of example `index` without decoding it (for stratified splits).
  virtual int64_t label(int64_t index) const = 0;
};

// Images held in memory (a reader's LabeledImages), each passed through `transform` on get().
class TensorDataset : public Dataset {
 public:
  explicit TensorDataset(LabeledImages data, Transform transform = nullptr);
  int64_t size() const override { return data_.size(); }
  Sample get(int64_t index, Generator& gen) const override;
  int64_t label(int64_t index) const override;
  const LabeledImages& data() const { return data_; }

 private:
  LabeledImages data_;
  Transform transform_;
};

// The examples `indices` of another dataset, optionally with a transform applied after the
// base dataset's own (so train and val subsets of one dataset can augment differently).
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                Transform transform = nullptr);
  int64_t size() const override { return int64_t(indices_.size()); }
  Sample get(int64_t index, Generator& gen) const override;
  int64_t label(int64_t index) const override;
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
  Transform transform_;
};

// A seeded, stratified train/val split: within each class, round(val_fraction · count) of its
// examples (chosen by a seeded shuffle) go to val, the rest to train, so both sides keep the
// class proportions. Both index lists come back sorted ascending.
struct Split {
  std::vector<int64_t> train;
  std::vector<int64_t> val;
};
Split stratified_split(const std::vector<int64_t>& labels, double val_fraction, uint64_t seed);
Split stratified_split(const Dataset& dataset, double val_fraction, uint64_t seed);

}  // namespace finch::data
