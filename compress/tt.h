// Dense Linear → tensor-train Linear (nn::TTLinear) by TT-SVD (Oseledets 2011), and the
// "tt_linear" edit that records the replacement in a weight file's "compress_edits".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/nn/linear.h"
#include "autograd/nn/module.h"
#include "autograd/nn/tt_linear.h"

namespace finch::compress {

// The TT layer closest to `dense` with inner ranks at most `max_ranks` (d − 1 of them; each is
// also capped by what the modes allow): sequential truncated SVDs of the weight reshaped to
// [m_1 n_1, m_2 n_2, …]. With ranks at their caps it reproduces the layer (to rounding). The
// products of the modes must equal the layer's in/out features, else a finch::Error sentence.
std::shared_ptr<nn::TTLinear> tt_from_linear(const nn::Linear& dense, const std::vector<int64_t>& in_modes,
                                             const std::vector<int64_t>& out_modes,
                                             const std::vector<int64_t>& max_ranks);

// Replaces the Linear at `path` by tt_from_linear(...) and returns its "tt_linear" edit:
// {"kind": "tt_linear", "module", "in_modes", "out_modes", "ranks"} (the ranks actually used).
nlohmann::json tt_factorize_module(nn::Module& root, const std::string& path, const std::vector<int64_t>& in_modes,
                                   const std::vector<int64_t>& out_modes, const std::vector<int64_t>& max_ranks);

// Applies one "tt_linear" edit: the module at "module" must be a Linear whose features the modes
// multiply to; every number is checked (positive integers, ranks within their caps) before a
// TTLinear with those shapes takes its place. Weights come from the state dict loaded afterwards.
void apply_tt_edit(nn::Module& root, const nlohmann::json& edit);

}  // namespace finch::compress
