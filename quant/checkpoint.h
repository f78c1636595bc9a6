// The one on-disk form of a quantized model besides a .finch program: the simulation checkpoint
// (the model's float weights plus every FakeQuantize's state under "quant."), written and read
// by one pair of functions. It is what `finch verify` and QAT resume need, and reloading it into
// a model prepared with the same options reproduces the simulated model exactly. Format:
// quant/README.md ("The quantized model checkpoint").
#pragma once

#include <map>
#include <string>

#include "autograd/nn/module.h"
#include "quant/prepare.h"

namespace finch::quant {

inline constexpr const char* kQuantizedModelFormat = "finch-qsim-1";
inline constexpr const char* kQuantStatePrefix = "quant.";

// Writes `q.model`'s state_dict and q.state's (prefixed "quant.") to `path` atomically, with
// `metadata` (e.g. "model", "width", "dataset", read back by the apps) plus "format",
// "qconfig" (the QConfig's description), "fuse", "dynamic" and "skip" (JSON list) from q.options.
void save_quantized_model(const std::string& path, QuantizedModel& q,
                          const std::map<std::string, std::string>& metadata = {});

// A checkpoint read back, split into the model's weights and the FakeQuantize states (without
// the prefix), ready for model.load_state_dict before prepare() and q.state->load_state_dict
// after it. Files written before the format tag existed (the same tensors, no "format") are
// read the same way (legacy = true). An integer-weights export (quant/save.h, format
// "finch-quantized-1") is refused with a sentence naming the file: it cannot rebuild the model.
struct QuantizedModelState {
  nn::StateDict weights, quant;
  std::map<std::string, std::string> metadata;
  bool legacy = false;
};
QuantizedModelState load_quantized_state(const std::string& path);

}  // namespace finch::quant
