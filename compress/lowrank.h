// Low-rank factorization of a model's dense layers by truncated SVD: every Linear and (ungrouped)
// Conv2d found by walking the module tree becomes two thinner layers, W ≈ U_r S_r V_rᵀ, with the
// rank chosen by a fraction of the full rank, by kept energy, or by a target compression of each
// layer or of the whole model. Layers where the factorization would not save parameters (and so
// FLOPs: both scale with r·(fan_in + out) against fan_in·out) are left alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"

namespace finch::compress {

// Exactly one rule is set (> 0).
struct LowRankOptions {
  double rank_fraction = 0;  // r = round(f · min(fan_in, out)), f in (0, 1]
  double energy = 0;         // smallest r whose Σ_{i<r} s_i² ≥ e · Σ s_i², e in (0, 1]
  double compression = 0;    // ≥ 1: each layer to ≤ 1/c of its parameters (or the model, below)
  bool global = false;       // with compression: one energy threshold for all layers, chosen so
                             // the whole model (every parameter, not only the factorized) shrinks c×
  // Module paths left dense (a path also covers everything under it), e.g. the classifier.
  std::vector<std::string> skip;
  bool linear = true, conv = true;  // which layer kinds are candidates
};

// What happened to one candidate layer.
struct LayerDecision {
  std::string path;
  std::string layer;             // "linear" or "conv"
  int64_t out = 0, fan_in = 0;   // the weight as a matrix [out, fan_in]
  int64_t full_rank = 0, rank = 0;  // rank 0: left dense
  int64_t params_before = 0, params_after = 0;  // weights and bias of this layer
  double kept_energy = 1;        // Σ kept s_i² / Σ s_i²
  double discarded = 0;          // ‖W − W_r‖_F = √(Σ discarded s_i²) (Eckart–Young)
  std::string skipped;           // why it stayed dense; empty when factorized
};

struct LowRankResult {
  std::vector<LayerDecision> layers;
  int64_t params_before = 0, params_after = 0;  // the whole model
  nlohmann::json edits = nlohmann::json::array();  // one "lowrank" edit per factorized layer
};

// Factorizes `model` in place (Module::replace_child), the SVD taken in f64. The first layer gets
// diag(√S_r)·V_rᵀ and the second U_r·diag(√S_r) plus the old bias: splitting √S evenly keeps both
// weights in the same range, which per-tensor int8 quantization needs. Throws a finch::Error
// sentence for an invalid rule or a global compression that rank 1 everywhere cannot reach.
LowRankResult factorize(nn::Module& model, const LowRankOptions& options);

// Factorizes the one Linear/Conv2d at `path` at exactly `rank` (1..min(fan_in, out)), whether or
// not that saves anything (full rank reproduces the layer: the tests and exact experiments use it).
LayerDecision factorize_module(nn::Module& model, const std::string& path, int64_t rank);

}  // namespace finch::compress
