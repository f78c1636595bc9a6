// The in-memory and subset datasets and the stratified split.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace finch::data {

TensorDataset::TensorDataset(LabeledImages data, Transform transform)
    : data_(std::move(data)), transform_(std::move(transform)) {
  if (!data_.images.defined() || data_.images.dim() < 1)
    fail("TensorDataset: expected images [N, ...], found ",
         data_.images.defined() ? shape_str(data_.images.shape()) : std::string("an undefined tensor"));
  if (!data_.labels.defined() || data_.labels.dim() != 1 || data_.labels.size(0) != data_.images.size(0))
    fail("TensorDataset: expected labels [", data_.images.size(0), "], found ",
         data_.labels.defined() ? shape_str(data_.labels.shape()) : std::string("an undefined tensor"));
  data_.labels = data_.labels.to(DType::i64).contiguous();
  data_.images = data_.images.contiguous();
}

Sample TensorDataset::get(int64_t index, Generator& gen) const {
  if (index < 0 || index >= size())
    fail("TensorDataset::get: index ", index, " is outside [0, ", size(), ")");
  Sample s{data_.images.select(0, index), data_.labels.data<int64_t>()[index], {}};
  if (transform_) s.image = transform_(s.image, gen);
  return s;
}

int64_t TensorDataset::label(int64_t index) const {
  if (index < 0 || index >= size())
    fail("TensorDataset::label: index ", index, " is outside [0, ", size(), ")");
  return data_.labels.data<int64_t>()[index];
}

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                             Transform transform)
    : base_(std::move(base)), indices_(std::move(indices)), transform_(std::move(transform)) {
  if (!base_) fail("SubsetDataset: expected a base dataset, found null");
  for (int64_t i : indices_)
    if (i < 0 || i >= base_->size())
      fail("SubsetDataset: index ", i, " is outside the base dataset's [0, ", base_->size(), ")");
}

Sample SubsetDataset::get(int64_t index, Generator& gen) const {
  if (index < 0 || index >= size())
    fail("SubsetDataset::get: index ", index, " is outside [0, ", size(), ")");
  Sample s = base_->get(indices_[size_t(index)], gen);
  if (transform_) s.image = transform_(s.image, gen);
  return s;
}

int64_t SubsetDataset::label(int64_t index) const {
  if (index < 0 || index >= size())
    fail("SubsetDataset::label: index ", index, " is outside [0, ", size(), ")");
  return base_->label(indices_[size_t(index)]);
}

Split stratified_split(const std::vector<int64_t>& labels, double val_fraction, uint64_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
    fail("stratified_split: expected val_fraction in [0, 1], found ", val_fraction);
  // Classes in ascending label order so the draw sequence does not depend on hash order.
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(int64_t(i));
  Generator gen(seed);
  Split out;
  for (auto& [cls, idx] : by_class) {
    // Fisher-Yates with the seeded generator.
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[gen.below(i)]);
    const size_t n_val = size_t(std::llround(val_fraction * double(idx.size())));
    out.val.insert(out.val.end(), idx.begin(), idx.begin() + int64_t(n_val));
    out.train.insert(out.train.end(), idx.begin() + int64_t(n_val), idx.end());
  }
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.val.begin(), out.val.end());
  return out;
}

Split stratified_split(const Dataset& dataset, double val_fraction, uint64_t seed) {
  std::vector<int64_t> labels(size_t(dataset.size()));
  for (int64_t i = 0; i < dataset.size(); ++i) labels[size_t(i)] = dataset.label(i);
  return stratified_split(labels, val_fraction, seed);
}

}  // namespace finch::data
