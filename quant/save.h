// The integer-weights export of a converted model, as safetensors: a write-only, derived view of
// the quantized model checkpoint's state (quant/checkpoint.h, the one form a quantized model is
// kept in besides a .finch program), for size reports and for tools that want the integer codes
// without a runtime. Nothing reads it back (load_quantized_state refuses it). Quantized weights
// are stored as their integer codes (i8, 4-bit codes in i8) with per-channel
// "<path>.weight_fake_quant.scale" / ".zero_point"; folded convs store the folded weight and
// bias and their BatchNorm is left out; fp16 weights are stored as f16; every activation
// FakeQuantize's scale and zero point is kept under its state name. So the file is about ¼ of
// the fp32 weights for int8 (½ for fp16).
#pragma once

#include <map>
#include <string>

#include "quant/prepare.h"

namespace finch::quant {

inline constexpr const char* kIntegerWeightsFormat = "finch-quantized-1";

// Writes atomically (temporary file + rename). `metadata` is added to the file's own
// ("format": kIntegerWeightsFormat, "qconfig", "fused", "dynamic").
void save_quantized(const std::string& path, QuantizedModel& q,
                    const std::map<std::string, std::string>& metadata = {});

}  // namespace finch::quant
