// The converted model on disk: what the integer program needs and nothing else, as safetensors.
// Quantized weights are stored as their integer codes (i8, 4-bit codes in i8) with per-channel
// "<path>.weight_fake_quant.scale" / ".zero_point"; folded convs store the folded weight and
// bias and their BatchNorm is left out; fp16 weights are stored as f16; every activation
// FakeQuantize's scale and zero point is kept under its state name. So the file is about ¼ of
// the fp32 weights for int8 (½ for fp16), and quant/load (the compiler issue's .finch program)
// rebuilds the integer model from it.
#pragma once

#include <map>
#include <string>

#include "quant/prepare.h"

namespace finch::quant {

// Writes atomically (temporary file + rename). `metadata` is added to the file's own
// ("format": "finch-quantized-1", "qconfig", "fused", "dynamic").
void save_quantized(const std::string& path, QuantizedModel& q,
                    const std::map<std::string, std::string>& metadata = {});

}  // namespace finch::quant
