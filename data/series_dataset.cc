// The in-memory series and token datasets and per-channel z-score statistics.
#include "data/series_dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace finch::data {

int64_t SeriesSet::min_length() const {
  int64_t m = std::numeric_limits<int64_t>::max();
  for (const Tensor& s : series) m = std::min(m, s.size(1));
  return series.empty() ? 0 : m;
}

int64_t SeriesSet::max_length() const {
  int64_t m = 0;
  for (const Tensor& s : series) m = std::max(m, s.size(1));
  return m;
}

Tensor SeriesSet::stacked() const {
  if (series.empty()) fail("SeriesSet::stacked: ", name, " has no series");
  if (!equal_length())
    fail("SeriesSet::stacked: ", name, " has series of lengths ", min_length(), " to ", max_length(),
         "; only equal-length series stack into one [N, C, T] tensor");
  const int64_t C = channels(), T = max_length();
  Tensor out = empty({size(), C, T}, DType::f32);
  for (int64_t i = 0; i < size(); ++i)
    std::memcpy(out.data<float>() + i * C * T, series[size_t(i)].contiguous().data<float>(),
                size_t(C * T) * sizeof(float));
  return out;
}

void check_series_set(const SeriesSet& set, const std::string& what) {
  if (set.series.empty()) fail(what, ": expected at least one series, found none");
  const int64_t C = set.series[0].defined() && set.series[0].dim() == 2 ? set.series[0].size(0) : -1;
  for (size_t i = 0; i < set.series.size(); ++i) {
    const Tensor& s = set.series[i];
    if (!s.defined() || s.dtype() != DType::f32 || s.dim() != 2 || s.size(0) < 1 || s.size(1) < 1)
      fail(what, ": series ", i, " must be F32 [C, T] with C, T >= 1, found ",
           s.defined() ? std::string(dtype_name(s.dtype())) + " " + shape_str(s.shape()) : "an undefined tensor");
    if (s.size(0) != C)
      fail(what, ": series ", i, " has ", s.size(0), " channels but series 0 has ", C);
  }
  if (set.labels.size() != set.series.size())
    fail(what, ": expected ", set.series.size(), " labels (one per series), found ", set.labels.size());
  if (!set.targets.empty() && set.targets.size() != set.series.size())
    fail(what, ": expected ", set.series.size(), " targets (one per series), found ", set.targets.size());
  for (size_t i = 0; i < set.targets.size(); ++i)
    if (!set.targets[i].defined() || set.targets[i].dtype() != DType::f32 ||
        set.targets[i].shape() != set.targets[0].shape())
      fail(what, ": target ", i, " must be F32 of target 0's shape ", shape_str(set.targets[0].shape()));
  if (set.targets.empty() && !set.classes.empty()) {
    for (size_t i = 0; i < set.labels.size(); ++i)
      if (set.labels[i] < 0 || set.labels[i] >= int64_t(set.classes.size()))
        fail(what, ": label ", set.labels[i], " of series ", i, " is outside the ", set.classes.size(),
             " classes");
  }
}

SeriesDataset::SeriesDataset(SeriesSet set, Transform transform)
    : set_(std::move(set)), transform_(std::move(transform)) {
  check_series_set(set_, "SeriesDataset");
  for (Tensor& s : set_.series) s = s.contiguous();
}

Sample SeriesDataset::get(int64_t index, Generator& gen) const {
  if (index < 0 || index >= size())
    fail("SeriesDataset::get: index ", index, " is outside [0, ", size(), ")");
  Sample s;
  s.image = set_.series[size_t(index)];
  s.label = set_.labels[size_t(index)];
  if (set_.is_regression()) s.target = set_.targets[size_t(index)];
  if (transform_) s.image = transform_(s.image, gen);
  return s;
}

int64_t SeriesDataset::label(int64_t index) const {
  if (index < 0 || index >= size())
    fail("SeriesDataset::label: index ", index, " is outside [0, ", size(), ")");
  return set_.labels[size_t(index)];
}

ChannelStats ChannelStats::fit(const std::vector<Tensor>& series) {
  if (series.empty()) fail("ChannelStats::fit: expected at least one series, found none");
  const int64_t C = series[0].size(0);
  ChannelStats st;
  st.mean.assign(size_t(C), 0.0);
  st.std.assign(size_t(C), 0.0);
  std::vector<double> count(size_t(C), 0.0);
  // Two passes in double: the one-pass sum-of-squares formula cancels badly on series with a
  // large offset (ETTh1's oil temperature, sunspot counts).
  for (const Tensor& s : series) {
    if (s.dim() != 2 || s.size(0) != C)
      fail("ChannelStats::fit: expected every series [", C, ", T], found ", shape_str(s.shape()));
    const Tensor x = s.contiguous();
    const float* p = x.data<float>();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < x.size(1); ++t) st.mean[size_t(c)] += p[c * x.size(1) + t];
    for (int64_t c = 0; c < C; ++c) count[size_t(c)] += double(x.size(1));
  }
  for (int64_t c = 0; c < C; ++c) st.mean[size_t(c)] /= count[size_t(c)];
  for (const Tensor& s : series) {
    const Tensor x = s.contiguous();
    const float* p = x.data<float>();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < x.size(1); ++t) {
        const double d = p[c * x.size(1) + t] - st.mean[size_t(c)];
        st.std[size_t(c)] += d * d;
      }
  }
  for (int64_t c = 0; c < C; ++c) {
    st.std[size_t(c)] = std::sqrt(st.std[size_t(c)] / count[size_t(c)]);
    if (!(st.std[size_t(c)] > 0.0)) st.std[size_t(c)] = 1.0;
  }
  return st;
}

namespace {

Tensor affine(const ChannelStats& st, const Tensor& x, bool forward) {
  if (!x.defined() || x.dim() != 2 || x.size(0) != int64_t(st.mean.size()))
    fail("ChannelStats: expected a series [", st.mean.size(), ", T], found ",
         x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  const Tensor src = x.to(DType::f32).contiguous();
  Tensor out = empty(src.shape(), DType::f32);
  const int64_t T = src.size(1);
  for (int64_t c = 0; c < src.size(0); ++c) {
    const double m = st.mean[size_t(c)], sd = st.std[size_t(c)];
    for (int64_t t = 0; t < T; ++t) {
      const double v = src.data<float>()[c * T + t];
      out.data<float>()[c * T + t] = float(forward ? (v - m) / sd : v * sd + m);
    }
  }
  return out;
}

}  // namespace

Tensor ChannelStats::apply(const Tensor& x) const { return affine(*this, x, true); }
Tensor ChannelStats::invert(const Tensor& x) const { return affine(*this, x, false); }

TokenDataset::TokenDataset(std::vector<std::vector<int64_t>> ids, std::vector<int64_t> labels,
                           std::vector<std::string> classes)
    : ids_(std::move(ids)), labels_(std::move(labels)), classes_(std::move(classes)) {
  if (ids_.size() != labels_.size())
    fail("TokenDataset: expected ", ids_.size(), " labels (one per sequence), found ", labels_.size());
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (ids_[i].empty())
      fail("TokenDataset: sequence ", i, " is empty; every sequence needs at least one token");
    for (int64_t id : ids_[i])
      if (id < 0) fail("TokenDataset: sequence ", i, " has the negative token id ", id);
    if (!classes_.empty() && (labels_[i] < 0 || labels_[i] >= int64_t(classes_.size())))
      fail("TokenDataset: label ", labels_[i], " of sequence ", i, " is outside the ", classes_.size(),
           " classes");
  }
}

Sample TokenDataset::get(int64_t index, Generator& gen) const {
  (void)gen;
  if (index < 0 || index >= size())
    fail("TokenDataset::get: index ", index, " is outside [0, ", size(), ")");
  const auto& v = ids_[size_t(index)];
  Sample s;
  s.image = from_vector<int64_t>(v, {int64_t(v.size())});
  s.label = labels_[size_t(index)];
  return s;
}

int64_t TokenDataset::label(int64_t index) const {
  if (index < 0 || index >= size())
    fail("TokenDataset::label: index ", index, " is outside [0, ", size(), ")");
  return labels_[size_t(index)];
}

}  // namespace finch::data
