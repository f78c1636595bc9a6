// Graph capture: runs a model's forward once on an example input and records the ops it executes
// into the program IR (runtime/graph.h). Works on any nn model, float or prepared for
// quantization: functional ops report themselves (autograd/capture.h), a prepared Conv/Linear
// unit reports one conv2d/linear with its deployed (BN-folded) weight and the weight's
// quantization, and each FakeQuantize reports a `fake_quant` node with its scale and zero point —
// the QDQ form that the lowering pass (passes.h) turns into integer ops.
#pragma once

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"
#include "framework/tensor.h"
#include "kernels/qparams.h"
#include "runtime/graph.h"

namespace finch::compile {

// Records `model`'s forward on `example` (a batch, usually of one) in eval mode and restores the
// model's mode. Parameters and buffers become constants named as in the state dict; tensors the
// forward makes that do not depend on the input become constants too. Fails with a sentence
// naming the module when the forward uses an op that capture cannot record.
// With `values`, also returns the tensor each value held in this forward (index = value index):
// finch verify compares a program's values with the simulated model's, layer by layer.
runtime::Graph capture_graph(nn::Module& model, const Tensor& example, std::vector<Tensor>* values = nullptr);
// The same for a model run with per-sample lengths (an nn::LengthAware: forward_with_lengths):
// the program gets a second input 'lengths' (I64 [B], each in 1..T), so padded batches of
// variable-length sequences run in the program. `example` may be f32 features or i64/i32 token ids
// (also in capture_graph).
runtime::Graph capture_graph_with_lengths(nn::Module& model, const Tensor& example, const Tensor& lengths,
                                          std::vector<Tensor>* values = nullptr);

// The attributes of a fake_quant node / a weight's quantization: scale, zero_point, axis, qmin, qmax.
nlohmann::json qparams_json(const quant::QParams& p);
quant::QParams qparams_from_json(const nlohmann::json& j);

}  // namespace finch::compile
