// Unstructured pruning: masks over the weights of Conv/Linear layers (magnitude per layer or
// global, N:M patterns such as 2:4) and the schedules that raise sparsity while the model
// fine-tunes — one-shot, iterative (seed 003's Algorithm 1) and gradual polynomial (Zhu & Gupta).
// The zeros are in the weights themselves, so QAT, conversion and compile see them; the programs
// still run dense kernels (docs/pruning.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/nn/module.h"

namespace finch::compress {

// A 0/1 mask per prunable weight. apply() zeroes the masked weights in place; call it after each
// optimizer step so fine-tuning (and QAT) keep them at zero (apps wire it as a train/ callback).
struct MaskSet {
  struct Entry {
    std::string name;  // the weight's state-dict name ("layer1.0.conv1.weight")
    Tensor weight;     // the parameter (shared with the model)
    Tensor mask;       // f32, the weight's shape: 1 keeps, 0 prunes
  };
  std::vector<Entry> entries;

  void apply() const;
  int64_t total() const;   // weights under masks
  int64_t pruned() const;  // mask zeros
  double sparsity() const { return total() ? double(pruned()) / double(total()) : 0.0; }
};

// Masks of ones over every Conv1d/Conv2d/Linear weight of `model` (depthwise convs included),
// in state-dict order; `skip` lists module paths (or prefixes "features.0") left dense.
MaskSet prunable_weights(nn::Module& model, const std::vector<std::string>& skip = {});
// Masks with the zeros the weights already hold (a pruned file being fine-tuned again).
MaskSet masks_from_zeros(nn::Module& model, const std::vector<std::string>& skip = {});

// Magnitude pruning to `sparsity` (in [0, 1)): the smallest |w| of each weight (per layer), or of
// all weights together (global). Weights already masked go first, so masks only grow; ties go
// by position, so a run is deterministic. Updates the masks, not the weights (apply() does).
void magnitude_prune(MaskSet& masks, double sparsity, bool global = false);

// N:M pruning (n < m, e.g. 2:4): in every run of m consecutive weights along each output row's
// inputs (C/groups·KH·KW of a conv, K of a Linear), the n largest |w| stay. A weight whose row
// length is not a multiple of m (a 1-channel 3×3 stem: 9) is left dense and named in `skipped`.
void nm_prune(MaskSet& masks, int64_t n, int64_t m, std::vector<std::string>* skipped = nullptr);

// Zhu & Gupta 2017, eq. 1: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(t1 − t0))³ for t in [t0, t1],
// s_i before, s_f after.
double polynomial_sparsity(int64_t step, int64_t begin, int64_t end, double initial, double final_sparsity);
// Seed 003's Algorithm 1: each of `rounds` rounds removes the same fraction p of the weights that
// remain, p = 1 − (1 − final)^(1/rounds); the sparsity after round r (1-based) is 1 − (1 − p)^r.
double iterative_sparsity(int64_t round, int64_t rounds, double final_sparsity);

// The gradual schedule as a train/ step hook: after optimizer step `step` (0-based), every
// `frequency` steps between begin and end, re-prunes to polynomial_sparsity, then applies the
// masks (every step, so the optimizer's update of a pruned weight is undone).
struct GradualPruner {
  MaskSet* masks = nullptr;
  int64_t begin = 0, end = 0, frequency = 1;
  double initial = 0.0, final_sparsity = 0.9;
  bool global = false;
  void after_step(int64_t step);
};

}  // namespace finch::compress
