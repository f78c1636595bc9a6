// The graph IR of a compiled program: values (activations and constants, with shapes, dtypes and
// quantization parameters) and nodes (op kind, input/output values, attributes) in execution
// order. Capture (compile/capture.h) builds one from a model, the passes (compile/passes.h) rewrite
// it, the .finch file (program_file.h) stores it and the runtime (executor.h) runs it.
//
// Shapes: activations carry the shape seen at capture (batch dimension first, batch 1); the
// runtime accepts any batch size, so dim 0 of an activation is a placeholder. Constants are
// exact. The op vocabulary and each op's inputs/attributes are listed in ops.md beside this file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/tensor.h"

namespace finch::runtime {

// Quantization of one value: q = clamp(round(x / scale) + zero_point, qmin, qmax) per tensor
// (axis -1, one entry) or per channel along `axis` (docs/quantization.md).
struct QuantInfo {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int64_t axis = -1;
  int64_t qmin = -128, qmax = 127;
};

struct Value {
  std::string name;  // unique within the graph: "input", "layer1.0.conv1.out", "fc.weight"
  Shape shape;
  DType dtype = DType::f32;
  std::optional<QuantInfo> quant;  // for integer-coded values (i8/u8 activations and weights)
  Tensor data;                     // constants only (defined, contiguous, `shape` and `dtype`)
  bool is_constant() const { return data.defined(); }
};

struct Node {
  std::string op;                 // "conv2d", "qconv2d", "add", "relu", ... (ops.md)
  std::string name;               // where it came from, for reports: "layer1.0.conv1"
  std::vector<int32_t> inputs;    // value indices; -1 marks an absent optional input (no bias)
  std::vector<int32_t> outputs;   // value indices, each produced by exactly one node
  nlohmann::json attrs = nlohmann::json::object();
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;         // in execution order: a node's inputs are graph inputs,
                                   // constants or outputs of earlier nodes
  std::vector<int32_t> inputs;     // value indices fed by the caller
  std::vector<int32_t> outputs;    // value indices returned to the caller
  // Free-form description kept with the program: "model", "dataset", "mean"/"std"
  // (preprocessing of a float input), "classes", "precision" ("fp32", "int8", "fp16", ...).
  nlohmann::json meta = nlohmann::json::object();

  int32_t add_value(Value v) {
    values.push_back(std::move(v));
    return int32_t(values.size() - 1);
  }
};

}  // namespace finch::runtime
