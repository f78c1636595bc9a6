// Static int8 LSTM and GRU layers in a float program (post-training): each lstm node (a
// projection included: qlstm's w_hr) whose c_n nothing reads becomes, per direction, quantize → qlstm → dequantize (y,
// h_n; the reverse direction's qlstm has `reverse`, and a bidirectional layer's two halves are
// joined by cat), each cell calibrated by kernels::qlstm_calibrate from the ranges the float
// program shows on calibration inputs: x, h (that direction's half of y and row of h_n), max |c|
// over every step and, with a projection, m = o·tanh(c') (docs/quantization.md §12). Each gru node likewise becomes qgru
// (kernels::qgru_calibrate of x and h).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "framework/tensor.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"
#include "runtime/graph.h"

namespace finch::compile {

// `calibration`: input sets of the program (each as Program::run takes them). Returns how many
// lstm nodes became qlstm; the others stay float.
int quantize_static_lstm(runtime::Graph& g, const std::vector<std::vector<Tensor>>& calibration);

// The same rewrite with the ranges chosen by the caller (QAT's observers, quant/qat_rnn.h):
// ranges_of(g, node, direction) gives an eligible node's ranges for direction 0 (forward) or 1
// (reverse), or nullopt to leave the node float.
using LstmRangesOf = std::function<std::optional<quant::kernels::QLstmRanges>(const runtime::Graph&,
                                                                             const runtime::Node&, int64_t)>;
int quantize_static_lstm(runtime::Graph& g, const LstmRangesOf& ranges_of);

// The same for gru nodes: per direction quantize → qgru → dequantize (y, h_n), each cell from
// kernels::qgru_calibrate of the x and h ranges (calibrated, or the caller's).
int quantize_static_gru(runtime::Graph& g, const std::vector<std::vector<Tensor>>& calibration);
using GruRangesOf = std::function<std::optional<quant::kernels::QGruRanges>(const runtime::Graph&,
                                                                           const runtime::Node&, int64_t)>;
int quantize_static_gru(runtime::Graph& g, const GruRangesOf& ranges_of);

}  // namespace finch::compile
