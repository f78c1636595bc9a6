// The per-sample step ops of the series programs (step_ops.cc: mask_steps, mean_steps), merged
// into rnn_ops() (runtime/op_table.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/op_table.h"

namespace finch::runtime {

const std::vector<std::pair<std::string, OpImpl>>& step_ops();

// The ops whose input 1 is the per-sample lengths over the time axis (I64 [B], each in 1..T).
inline bool is_step_op(const std::string& op) { return op == "mask_steps" || op == "mean_steps"; }

}  // namespace finch::runtime
