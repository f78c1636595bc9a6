// Backward: count each node's consumers, then run nodes whose gradients are complete, latest
// first (Kahn's algorithm with a max-heap on creation order), summing into per-node buffers.
#include "autograd/engine.h"

#include <queue>
#include <unordered_map>

#include "autograd/accumulate.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"

namespace finch {

using autograd::Edge;
using autograd::Grads;
using autograd::Node;

namespace {

struct LaterFirst {
  bool operator()(Node* a, Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

// Adds `g` into slot `i` of `buffer`, checking it has the shape the node's output had.
void accumulate(Grads& buffer, size_t i, const Tensor& g, const Node& node) {
  const auto& meta = node.output_meta()[i];
  if (g.shape() != meta.shape)
    fail("backward: a gradient of shape ", shape_str(g.shape()), " reached output ", i, " of ",
         node.name(), ", whose shape is ", shape_str(meta.shape));
  if (!buffer[i].defined()) {
    buffer[i] = g;
  } else {
    // Out of place the first time: buffer[i] may alias a tensor another rule still holds.
    Tensor sum = buffer[i].to(meta.dtype).clone();
    autograd::add_into(sum, g);
    buffer[i] = sum;
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph) {
  FINCH_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " roots but ",
              grads.size(), " gradients");
  NoGradGuard no_grad;  // backward rules themselves are not recorded
  std::unordered_map<Node*, Grads> buffers;
  std::vector<std::pair<Edge, Tensor>> seeds;
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    if (!root.requires_grad())
      fail("backward: root ", r, " does not require grad and has no grad_fn (was it computed "
           "under NoGradGuard, or from tensors without requires_grad?)");
    Tensor g = grads[r];
    if (!g.defined()) {
      if (root.numel() != 1)
        fail("backward: root ", r, " has shape ", shape_str(root.shape()),
             "; a gradient is needed for a non-scalar root");
      g = ones(root.shape(), root.dtype());
    }
    if (g.shape() != root.shape())
      fail("backward: the gradient for root ", r, " has shape ", shape_str(g.shape()),
           ", expected ", shape_str(root.shape()));
    seeds.emplace_back(autograd::gradient_edge(root), g);
  }

  // Count, for every reachable node, how many edges point at it.
  std::unordered_map<Node*, int> dependencies;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (auto& [edge, g] : seeds) {
    if (!seen[edge.fn.get()]) {
      seen[edge.fn.get()] = true;
      stack.push_back(edge.fn.get());
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.fn) continue;
      ++dependencies[e.fn.get()];
      if (!seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn.get());
      }
    }
  }

  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  // Keeps root nodes alive while they run, even if the caller drops the last reference.
  std::vector<std::shared_ptr<Node>> keep;
  for (auto& [edge, g] : seeds) {
    Grads& buf = buffers[edge.fn.get()];
    buf.resize(edge.fn->output_meta().size());
    accumulate(buf, edge.input_nr, g, *edge.fn);
    keep.push_back(edge.fn);
  }
  for (auto& [edge, g] : seeds)
    if (dependencies[edge.fn.get()] == 0 && buffers.count(edge.fn.get())) {
      ready.push(edge.fn.get());
      dependencies[edge.fn.get()] = -1;  // queued
    }

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Grads in = std::move(buffers[node]);
    buffers.erase(node);
    in.resize(node->output_meta().size());
    for (size_t i = 0; i < in.size(); ++i)
      if (!in[i].defined())
        in[i] = autograd::zero_grad_like(node->output_meta()[i].shape, node->output_meta()[i].dtype);
    Grads out = node->apply(in);
    if (!retain_graph) node->release();
    const auto& edges = node->next_edges();
    if (!out.empty() && out.size() != edges.size())
      fail("backward rule ", node->name(), " returned ", out.size(), " gradients for ",
           edges.size(), " inputs");
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.fn) continue;
      Node* next = e.fn.get();
      if (i < out.size() && out[i].defined()) {
        Grads& buf = buffers[next];
        buf.resize(next->output_meta().size());
        accumulate(buf, e.input_nr, out[i], *next);
      }
      if (--dependencies[next] == 0) {
        ready.push(next);
        dependencies[next] = -1;
      }
    }
  }
}

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  backward(std::vector<Tensor>{root}, std::vector<Tensor>{grad}, retain_graph);
}

}  // namespace finch
