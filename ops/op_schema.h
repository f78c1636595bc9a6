// The op schema: every deployable op (the vocabulary of graphs and .finch programs) declared
// once — its name, inputs (names, which may be absent, how many), attributes (op_attrs.h) and
// shape inference. The runtime validates nodes against it and takes its input counts from it,
// capture and lowering write attributes through op_attrs.h, and runtime/ops.md is checked
// against it by a test (tests/runtime/test_op_schema.cc).
//
// It lives in ops/ because both sides need it and the layer rules allow only ops/ (and
// framework/) below both: autograd (capture) and the runtime.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/tensor.h"
#include "ops/op_attrs.h"

namespace finch::ops {

struct InputSpec {
  const char* name;       // as ops.md lists it: "x", "w", "b", "rq"
  bool optional = false;  // may be absent (value index -1 in a program)
};

// The type of a value as shape inference sees it.
struct ValueType {
  Shape shape;
  // nullopt for an integer-coded output whose dtype (i8 or u8) is the output value's own
  // quantization, chosen by the program, not computable from the inputs.
  std::optional<DType> dtype;
  bool absent = false;  // an absent optional input
};

// Output types from input types and attributes; fails with one sentence naming `where` when
// the inputs or attributes cannot make a valid op.
using InferFn = std::vector<ValueType> (*)(const std::vector<ValueType>& in, const nlohmann::json& attrs,
                                           const std::string& where);

struct OpSchema {
  const char* name;
  std::vector<InputSpec> inputs;  // in order; for a variadic op, the one repeated input
  int min_inputs = 1;             // inputs a node must list (optional ones among them may be -1)
  bool variadic = false;          // any number >= min_inputs of inputs[0] (cat, qcat)
  std::vector<AttrSpec> attrs;
  InferFn infer = nullptr;

  int max_inputs() const { return variadic ? -1 : int(inputs.size()); }
  // Whether input i may be absent (-1): an optional input, or one past min_inputs.
  bool may_be_absent(size_t i) const {
    return !variadic && i < inputs.size() && (inputs[i].optional || int(i) >= min_inputs);
  }
  // Fails unless a node with absent.size() inputs (absent[i]: input i is -1) and attributes
  // `node_attrs` fits this op: the input count, absent inputs only where allowed, every declared
  // attribute well-formed (attributes the op does not declare are ignored, as they always were).
  void check_node(const std::vector<bool>& absent, const nlohmann::json& node_attrs, const std::string& where) const;
};

// The recurrent, embedding and indexing ops (op_schema_rnn.cc), appended to the table.
std::vector<OpSchema> rnn_op_schemas();
// The transformer encoder's ops (op_schema_transformer.cc: layer_norm, attention, narrow_like).
std::vector<OpSchema> transformer_op_schemas();

// Every deployable op, float ops first, then the integer ops.
const std::vector<OpSchema>& op_schemas();
// The schema of `op`, or null for an op that is not deployable.
const OpSchema* find_op_schema(const std::string& op);

// The output types of a node of `op` (check_node first: infer trusts the counts).
std::vector<ValueType> infer_types(const OpSchema& op, const std::vector<ValueType>& in,
                                   const nlohmann::json& attrs, const std::string& where);

}  // namespace finch::ops
