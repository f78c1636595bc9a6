// Passes over the program IR (runtime/graph.h), each a separate function with its own
// test: BN folding, activation fusion, dead-node removal, and the lowering of a captured
// quantized model (QDQ form: fake_quant nodes and weight-quantization attributes) to integer ops.
#pragma once

#include "runtime/graph.h"

namespace finch::compile {

// conv2d → batch_norm (eval, constant statistics, the conv's only reader) becomes one conv2d
// with w·γ/σ and β + (b − μ)·γ/σ (computed in double, stored f32); a conv1d's conv2d → reshape
// [N, C, L] → batch_norm (BatchNorm1d) folds the same way. Returns how many were folded.
int fold_batch_norm(runtime::Graph& g);

// conv2d / linear / add (act "none") whose output only a relu or relu6 reads becomes one node
// with `act` set (a conv1d's conv2d also through its [N, C, L] reshape). Returns how many were fused.
int fuse_activations(runtime::Graph& g);

// Evaluates at compile time every node whose inputs are all constants (a reshape or transpose of
// a parameter, arithmetic between parameters, a dequantize of int8 weights feeding a float
// island) with the runtime's own op implementations, so the folded value is exactly what the
// program would have computed. Its outputs become constants; the node is dropped. Graph outputs
// are never folded (a program must compute something). Returns how many nodes were folded.
int fold_constants(runtime::Graph& g);

// Drops nodes nothing reads (up to the graph outputs) and values no node or output uses, and
// renumbers the rest. Returns how many nodes were removed.
int remove_dead(runtime::Graph& g);

// Turns a captured quantized model into the integer program of docs/quantization.md:
//   fake_quant(float)                          → quantize
//   fake_quant(x) → conv2d/linear[weight_quant] → fake_quant(y)   → qconv2d / qlinear (int8
//       weights, int32 bias, per-channel (multiplier, shift); the fused activation narrows the
//       output range)
//   add of two quantized values → fake_quant   → qadd
//   relu/relu6/max_pool2d/flatten/reshape/zero pad of codes → their integer forms (codes, same scale)
//   conv2d[weight_quant] → reshape [N, C, L] → fake_quant (a conv1d)  → qconv2d → reshape
//   linear[dynamic]                            → dq_linear;  [weight_fp16] → f16 weight constants
//   anything else runs in float between dequantize and the next quantize ("float islands"),
// so each op computes exactly what the simulated model computed. Outputs are dequantized to f32.
// Returns the number of integer nodes in the result.
int lower_quantized(runtime::Graph& g);

}  // namespace finch::compile
