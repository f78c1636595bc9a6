// `finch emit-c`: a .finch program as one self-contained C source (C99, also valid C++17; only
// libc and libm): the weights and quantization tables as static const arrays, the kernels the
// program uses (scalar loops, compile/emit_c_kernels.cc), a static arena for the activations
// sized at emit time, and one entry point
//     int NAME_run(const IN* input, OUT* output);     IN, OUT: float, int8_t or uint8_t
// for the program's one input and one output, at the shapes the program declares (its batch too).
// Integer programs give the runtime's outputs bit for bit (the reference arithmetic of
// kernels/reference*.cc); float conv2d/linear/add/softmax sum in another order than the runtime's
// packed kernels, so fp32 programs agree to float rounding (docs/emit-c.md states the tolerance).
//
// Series programs (`finch quantize --mode static` of LSTM/GRU/BiLSTM/DeepConvLSTM models) take a
// second input, the I64 lengths [B]: the entry point is then NAME_run(const IN* input, const
// int64_t* input1, OUT* output), returning 1 for a length outside 1..T (compile/emit_c_rnn.cc).
//
// What is refused, with one sentence naming the node and op: ops outside the set below,
// programs with several outputs or more than 8 inputs, inputs of another dtype than F32/I8/U8
// (I64 for sequence lengths, I64/I32 for token ids), meta.variable_sequence, per-channel activations, broadcasting adds,
// tensors of 2^31 elements or more.
//   integer: quantize, dequantize, qconv2d (incl. depthwise), qlinear, qadd, qrelu, qrelu6,
//            qmax_pool2d, qavg_pool2d, qadaptive_avg_pool2d, flatten, reshape
//   float:   conv2d, linear, add, relu, relu6, batch_norm, max_pool2d, avg_pool2d,
//            adaptive_avg_pool2d, softmax (f16 weights are widened to f32 at emit time, as the
//            runtime's fp32 compute does)
//   series:  qlstm (uni/bidirectional halves, proj_size), qgru, permute, cat, select,
//            add_scalar on I64 lengths
//   text:    qembedding (int8 rows, one scale per row) on I64/I32 token-id inputs; NAME_run
//            returns 2 for an id outside 0..V-1 (compile/emit_c_dq.cc)
//   dynamic: dq_linear (per tensor or per_row; none/relu/relu6), dq_lstm (both directions,
//            proj_size), dq_gru — bit for bit with the runtime on its FMA targets (the f32 gate
//            passes are Highway's Exp/Tanh with fused multiply-adds, written out as C with fmaf);
//            NAME_run returns 3 for a non-finite value to quantize
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/graph.h"

namespace finch::compile {

struct EmittedC {
  std::string name;    // the C prefix: NAME_run, NAME_INPUT_SIZE, ...
  std::string header;  // NAME.h
  std::string source;  // NAME.c
  std::string main;    // NAME_main.c
  std::vector<std::string> kernels;  // the kernel keys emitted, in order ("qconv2d_i8_i8", ...)
  int64_t arena_bytes = 0;           // the static activation arena
  int64_t scratch_bytes = 0;         // the convolutions' static accumulator planes
  int64_t constant_bytes = 0;        // the bytes of the static const arrays
};

// Emits `g` (validated first exactly as the runtime loads it: runtime::Program) under the C name
// `name` (a C identifier, at most 64 characters). `what` names the program in error sentences.
EmittedC emit_c(const runtime::Graph& g, const std::string& name, const std::string& what);

// The program re-declared for a batch of `batch` (1 .. 2^20): every input's dim 0 set to it and
// every activation's shape inferred again (a reshape whose recorded shape[0] was the batch follows
// it, as the runtime's does). A series program declares its calibration batch (64); emit-c writes
// exactly the declared shapes, so `finch emit-c --batch 1` gives a one-sequence entry point.
// Fails with one sentence naming the node whose shapes do not follow.
runtime::Graph with_batch(const runtime::Graph& g, int64_t batch, const std::string& what);

// Writes NAME.h, NAME.c and NAME_main.c into `dir` (created if missing), each to a temporary
// file beside it and renamed, so a failed run never leaves a half-written source. Fails with one
// sentence naming the folder or file.
void write_emitted_c(const EmittedC& e, const std::string& dir);

}  // namespace finch::compile
