// The quantization debugger's rows for the recurrent layers of a static int8 series/text program
// (finch quantize --report: "recurrent_layers"). For each qlstm/qgru node (one per direction) the
// float cell runs on the node's own int8 input, dequantized (so only the layer's own error
// counts, as TFLite's debugger measures it), against the node's int8 output over each sample's
// valid steps: rmse / scale, in units of the output scale s_h (0.289 is rounding alone; 0.7 the
// alarm). For an LSTM without projection the row also splits that error by its sources, each a
// float recurrence that keeps one rounding of the integer cell and is measured against the same
// float cell: the int8 weights alone, h rounded to its int8 grid every step alone, both (the
// rest of the total is the fixed-point gates and cell: Q3.12 saturation at ±8, the Q0.15 tables,
// the int16 cell), and the error by quarter of the steps (its growth along the sequence), with the
// float gates' pre-activation statistics (max |.|, the fraction beyond Q3.12's ±8).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataloader.h"
#include "runtime/graph.h"
#include "runtime/executor.h"

namespace finch::apps {

// `g32` is the float program the int8 program `p` was made from (its lstm/gru nodes hold the float
// weights), `calib` the calibration batches (the first four are used), T the program's steps.
// Prints one line per row and returns them as JSON.
nlohmann::json recurrent_errors(const runtime::Graph& g32, runtime::Program& p, const std::vector<data::Batch>& calib,
                                int64_t T);

}  // namespace finch::apps
