// Module surgery: gives Conv2d, BatchNorm, Linear and LSTM/GRU layers new channel counts in place, keeping
// a chosen subset of their channels (structured pruning) or the leading ones (rebuilding a pruned
// architecture before its weights load).
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/nn/module.h"

namespace finch::compress {

// Kept channel indices, strictly increasing, each in [0, n).
using Keep = std::vector<int64_t>;

// 0, 1, ..., n-1.
Keep keep_first(int64_t n);

// Rewrites `t` in place (every handle to it, the module's member and its registered entry alike,
// sees the new shape) with the entries of `keep` along `dim` (0 or 1) and, for `dim` 1, each
// kept index widened to `block` consecutive columns (a Linear after a flatten of C×H×W).
// Drops its gradient: an optimizer built before the surgery must be rebuilt.
void keep_along(const Tensor& t, int64_t dim, const Keep& keep, int64_t block = 1);

// Conv2d with groups 1: output filters `out`, input channels `in`. A depthwise conv (groups ==
// in == out) takes the same list for both and keeps groups equal to its channel count.
void resize_conv2d(nn::Module& conv, const Keep& out, const Keep& in);
// BatchNorm1d/2d: weight, bias, running_mean, running_var of the kept channels.
void resize_batch_norm(nn::Module& bn, const Keep& keep);
// Linear: kept output rows and kept input channels (each `block` features wide).
void resize_linear(nn::Module& linear, const Keep& out, const Keep& in, int64_t block = 1);
// LSTM/GRU: `units[l·D + d]` the kept hidden units of layer l, direction d — the same count for
// every layer-direction, the module's new hidden_size (and above proj_size) — and `in` the kept
// input columns of layer 0 (input_size). A unit leaves its gate rows (j + g·H of w_ih, w_hh and
// the biases, for each of the 4 LSTM or 3 GRU gates) and its recurrent column (w_hh's; w_hr's with
// proj_size); layer l ≥ 1 loses the input columns of layer l − 1's units (both directions).
void resize_rnn(nn::Module& rnn, const std::vector<Keep>& units, const Keep& in);

}  // namespace finch::compress
