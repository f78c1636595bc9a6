// TTLinear: a dense layer whose [in, out] weight is stored as a tensor train (Novikov, Podoprikhin,
// Osokin & Vetrov 2015, "Tensorizing Neural Networks"; the TT dense layer of seed 002).
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::nn {

// in = Π m_k, out = Π n_k (d ≥ 2 modes each, in the same count). The weight, indexed by the
// row-major multi-indices i = (i_1 … i_d) of the input and j = (j_1 … j_d) of the output, is
//   W[i, j] = G_1[i_1, j_1] · G_2[i_2, j_2] ⋯ G_d[i_d, j_d]
// where G_k[i_k, j_k] is an r_{k-1} × r_k matrix (r_0 = r_d = 1): core k is a parameter
// "core_k" of shape [r_{k-1}, m_k, n_k, r_k]. Parameters: Σ r_{k-1}·m_k·n_k·r_k instead of in·out.
// y = x · W + b, like Linear(in, out). The forward rebuilds W from the cores with differentiable
// matmuls and reshapes (so the backward comes from the tape): that costs in·out·r_max per call
// against B·in·out for the product itself, cheap next to a batch, and lets a captured program
// see one ordinary `linear` with a constant weight. The saving is in parameters and file size,
// not in a program's latency.
class TTLinear : public Module {
 public:
  // `ranks` are the d − 1 inner ranks r_1 … r_{d-1}; each must be in 1..min(Π_{j≤k} m_j n_j,
  // Π_{j>k} m_j n_j) (a larger rank adds nothing). Init: every core N(0, σ²) with σ chosen so that
  // W's entries have Linear's variance 1/(3·in); bias as Linear's.
  TTLinear(std::vector<int64_t> in_modes, std::vector<int64_t> out_modes, std::vector<int64_t> ranks,
           bool bias = true, Generator* gen = nullptr);
  std::string type_name() const override { return "TTLinear"; }
  Tensor forward_impl(const Tensor& x) override;  // x [..., in] -> [..., out]
  // The dense weight [out, in] (Linear's layout), differentiable in the cores.
  Tensor weight() const;

  int64_t in_features = 1, out_features = 1;
  std::vector<int64_t> in_modes, out_modes;
  std::vector<int64_t> ranks;  // d + 1 of them, 1 at both ends
  std::vector<Tensor> cores;
  Tensor bias;  // [out] or undefined
};

}  // namespace finch::nn
