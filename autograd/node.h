// The autograd graph: a Node per recorded primitive, edges to the nodes of its inputs, and
// record(), which wires a forward's outputs into the graph with the backward rule beside it.
//
// How an op becomes differentiable (see docs/adding-an-op.md):
//   Tensor relu(const Tensor& x) {
//     const bool rec = should_record({x});
//     NoGradGuard ng;                       // kernels may use raw views freely
//     Tensor y = ops::relu(x);
//     if (rec) record("relu", {x}, {y}, [y = y.detach()](const Grads& g, const Needs&) {
//       return Grads{ops::relu_backward(g[0], y)};
//     });
//     return y;
//   }
// Saved tensors are captured detached: capturing an output with its grad_fn would make a cycle.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace finch::autograd {

class Node;

// Where a gradient goes: input `input_nr` of node `fn`.
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
};

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
// Maps the gradients of a node's outputs (zeros where an output got none) to the gradients of
// its inputs (undefined where `needs[i]` is false or the input is not differentiable).
using BackwardFn = std::function<Grads(const Grads& grad_outputs, const Needs& needs)>;

struct TensorMeta {
  Shape shape;
  DType dtype = DType::f32;
};

class Node {
 public:
  Node(std::string name, std::vector<Edge> next_edges, std::vector<TensorMeta> inputs,
       std::vector<TensorMeta> outputs);
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  const std::vector<TensorMeta>& input_meta() const { return inputs_; }
  const std::vector<TensorMeta>& output_meta() const { return outputs_; }
  // Creation order: later nodes run first when several are ready (as PyTorch does).
  uint64_t sequence_nr() const { return sequence_nr_; }

  // Computes input gradients from output gradients (grad_outputs.size() == outputs).
  virtual Grads apply(const Grads& grad_outputs) = 0;
  // Frees saved tensors after a backward without retain_graph.
  virtual void release() {}

 private:
  std::string name_;
  std::vector<Edge> next_edges_;
  std::vector<TensorMeta> inputs_, outputs_;
  uint64_t sequence_nr_;
};

// A node whose backward rule is a closure (the saved tensors live in its captures).
class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, std::vector<Edge> next, std::vector<TensorMeta> in,
               std::vector<TensorMeta> out, BackwardFn fn, Needs needs);
  Grads apply(const Grads& grad_outputs) override;
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
  Needs needs_;
};

// Sums incoming gradients into a leaf tensor's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const Tensor& leaf);
  Grads apply(const Grads& grad_outputs) override;
  const Tensor& leaf() const { return leaf_; }

 private:
  Tensor leaf_;
};

// Called on the thread running backward right after a leaf's .grad was written (once per leaf
// per backward: a leaf has one accumulator, which runs when all its gradient has arrived), with
// that leaf. Data-parallel training starts reducing a parameter's gradient here while backward
// still runs the earlier layers (train/distributed.h), as PyTorch DDP's autograd hooks do.
using GradReadyHook = std::function<void(const Tensor& leaf)>;
// Installs `hook` for the backward passes run on this thread until the scope ends; scopes nest
// (the previous hook comes back).
class GradReadyScope {
 public:
  explicit GradReadyScope(GradReadyHook hook);
  ~GradReadyScope();
  GradReadyScope(const GradReadyScope&) = delete;
  GradReadyScope& operator=(const GradReadyScope&) = delete;

 private:
  GradReadyHook previous_;
};

// True when grad mode is on and any defined input requires grad.
bool should_record(std::initializer_list<Tensor> inputs);
bool should_record(const std::vector<Tensor>& inputs);

// The edge a gradient for `t` flows along: its grad_fn, or its leaf accumulator, or none.
Edge gradient_edge(const Tensor& t);

// Wires `outputs` into the graph as the outputs of a new node named `name` (which must be
// listed in autograd/registry.cc). Call only when should_record(inputs) was true on entry.
void record(const char* name, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& outputs, BackwardFn backward);

}  // namespace finch::autograd
