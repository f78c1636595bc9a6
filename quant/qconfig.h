// QConfig: how a model is quantized — the specs and observers for activations and weights, or
// fp16 weights — with presets named for what they are (`--qconfig int8`, ...).
#pragma once

#include <string>
#include <vector>

#include "kernels/qparams.h"

namespace finch::quant {

struct QConfig {
  std::string name = "int8";
  // Activations: per-tensor (axis must stay -1), usually affine int8.
  bool quantize_activations = true;
  QSpec activation{8, true, false, false, -1};
  // The model's input and output tensors (uint8-io: a camera's bytes in, bytes out).
  QSpec io{8, true, false, false, -1};
  // Weights of Conv/Linear: per-channel (axis 0) symmetric narrow int8 by default.
  bool quantize_weights = true;
  QSpec weight{8, true, true, true, 0};
  // fp16 instead of integer weights (activations stay fp32).
  bool fp16_weights = false;
  // Observers by name (observer.h): for activations during calibration/QAT, and for weights.
  std::string activation_observer = "moving-average";
  std::string weight_observer = "minmax";
  // Learned step sizes (LSQ) for QAT instead of observer-driven scales.
  bool lsq = false;
  std::string str() const;
};

// int8            int8 per-channel symmetric weights, int8 per-tensor affine activations
// int8-per-tensor int8 per-tensor symmetric weights (TFLite's old dynamic-range scheme)
// uint8-io        as int8, with the model's input and output quantized as uint8
// int8-weights-only  int8 per-channel weights, float activations
// fp16            fp16 weights, float activations
// int4-weights    4-bit per-channel symmetric weights (-7..7), float activations
QConfig qconfig_preset(const std::string& name);
std::vector<std::string> qconfig_names();

}  // namespace finch::quant
