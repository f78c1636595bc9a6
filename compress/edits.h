// Architecture edits recorded with a compressed model's weights: the metadata key
// "compress_edits" of a weight or checkpoint file holds a JSON array of edits, applied in order to
// the model models::create(...) builds, before its weights load — so a pruned (or factorized)
// file loads with no extra flags.
//
// Each edit is an object with a "kind":
//   {"kind": "prune_channels", "modules": {"<module path>": {"type": "Conv2d", "in_channels": I,
//     "out_channels": O, "groups": G}, "<path>": {"type": "BatchNorm2d", "num_features": F},
//     "<path>": {"type": "Linear", "in_features": I, "out_features": O},
//     "<path>": {"type": "LSTM" | "GRU", "input_size": I, "hidden_size": H}}}
//   gives each named layer its new (smaller) channel counts; the weights then fill them.
//   {"kind": "lowrank", "module": path, "rank": r, "layer": "linear" | "conv"} and
//   {"kind": "tt_linear", "module": path, "in_modes", "out_modes", "ranks"}: a Linear/Conv2d
//   replaced by its factorized form (compress/lowrank_edit.h, compress/tt.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"

namespace finch::compress {

// The metadata key.
inline constexpr const char* kEditsKey = "compress_edits";

// Applies every edit of `edits_json` (a JSON array, as stored under kEditsKey) to `root` in order.
// `source` names the file in error sentences. Any malformed edit, unknown kind, unknown module,
// wrong layer type or channel count that is not a positive integer no larger than the layer's
// current one is a finch::Error sentence; the model may be partly edited then.
void apply_edits(nn::Module& root, const std::string& edits_json, const std::string& source = "compress_edits");

// Applies one edit object (apply_edits' step).
void apply_edit(nn::Module& root, const nlohmann::json& edit, const std::string& source = "compress_edits");

// `edits_json` (an array, or "" for none) with `edit` appended, serialized for the metadata.
std::string append_edit(const std::string& edits_json, const nlohmann::json& edit);

}  // namespace finch::compress
