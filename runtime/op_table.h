// The runtime's op implementations, by op name (runtime/ops.md): each takes the node, its
// input tensors (undefined for an absent optional input) and the graph (for the quantization
// parameters of its values) and returns its outputs. Float ops live in float_ops.cc, integer
// ops in quant_ops.cc.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/graph.h"
#include "runtime/sparse_choice.h"

namespace finch::runtime {

using OpFn = std::vector<Tensor> (*)(const Node& n, const std::vector<Tensor>& in, const Graph& g);

// A node's optimized kernel, prepared once when the program loads (weights packed, requantization
// tables derived): run() then does only the arithmetic. It must give exactly what `fn` gives,
// with two documented exceptions (float_ops.cc): the native fp16 conv2d/linear of fp16 programs on
// ARMv8.2 FP16 CPUs compute in fp16 and differ from fn's fp32 compute by fp16 rounding, and the
// packed-weight fp32 conv2d/linear of float programs sum in another order than fn's
// OpenBLAS/Winograd (float rounding).
class NodeKernel {
 public:
  virtual ~NodeKernel() = default;
  virtual std::vector<Tensor> run(const std::vector<Tensor>& in) const = 0;
};
// Null when this node cannot use the optimized kernel (e.g. weights that are not constants): the
// node then runs on `fn`. It sees the constants as the program stores them (f16 weights of an
// fp16 program not yet widened to f32).
using PrepareFn = std::unique_ptr<NodeKernel> (*)(const Node& n, const Graph& g);

// Load-time fusion (executor.cc): one kernel for a qconv2d node `conv` and the qadd node `add`
// that reads the conv's output as its operand `conv_operand` (0 or 1) and is its only reader.
// It replaces the conv's own kernel: given the conv's inputs followed by the add's other operand
// it returns the add's output, bit for bit what the two nodes give; given the conv's inputs alone,
// the conv's output (run_all). Null when the pair cannot be fused (both then run as stored).
std::unique_ptr<NodeKernel> prepare_qconv2d_add(const Node& conv, const Node& add, int conv_operand, const Graph& g);
// The same for a float conv2d (no activation of its own, the packed fp32 kernel) and an add with
// alpha 1 over one shape (float_ops.cc): the add's activation applies after the sum.
std::unique_ptr<NodeKernel> prepare_conv2d_add(const Node& conv, const Node& add, int conv_operand, const Graph& g);

// The sparse kernel of a conv2d/linear (fp32 programs, f32 constant weight) or qconv2d/qlinear
// node (groups 1, constant weight) when runtime/sparse_choice.h chooses it for the weight's
// sparsity, else null (the node keeps its dense kernel). *sparsity gets the weight's fraction of
// zeros. Results: int8 identical to the dense kernels; fp32 within float rounding of them.
std::unique_ptr<NodeKernel> prepare_sparse(const Node& n, const Graph& g, SparseKernels mode, double* sparsity);
std::unique_ptr<NodeKernel> prepare_sparse_int8(const Node& n, const Graph& g, SparseKernels mode, double* sparsity);
std::unique_ptr<NodeKernel> prepare_sparse_f32(const Node& n, const Graph& g, SparseKernels mode, double* sparsity);

// An op's implementation. Its inputs, attributes and shape rule are declared once in the op
// schema (ops/op_schema.h): the Program checks every node against it before anything runs, so
// an fn sees the input count the schema allows and attributes that are well-formed.
struct OpImpl {
  OpFn fn = nullptr;            // the plain implementation (reference kernels for int8 ops)
  PrepareFn prepare = nullptr;  // the optimized kernel of a node, where the op has one
};

// The implementation of `op`, or null for an op this runtime does not have.
const OpImpl* find_op(const std::string& op);

// Registration tables of the two op families (merged by find_op). Every op in them has a schema
// and every schema op is in one of them (tests/runtime/test_op_schema.cc).
const std::vector<std::pair<std::string, OpImpl>>& float_ops();
const std::vector<std::pair<std::string, OpImpl>>& quant_ops();
// The recurrent models' ops (rnn_ops.cc: lstm, gru, embedding, permute, select, and the
// int8 ones of quant_rnn_ops.cc: dq_lstm, dq_gru, qembedding).
const std::vector<std::pair<std::string, OpImpl>>& rnn_ops();
const std::vector<std::pair<std::string, OpImpl>>& quant_rnn_ops();
const std::vector<std::pair<std::string, OpImpl>>& qlstm_ops();  // qlstm_op.cc
// The transformer encoder's ops (transformer_ops.cc: layer_norm, attention, narrow_like),
// merged into rnn_ops().
const std::vector<std::pair<std::string, OpImpl>>& transformer_ops();
// The ops whose input 1 is the optional per-sample lengths (I64 [B], each in 1..T).
inline bool is_recurrent_op(const std::string& op) {
  return op == "lstm" || op == "gru" || op == "dq_lstm" || op == "dq_gru" || op == "qlstm" || op == "qgru";
}

// Per value of g: whether it is a recurrent op's lengths input, or reaches one only through
// add_scalar nodes (a model whose valid convs shorten its sequences computes its lengths that
// way), i.e. holds per-sample sequence lengths. The executor's dry run and finch bench feed such
// program inputs valid lengths.
std::vector<bool> sequence_length_values(const Graph& g);

// How attribute errors name a node: "node 'layer1.0.conv1' (conv2d)".
std::string node_where(const Node& n);
// The activation fused into a node ("none", "relu", "relu6") applied in place to f32 y.
void apply_activation(const Node& n, Tensor& y);

}  // namespace finch::runtime
