// The float passes: BN folding, activation fusion, constant folding, dead-node removal (see
// passes.h).
#include "compile/passes.h"

#include <set>

#include "compile/bn_fold.h"
#include "framework/error.h"
#include "runtime/op_table.h"

namespace finch::compile {

using runtime::Graph;
using runtime::Node;
using runtime::Value;

namespace {

// Node index producing each value (-1: input or constant).
std::vector<int32_t> producers(const Graph& g) {
  std::vector<int32_t> p(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int32_t v : g.nodes[i].outputs) p[size_t(v)] = int32_t(i);
  return p;
}

// How many node inputs and graph outputs read each value.
std::vector<int32_t> reader_counts(const Graph& g) {
  std::vector<int32_t> c(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int32_t v : n.inputs)
      if (v >= 0) ++c[size_t(v)];
  for (int32_t v : g.outputs) c[size_t(v)] += 1000000;  // a graph output is never fused away
  return c;
}

void replace_uses(Graph& g, int32_t from, int32_t to) {
  for (Node& n : g.nodes)
    for (int32_t& v : n.inputs)
      if (v == from) v = to;
  for (int32_t& v : g.outputs)
    if (v == from) v = to;
}

bool is_const(const Graph& g, int32_t v) { return v >= 0 && g.values[size_t(v)].is_constant(); }

std::string unique_name(const Graph& g, const std::string& base) {
  std::set<std::string> names;
  for (const Value& v : g.values) names.insert(v.name);
  std::string s = base;
  for (int k = 1; names.count(s); ++k) s = base + "_" + std::to_string(k);
  return s;
}

int32_t add_constant(Graph& g, const std::string& name, Tensor data) {
  Value v;
  v.name = unique_name(g, name);
  v.shape = data.shape();
  v.dtype = data.dtype();
  v.data = std::move(data);
  return g.add_value(std::move(v));
}

// Conv1d is captured as reshape → conv2d → reshape (compile/capture.cc): when value v is the
// [N, C, L] reshape of a conv2d's [N, C, 1, L] output that nothing else reads, returns that
// reshape's node index, so BN folding and activation fusion see the conv through it; else -1.
int32_t conv_view(const Graph& g, const std::vector<int32_t>& prod, const std::vector<int32_t>& readers, int32_t v) {
  const int32_t r = prod[size_t(v)];
  if (r < 0 || g.nodes[size_t(r)].op != "reshape" || g.nodes[size_t(r)].inputs.size() != 1) return -1;
  const int32_t u = g.nodes[size_t(r)].inputs[0];
  if (u < 0 || readers[size_t(u)] != 1 || prod[size_t(u)] < 0 || g.nodes[size_t(prod[size_t(u)])].op != "conv2d") return -1;
  const Shape& a = g.values[size_t(u)].shape;
  const Shape& b = g.values[size_t(v)].shape;
  if (a.size() != 4 || a[2] != 1 || b != Shape{a[0], a[1], a[3]}) return -1;
  return r;
}

}  // namespace

int fold_batch_norm(Graph& g) {
  int folded = 0;
  const auto prod = producers(g);
  const auto readers = reader_counts(g);
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& bn = g.nodes[i];
    if (bn.op != "batch_norm" || bn.attrs.value("training", false) || bn.inputs.size() != 5) continue;
    const int32_t x = bn.inputs[0];
    int32_t p = prod[size_t(x)];
    if (p < 0 || readers[size_t(x)] != 1) continue;
    // A conv1d's BatchNorm1d: reads the [N, C, L] view of the conv2d, which keeps producing it.
    const int32_t view = conv_view(g, prod, readers, x);
    if (view >= 0) p = prod[size_t(g.nodes[size_t(view)].inputs[0])];
    Node& conv = g.nodes[size_t(p)];
    if (conv.op != "conv2d" || conv.attrs.contains("weight_quant") || conv.attrs.value("act", "none") != "none")
      continue;
    if (!is_const(g, conv.inputs[1]) || (conv.inputs.size() > 2 && conv.inputs[2] >= 0 && !is_const(g, conv.inputs[2])))
      continue;
    bool consts = true;
    for (int k = 3; k < 5; ++k) consts = consts && is_const(g, bn.inputs[size_t(k)]);
    for (int k = 1; k < 3; ++k) consts = consts && (bn.inputs[size_t(k)] < 0 || is_const(g, bn.inputs[size_t(k)]));
    if (!consts) continue;
    const Tensor w = g.values[size_t(conv.inputs[1])].data;
    const int64_t oc = w.size(0);
    auto param = [&](int32_t v) { return v >= 0 ? g.values[size_t(v)].data : Tensor(); };
    const Tensor mean = param(bn.inputs[3]), var = param(bn.inputs[4]);
    if (mean.numel() != oc || var.numel() != oc) continue;
    const bool has_bias = conv.inputs.size() > 2 && conv.inputs[2] >= 0;
    // The one fold (compile/bn_fold.h), as the quantized model computes it.
    const FoldedConv f = fold_conv_bn(w, has_bias ? param(conv.inputs[2]) : Tensor(), param(bn.inputs[1]),
                                      param(bn.inputs[2]), mean, var, bn.attrs.at("eps").get<double>());
    const Tensor &nw = f.weight, &nb = f.bias;
    const std::string base = g.values[size_t(conv.inputs[1])].name;
    conv.inputs.resize(3);
    conv.inputs[1] = add_constant(g, base + ".folded", nw);
    conv.inputs[2] = add_constant(g, base.substr(0, base.rfind('.')) + ".bias.folded", nb);
    replace_uses(g, bn.outputs[0], view >= 0 ? x : conv.outputs[0]);
    drop[i] = true;
    ++folded;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return folded;
}

int fuse_activations(Graph& g) {
  int fused = 0;
  const auto prod = producers(g);
  const auto readers = reader_counts(g);
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& r = g.nodes[i];
    if ((r.op != "relu" && r.op != "relu6") || r.inputs.size() != 1) continue;
    const int32_t v = r.inputs[0];
    int32_t p = prod[size_t(v)];
    if (p < 0 || readers[size_t(v)] != 1) continue;
    // A conv1d's activation: fused into the conv2d under the [N, C, L] view, which then produces
    // the activation's value (the activation is elementwise, so it commutes with the reshape).
    const int32_t view = conv_view(g, prod, readers, v);
    if (view >= 0) p = prod[size_t(g.nodes[size_t(view)].inputs[0])];
    Node& n = g.nodes[size_t(p)];
    if ((n.op != "conv2d" && n.op != "linear" && n.op != "add") || n.attrs.value("act", "none") != "none") continue;
    if (n.op == "add" && g.values[size_t(v)].dtype != DType::f32) continue;
    n.attrs["act"] = r.op;
    if (view >= 0) g.nodes[size_t(view)].outputs[0] = r.outputs[0];
    else n.outputs[0] = r.outputs[0];  // the fused node now produces the activation's value
    drop[i] = true;
    ++fused;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return fused;
}

int fold_constants(Graph& g) {
  std::vector<bool> is_output(g.values.size(), false);
  for (int32_t v : g.outputs) is_output[size_t(v)] = true;
  std::vector<Node> kept;
  int folded = 0;
  for (Node& n : g.nodes) {
    const runtime::OpImpl* impl = runtime::find_op(n.op);
    bool foldable = impl != nullptr && !n.inputs.empty();
    bool any_input = false;
    for (int32_t v : n.inputs) {
      foldable = foldable && (v < 0 || is_const(g, v));
      any_input = any_input || v >= 0;
    }
    for (int32_t v : n.outputs) foldable = foldable && !is_output[size_t(v)];
    if (!foldable || !any_input) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<Tensor> in;
    for (int32_t v : n.inputs) in.push_back(v < 0 ? Tensor() : g.values[size_t(v)].data);
    std::vector<Tensor> out = impl->fn(n, in, g);
    FINCH_CHECK(out.size() == n.outputs.size(), "fold_constants: node '", n.name, "' returned ", out.size(),
                " outputs for ", n.outputs.size());
    for (size_t k = 0; k < out.size(); ++k) {
      Value& v = g.values[size_t(n.outputs[k])];
      // A constant is stored exactly as declared; the op's result must already be that.
      if (out[k].shape() != v.shape || out[k].dtype() != v.dtype)
        fail("fold_constants: node '", n.name, "' (", n.op, ") computed ", dtype_name(out[k].dtype()), " ",
             shape_str(out[k].shape()), " for '", v.name, "', declared ", dtype_name(v.dtype), " ", shape_str(v.shape));
      v.data = out[k].contiguous().clone();
    }
    ++folded;
  }
  g.nodes = std::move(kept);
  remove_dead(g);  // the folded nodes' inputs may now be unread
  return folded;
}

int remove_dead(Graph& g) {
  std::vector<bool> needed(g.values.size(), false);
  for (int32_t v : g.outputs) needed[size_t(v)] = true;
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    for (int32_t v : g.nodes[i].outputs) keep[i] = keep[i] || needed[size_t(v)];
    if (keep[i])
      for (int32_t v : g.nodes[i].inputs)
        if (v >= 0) needed[size_t(v)] = true;
  }
  for (int32_t v : g.inputs) needed[size_t(v)] = true;
  for (size_t i = 0; i < g.nodes.size(); ++i)  // a kept node's other outputs stay declared
    if (keep[i])
      for (int32_t v : g.nodes[i].outputs) needed[size_t(v)] = true;
  std::vector<int32_t> remap(g.values.size(), -1);
  std::vector<Value> values;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (needed[v]) {
      remap[v] = int32_t(values.size());
      values.push_back(std::move(g.values[v]));
    }
  auto map = [&](int32_t v) { return v < 0 ? v : remap[size_t(v)]; };
  std::vector<Node> nodes;
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!keep[i]) {
      ++removed;
      continue;
    }
    Node n = std::move(g.nodes[i]);
    for (int32_t& v : n.inputs) v = map(v);
    for (int32_t& v : n.outputs) v = map(v);
    nodes.push_back(std::move(n));
  }
  for (int32_t& v : g.inputs) v = map(v);
  for (int32_t& v : g.outputs) v = map(v);
  g.values = std::move(values);
  g.nodes = std::move(nodes);
  return removed;
}

}  // namespace finch::compile
