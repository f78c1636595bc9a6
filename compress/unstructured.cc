// Unstructured pruning (see unstructured.h): masks, magnitude and N:M selection, schedules.
#include "compress/unstructured.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compress {
namespace {

void check_sparsity(double s, const char* what) {
  if (!(s >= 0.0 && s < 1.0)) fail(what, ": sparsity is the fraction of weights set to zero, in [0, 1); got ", s);
}

bool skipped(const std::string& path, const std::vector<std::string>& skip) {
  for (const auto& s : skip)
    if (path == s || (path.size() > s.size() && path.compare(0, s.size(), s) == 0 && path[s.size()] == '.')) return true;
  return false;
}

// The ranking key of each weight: |w| for a kept one, −1 for an already pruned one.
std::vector<float> keys(const MaskSet::Entry& e) {
  const std::vector<float> w = e.weight.to_vector<float>(), m = e.mask.to_vector<float>();
  std::vector<float> k(w.size());
  for (size_t i = 0; i < w.size(); ++i) k[i] = m[i] != 0.0f ? std::fabs(w[i]) : -1.0f;
  return k;
}

void set_mask(MaskSet::Entry& e, const std::vector<float>& m) { e.mask = from_vector(m, e.weight.shape()); }

// Zeroes the `count` smallest keys' mask entries (ties by index).
std::vector<float> mask_smallest(const std::vector<float>& k, int64_t count) {
  std::vector<int64_t> idx(k.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return k[size_t(a)] < k[size_t(b)]; });
  std::vector<float> m(k.size(), 1.0f);
  for (int64_t i = 0; i < count; ++i) m[size_t(idx[size_t(i)])] = 0.0f;
  return m;
}

MaskSet collect(nn::Module& model, const std::vector<std::string>& skip, bool from_zeros) {
  MaskSet s;
  for (auto& [path, m] : model.named_modules()) {
    Tensor w;
    if (auto* c = dynamic_cast<nn::Conv2d*>(m)) w = c->weight;
    else if (auto* c1 = dynamic_cast<nn::Conv1d*>(m)) w = c1->weight;
    else if (auto* l = dynamic_cast<nn::Linear*>(m)) w = l->weight;
    if (!w.defined() || skipped(path, skip)) continue;
    if (w.dtype() != DType::f32) fail("unstructured pruning: ", path, ".weight is ", dtype_name(w.dtype()), ", expected f32");
    MaskSet::Entry e{path.empty() ? "weight" : path + ".weight", w, Tensor()};
    std::vector<float> mask(size_t(w.numel()), 1.0f);
    if (from_zeros) {
      const std::vector<float> v = w.to_vector<float>();
      for (size_t i = 0; i < v.size(); ++i) mask[i] = v[i] != 0.0f ? 1.0f : 0.0f;
    }
    set_mask(e, mask);
    s.entries.push_back(std::move(e));
  }
  return s;
}

}  // namespace

void MaskSet::apply() const {
  NoGradGuard ng;
  for (const auto& e : entries) {
    FINCH_CHECK(e.weight.shape() == e.mask.shape(), "MaskSet::apply: ", e.name, " changed shape since masking");
    FINCH_CHECK(e.weight.is_contiguous(), "MaskSet::apply: ", e.name, " is not contiguous");
    float* w = e.weight.data<float>();
    const float* m = e.mask.data<float>();
    for (int64_t i = 0, n = e.weight.numel(); i < n; ++i) w[i] *= m[i];
  }
}

int64_t MaskSet::total() const {
  int64_t n = 0;
  for (const auto& e : entries) n += e.mask.numel();
  return n;
}

int64_t MaskSet::pruned() const {
  int64_t n = 0;
  for (const auto& e : entries) {
    const float* m = e.mask.data<float>();
    for (int64_t i = 0; i < e.mask.numel(); ++i) n += m[i] == 0.0f;
  }
  return n;
}

MaskSet prunable_weights(nn::Module& model, const std::vector<std::string>& skip) { return collect(model, skip, false); }
MaskSet masks_from_zeros(nn::Module& model, const std::vector<std::string>& skip) { return collect(model, skip, true); }

void magnitude_prune(MaskSet& masks, double sparsity, bool global) {
  check_sparsity(sparsity, "magnitude pruning");
  if (!global) {
    for (auto& e : masks.entries)
      set_mask(e, mask_smallest(keys(e), int64_t(std::floor(sparsity * double(e.weight.numel()) + 1e-9))));
    return;
  }
  std::vector<float> all;
  for (const auto& e : masks.entries) {
    const auto k = keys(e);
    all.insert(all.end(), k.begin(), k.end());
  }
  const std::vector<float> m = mask_smallest(all, int64_t(std::floor(sparsity * double(all.size()) + 1e-9)));
  size_t at = 0;
  for (auto& e : masks.entries) {
    const auto n = size_t(e.weight.numel());
    set_mask(e, std::vector<float>(m.begin() + std::ptrdiff_t(at), m.begin() + std::ptrdiff_t(at + n)));
    at += n;
  }
}

void nm_prune(MaskSet& masks, int64_t n, int64_t m, std::vector<std::string>* skipped_names) {
  if (m < 2 || m > 64 || n < 1 || n >= m) fail("N:M pruning: expected 1 <= N < M <= 64 (such as 2:4), found ", n, ":", m);
  for (auto& e : masks.entries) {
    const int64_t row = e.weight.numel() / e.weight.size(0);
    if (row % m != 0) {
      if (skipped_names) skipped_names->push_back(e.name);
      continue;
    }
    const std::vector<float> k = keys(e);
    std::vector<float> mask(k.size(), 0.0f);
    std::vector<int64_t> idx(static_cast<size_t>(m));
    for (size_t start = 0; start < k.size(); start += size_t(m)) {
      std::iota(idx.begin(), idx.end(), int64_t(start));
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return k[size_t(a)] > k[size_t(b)]; });
      for (int64_t j = 0; j < n; ++j)
        if (k[size_t(idx[size_t(j)])] >= 0.0f) mask[size_t(idx[size_t(j)])] = 1.0f;  // never revive a pruned weight
    }
    set_mask(e, mask);
  }
}

double polynomial_sparsity(int64_t step, int64_t begin, int64_t end, double initial, double final_sparsity) {
  check_sparsity(initial, "gradual pruning (initial)");
  check_sparsity(final_sparsity, "gradual pruning (final)");
  if (begin < 0 || end < begin) fail("gradual pruning: expected 0 <= begin <= end steps, found ", begin, " and ", end);
  if (step <= begin) return step < begin ? initial : (end == begin ? final_sparsity : initial);
  if (step >= end) return final_sparsity;
  const double f = 1.0 - double(step - begin) / double(end - begin);
  return final_sparsity + (initial - final_sparsity) * f * f * f;
}

double iterative_sparsity(int64_t round, int64_t rounds, double final_sparsity) {
  check_sparsity(final_sparsity, "iterative pruning");
  if (rounds < 1 || round < 0 || round > rounds)
    fail("iterative pruning: round ", round, " of ", rounds, " (expected 0 <= round <= rounds, rounds >= 1)");
  return 1.0 - std::pow(1.0 - final_sparsity, double(round) / double(rounds));
}

void GradualPruner::after_step(int64_t step) {
  FINCH_CHECK(masks != nullptr, "GradualPruner without masks");
  if (frequency < 1) fail("gradual pruning: the frequency is a number of steps >= 1, found ", frequency);
  // Every `frequency` steps, and at `end` itself so the final sparsity is always reached.
  if (step >= begin && step <= end && ((step - begin) % frequency == 0 || step == end))
    magnitude_prune(*masks, polynomial_sparsity(step, begin, end, initial, final_sparsity), global);
  masks->apply();
}

}  // namespace finch::compress
