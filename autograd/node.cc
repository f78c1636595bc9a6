// Graph nodes, leaf accumulators and record(): how a forward call becomes part of the tape.
#include "autograd/node.h"

#include <atomic>

#include "autograd/accumulate.h"
#include "autograd/registry.h"
#include "framework/grad_mode.h"

namespace finch::autograd {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};

TensorMeta meta_of(const Tensor& t) { return {t.shape(), t.dtype()}; }

thread_local GradReadyHook t_grad_ready;
}  // namespace

GradReadyScope::GradReadyScope(GradReadyHook hook) : previous_(std::move(t_grad_ready)) {
  t_grad_ready = std::move(hook);
}
GradReadyScope::~GradReadyScope() { t_grad_ready = std::move(previous_); }

Node::Node(std::string name, std::vector<Edge> next_edges, std::vector<TensorMeta> inputs,
           std::vector<TensorMeta> outputs)
    : name_(std::move(name)),
      next_edges_(std::move(next_edges)),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)),
      sequence_nr_(g_next_sequence_nr.fetch_add(1)) {}

FunctionNode::FunctionNode(std::string name, std::vector<Edge> next, std::vector<TensorMeta> in,
                           std::vector<TensorMeta> out, BackwardFn fn, Needs needs)
    : Node(std::move(name), std::move(next), std::move(in), std::move(out)),
      fn_(std::move(fn)),
      needs_(std::move(needs)) {}

Grads FunctionNode::apply(const Grads& grad_outputs) {
  if (!fn_)
    fail("backward through the graph a second time (node ", name(), "): its saved tensors were "
         "freed by the first backward; pass retain_graph=true to the first call");
  return fn_(grad_outputs, needs_);
}

AccumulateGrad::AccumulateGrad(const Tensor& leaf)
    : Node("accumulate_grad", {}, {}, {meta_of(leaf)}), leaf_(leaf) {}

Grads AccumulateGrad::apply(const Grads& grad_outputs) {
  const Tensor& g = grad_outputs[0];
  Tensor current = leaf_.grad();
  // The first gradient becomes .grad. It is copied unless nothing else can see it: a backward
  // rule may hand one tensor to several inputs, and optimizers update .grad in place. The
  // engine's buffer is the only holder of a freshly computed gradient, so that one is taken.
  if (!current.defined()) {
    const bool take = g.is_sole_owner() && g.dtype() == leaf_.dtype() && g.is_contiguous();
    leaf_.set_grad(take ? g.detach() : g.to(leaf_.dtype()).clone());
  } else {
    add_into(current, g);
    leaf_.set_grad(current);
  }
  if (t_grad_ready) t_grad_ready(leaf_);
  return {};
}

bool should_record(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool should_record(std::initializer_list<Tensor> inputs) {
  return should_record(std::vector<Tensor>(inputs));
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  Tensor::AutogradMeta* m = t.autograd_meta();
  std::shared_ptr<Node> acc = m->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    m->grad_accumulator = acc;
  }
  return {acc, 0};
}

void record(const char* name, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& outputs, BackwardFn backward) {
  FINCH_DCHECK(is_registered_rule(name), "backward rule '", name,
               "' is not listed in autograd/registry.cc");
  std::vector<Edge> edges;
  std::vector<TensorMeta> in_meta, out_meta;
  Needs needs;
  for (const Tensor& t : inputs) {
    edges.push_back(gradient_edge(t));
    needs.push_back(edges.back().fn != nullptr);
    in_meta.push_back(t.defined() ? meta_of(t) : TensorMeta{});
  }
  for (const Tensor& t : outputs) out_meta.push_back(meta_of(t));
  auto node = std::make_shared<FunctionNode>(name, std::move(edges), std::move(in_meta),
                                             std::move(out_meta), std::move(backward),
                                             std::move(needs));
  for (size_t i = 0; i < outputs.size(); ++i)
    if (is_floating(outputs[i].dtype())) outputs[i].set_grad_fn(node, uint32_t(i));
}

}  // namespace finch::autograd
