// Channel dependency analysis over a captured graph (see channel_groups.h): a union-find over
// every channel of every activation and layer axis, driven by the op vocabulary of runtime/ops.md.
#include "compress/channel_groups.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>

#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "autograd/nn/norm.h"
#include "autograd/nn/rnn.h"
#include "compile/capture.h"
#include "framework/error.h"

namespace finch::compress {

const char* role_name(Role r) {
  switch (r) {
    case Role::conv_out: return "out";
    case Role::conv_in: return "in";
    case Role::depthwise: return "depthwise";
    case Role::batch_norm: return "features";
    case Role::linear_out: return "out";
    case Role::linear_in: return "in";
    case Role::rnn_unit: return "units";
    case Role::rnn_in: return "in";
  }
  return "?";
}

int64_t ChannelGroups::prunable_channels() const {
  int64_t n = 0;
  for (const auto& g : groups) n += int64_t(g.classes.size());
  return n;
}

namespace {

// Ops that map channel c of their first input to channel c of their output and nothing else.
const std::set<std::string> kChannelwise = {
    "relu",    "relu6",      "sigmoid",   "tanh",      "silu",       "hardswish",
    "hardsigmoid", "gelu",   "gelu_tanh", "leaky_relu", "max_pool2d", "avg_pool2d",
    "adaptive_avg_pool2d", "add_scalar", "mul_scalar", "dropout", "contiguous"};

struct Space {
  int64_t size = 0;
  int64_t base = 0;   // first element
  int32_t axis = -1;  // a layer axis, or -1 for an activation
};

struct Ref {  // an activation's channels: a space, each channel `block` features wide
  int32_t space = -1;
  int64_t block = 1;
  int64_t dim = 1;  // the dim that holds the channels (the last one for sequences [B, T, C])
  // A stack of states along dim 0 (h_n/c_n [L·D, B, C]): one space per row, `space` unused.
  std::vector<int32_t> rows;
};

class Analyzer {
 public:
  Analyzer(nn::Module& model, const runtime::Graph& g) : g_(g) {
    for (auto& [path, m] : model.named_modules()) modules_[path] = m;
  }

  ChannelGroups run() {
    for (int32_t v : g_.inputs) freeze(ref(v).space);
    for (const auto& n : g_.nodes) node(n);
    for (int32_t v : g_.outputs) freeze(ref(v).space);
    return collect();
  }

 private:
  const runtime::Graph& g_;
  std::map<std::string, nn::Module*> modules_;
  std::vector<Space> spaces_;
  std::vector<int64_t> parent_;     // element union-find
  std::vector<char> frozen_;        // per element
  std::vector<int32_t> sparent_;    // space union-find
  std::unordered_map<int32_t, Ref> refs_;
  std::map<std::tuple<std::string, Role, int64_t>, int32_t> axis_space_;
  std::vector<LayerAxis> axes_;

  int32_t new_space(int64_t size, int32_t axis = -1) {
    Space s;
    s.size = size;
    s.base = int64_t(parent_.size());
    s.axis = axis;
    for (int64_t i = 0; i < size; ++i) {
      parent_.push_back(s.base + i);
      frozen_.push_back(0);
    }
    spaces_.push_back(s);
    sparent_.push_back(int32_t(spaces_.size() - 1));
    return int32_t(spaces_.size() - 1);
  }
  int64_t find(int64_t e) {
    while (parent_[size_t(e)] != e) e = parent_[size_t(e)] = parent_[size_t(parent_[size_t(e)])];
    return e;
  }
  int32_t sfind(int32_t s) {
    while (sparent_[size_t(s)] != s) s = sparent_[size_t(s)] = sparent_[size_t(sparent_[size_t(s)])];
    return s;
  }
  void freeze(int32_t s) {
    if (s < 0) return;
    for (int64_t i = 0; i < spaces_[size_t(s)].size; ++i) frozen_[size_t(find(spaces_[size_t(s)].base + i))] = 1;
  }
  void freeze(const Ref& r) {
    freeze(r.space);
    for (int32_t s : r.rows) freeze(s);
  }
  // Ties channel i of `a` to channel offset + i of `b`.
  void tie(int32_t a, int32_t b, int64_t offset = 0) {
    if (a < 0 || b < 0) {
      freeze(a);
      freeze(b);
      return;
    }
    const Space sa = spaces_[size_t(a)], sb = spaces_[size_t(b)];
    if (offset + sa.size > sb.size) {  // shapes that do not line up: leave both alone
      freeze(a);
      freeze(b);
      return;
    }
    for (int64_t i = 0; i < sa.size; ++i) {
      const int64_t x = find(sa.base + i), y = find(sb.base + offset + i);
      if (x != y) {
        parent_[size_t(x)] = y;
        frozen_[size_t(y)] = char(frozen_[size_t(y)] | frozen_[size_t(x)]);
      }
    }
    sparent_[size_t(sfind(a))] = sfind(b);
  }
  // Ties channel i of `fine` to channel i / block of `coarse` (the features of one attention
  // head to the head): all `block` features then form one class.
  void tie_block(int32_t fine, int32_t coarse, int64_t block) {
    if (fine < 0 || coarse < 0 || spaces_[size_t(fine)].size != spaces_[size_t(coarse)].size * block) {
      freeze(fine);
      freeze(coarse);
      return;
    }
    const Space sf = spaces_[size_t(fine)], sc = spaces_[size_t(coarse)];
    for (int64_t i = 0; i < sf.size; ++i) {
      const int64_t x = find(sf.base + i), y = find(sc.base + i / block);
      if (x != y) {
        parent_[size_t(x)] = y;
        frozen_[size_t(y)] = char(frozen_[size_t(y)] | frozen_[size_t(x)]);
      }
    }
    sparent_[size_t(sfind(fine))] = sfind(coarse);
  }

  // The channels of value v (created on first use for rank-2/4 activations; -1 otherwise).
  Ref ref(int32_t v) {
    if (v < 0) return {};
    if (auto it = refs_.find(v); it != refs_.end()) return it->second;
    const auto& val = g_.values[size_t(v)];
    Ref r;
    if (!val.is_constant() && (val.shape.size() == 2 || val.shape.size() == 4)) r.space = new_space(val.shape[1]);
    // Sequences [B, T, C] carry their channels last (Linear, LSTM, attention layouts).
    if (!val.is_constant() && val.shape.size() == 3) r.space = new_space(val.shape[2]), r.dim = 2;
    refs_[v] = r;
    return r;
  }
  void alias(int32_t v, Ref r) { refs_[v] = r; }
  Ref fresh_frozen(int32_t v) {
    Ref r = ref(v);
    freeze(r);
    return r;
  }
  const Shape& shape(int32_t v) const { return g_.values[size_t(v)].shape; }
  bool is_const(int32_t v) const { return v >= 0 && g_.values[size_t(v)].is_constant(); }

  // The layer axis (path, role) as a space, or -1 when its block disagrees with an earlier call.
  int32_t axis(const std::string& path, Role role, int64_t size, int64_t block = 1, int64_t index = 0) {
    const auto key = std::make_tuple(path, role, index);
    if (auto it = axis_space_.find(key); it != axis_space_.end()) {
      const LayerAxis& a = axes_[size_t(spaces_[size_t(it->second)].axis)];
      if (a.size != size || a.block != block) {
        freeze(it->second);
        return -1;
      }
      return it->second;
    }
    axes_.push_back({path, role, size, block, index});
    const int32_t s = new_space(size, int32_t(axes_.size() - 1));
    axis_space_[key] = s;
    return s;
  }

  // The module a node ran in ("layer1.0.conv1#1" is the second call of that module).
  nn::Module* module_of(const runtime::Node& n, std::string& path) {
    path = n.name.substr(0, n.name.find('#'));
    if (path == "model") path = "";
    auto it = modules_.find(path);
    return it == modules_.end() ? nullptr : it->second;
  }
  bool weight_is(const runtime::Node& n, size_t i, const std::string& path) const {
    if (n.inputs.size() <= i || n.inputs[i] < 0) return false;
    return g_.values[size_t(n.inputs[i])].name == (path.empty() ? "weight" : path + ".weight");
  }

  void freeze_node(const runtime::Node& n) {
    for (int32_t v : n.inputs)
      if (v >= 0 && !is_const(v)) freeze(ref(v));
    for (int32_t v : n.outputs) fresh_frozen(v);
  }

  void node(const runtime::Node& n) {
    const std::string& op = n.op;
    if (op == "lstm" || op == "gru") return rnn(n);
    if (n.inputs.empty() || n.outputs.size() != 1) return freeze_node(n);
    const int32_t x = n.inputs[0], y = n.outputs[0];
    std::string path;
    if (kChannelwise.count(op)) {
      if (is_const(x)) return freeze_node(n);
      return alias(y, ref(x));
    }
    if (op == "conv2d") return conv(n, x, y);
    if (op == "linear") return linear(n, x, y);
    if (op == "batch_norm") {
      nn::Module* m = module_of(n, path);
      auto* bn = dynamic_cast<nn::BatchNorm*>(m);
      const Ref rx = ref(x);
      if (!bn || rx.space < 0 || rx.block != 1 || rx.dim != 1 || spaces_[size_t(rx.space)].size != bn->num_features)
        return freeze_node(n);
      tie(rx.space, axis(path, Role::batch_norm, bn->num_features));
      return alias(y, rx);
    }
    if (op == "add" || op == "sub" || op == "mul" || op == "div") return binary(n);
    if (op == "cat") return cat(n);
    if (op == "flatten" || op == "reshape") return flatten(n, x, y);
    if (op == "select") return select(n, x, y);
    if (op == "permute") return permute(n, x, y);
    if (op == "scaled_dot_product_attention") return attention(n);
    if (op == "mean") {
      const auto& dims = n.attrs.value("dims", nlohmann::json::array());
      const Ref rx = ref(x);
      const auto rank = int64_t(g_.values[size_t(x)].shape.size());
      std::set<int64_t> d;
      for (const auto& e : dims) d.insert(e.get<int64_t>() < 0 ? e.get<int64_t>() + rank : e.get<int64_t>());
      if (rank == 4 && rx.block == 1 && rx.dim == 1 && d == std::set<int64_t>{2, 3}) return alias(y, rx);
      return freeze_node(n);
    }
    freeze_node(n);
  }

  void conv(const runtime::Node& n, int32_t x, int32_t y) {
    std::string path;
    auto* c = dynamic_cast<nn::Conv2d*>(module_of(n, path));
    const Ref rx = ref(x), ry = ref(y);
    if (!c || !weight_is(n, 1, path) || rx.space < 0 || rx.block != 1 || rx.dim != 1 || ry.space < 0)
      return freeze_node(n);
    const int64_t g = c->options.groups;
    if (g == 1) {
      tie(rx.space, axis(path, Role::conv_in, c->in_channels));
      tie(ry.space, axis(path, Role::conv_out, c->out_channels));
    } else if (g == c->in_channels && g == c->out_channels) {
      const int32_t a = axis(path, Role::depthwise, g);
      tie(rx.space, a);
      tie(ry.space, a);
    } else {
      freeze_node(n);  // grouped: channels mix within a group (see docs/pruning.md)
    }
  }

  // x [N, IN] or a sequence [B, T, IN]: the channels on the last dim.
  void linear(const runtime::Node& n, int32_t x, int32_t y) {
    std::string path;
    auto* l = dynamic_cast<nn::Linear*>(module_of(n, path));
    const auto rank = int64_t(shape(x).size());
    if (rank == 3 && shape(y).size() == 3 && !refs_.count(y)) alias(y, Ref{new_space(shape(y)[2]), 1, 2, {}});
    const Ref rx = ref(x), ry = ref(y);
    if (!l || !weight_is(n, 1, path) || rx.space < 0 || ry.space < 0 || rank < 2 || rank > 3 ||
        rx.dim != rank - 1 || ry.dim != rank - 1 || (rank == 3 && rx.block != 1))
      return freeze_node(n);
    if (spaces_[size_t(rx.space)].size * rx.block != l->in_features) return freeze_node(n);
    tie(rx.space, axis(path, Role::linear_in, l->in_features / rx.block, rx.block));
    tie(ry.space, axis(path, Role::linear_out, l->out_features));
  }

  void binary(const runtime::Node& n) {
    if (n.inputs.size() != 2) return freeze_node(n);
    const int32_t a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
    const auto& sy = g_.values[size_t(y)].shape;
    // The channel dim: the one the (non-constant) operands carry, 1 for images.
    int64_t cd = 1;
    for (int32_t v : {a, b})
      if (!is_const(v) && ref(v).space >= 0) cd = ref(v).dim;
    // An operand that broadcasts over channels (a scalar, a [.., 1, ..] tensor) ties nothing.
    auto broadcasts = [&](int32_t v) {
      const auto& s = g_.values[size_t(v)].shape;
      if (shape_numel(s) == 1) return true;
      return s.size() == sy.size() && int64_t(sy.size()) > cd && s[size_t(cd)] == 1;
    };
    const bool ca = is_const(a) || broadcasts(a), cb = is_const(b) || broadcasts(b);
    if ((is_const(a) && !broadcasts(a)) || (is_const(b) && !broadcasts(b))) return freeze_node(n);
    if (ca && cb) return freeze_node(n);
    if (ca) return alias(y, ref(b));
    if (cb) return alias(y, ref(a));
    const Ref ra = ref(a), rb = ref(b);
    if (ra.space < 0 || rb.space < 0 || ra.block != rb.block || ra.dim != rb.dim || g_.values[size_t(a)].shape != sy ||
        g_.values[size_t(b)].shape != sy)
      return freeze_node(n);
    tie(ra.space, rb.space);
    alias(y, ra);
  }

  void cat(const runtime::Node& n) {
    const int32_t y = n.outputs[0];
    const auto rank = int64_t(g_.values[size_t(y)].shape.size());
    int64_t dim = n.attrs.value("dim", int64_t(0));
    if (dim < 0) dim += rank;
    // Stacked states (the layers' h_n of a multi-layer LSTM) one after the other: rows append.
    if (dim == 0 && rank == 3) {
      Ref r;
      r.dim = 2;
      for (int32_t v : n.inputs) {
        const Ref rv = v < 0 || is_const(v) ? Ref{} : ref(v);
        if (rv.rows.empty()) return freeze_node(n);
        r.rows.insert(r.rows.end(), rv.rows.begin(), rv.rows.end());
      }
      if (int64_t(r.rows.size()) != shape(y)[0]) return freeze_node(n);
      return alias(y, r);
    }
    const int64_t cdim = n.inputs.empty() || n.inputs[0] < 0 ? 1 : ref(n.inputs[0]).dim;
    for (int32_t v : n.inputs)
      if (v < 0 || is_const(v) || ref(v).space < 0 || ref(v).block != 1 || ref(v).dim != cdim) return freeze_node(n);
    if (dim == cdim) {
      if (rank == 3 && !refs_.count(y)) alias(y, Ref{new_space(shape(y)[2]), 1, 2, {}});
      const Ref ry = ref(y);
      if (ry.space < 0) return freeze_node(n);
      int64_t offset = 0;
      for (int32_t v : n.inputs) {
        tie(ref(v).space, ry.space, offset);
        offset += g_.values[size_t(v)].shape[size_t(dim)];
      }
      return;
    }
    for (size_t i = 1; i < n.inputs.size(); ++i) tie(ref(n.inputs[i]).space, ref(n.inputs[0]).space);
    alias(y, ref(n.inputs[0]));
  }

  // [N, C, H, W] -> [N, C·H·W]: channel c becomes features c·H·W .. (c+1)·H·W − 1.
  void flatten(const runtime::Node& n, int32_t x, int32_t y) {
    const auto& sx = g_.values[size_t(x)].shape;
    const auto& sy = g_.values[size_t(y)].shape;
    const Ref rx = ref(x);
    if (rx.space >= 0 && rx.block == 1 && rx.dim == 1 && sx.size() == 4 && sy.size() == 2 &&
        sy[1] == sx[1] * sx[2] * sx[3])
      return alias(y, Ref{rx.space, sx[2] * sx[3], 1, {}});
    if ((rx.space >= 0 || !rx.rows.empty()) && sx == sy) return alias(y, rx);
    // The last dim split into heads, [.., NH·HD] -> [.., NH, HD]: channel = head, its HD features
    // tied into one class; and merged back, [.., NH, HD] -> [.., NH·HD].
    const size_t r = sx.size();
    if (rx.space >= 0 && rx.rows.empty() && rx.block == 1 && r >= 2) {
      const bool same_lead = sy.size() == r + 1 && std::equal(sx.begin(), sx.end() - 1, sy.begin());
      if (same_lead && rx.dim == int64_t(r) - 1 && sy[r - 1] * sy[r] == sx[r - 1]) {
        const int32_t heads = new_space(sy[r - 1]);
        tie_block(rx.space, heads, sy[r]);
        return alias(y, Ref{heads, 1, int64_t(r) - 1, {}});
      }
      const bool merge = sy.size() + 1 == r && std::equal(sy.begin(), sy.end() - 1, sx.begin());
      if (merge && rx.dim == int64_t(r) - 2 && sy[r - 2] == sx[r - 2] * sx[r - 1]) {
        const int32_t features = new_space(sy[r - 2]);
        tie_block(features, rx.space, sx[r - 1]);
        return alias(y, Ref{features, 1, int64_t(r) - 2, {}});
      }
    }
    freeze_node(n);
  }

  // The channel dim moves with the permutation.
  void permute(const runtime::Node& n, int32_t x, int32_t y) {
    const Ref rx = ref(x);
    const auto& dims = n.attrs.value("dims", nlohmann::json::array());
    const auto rank = int64_t(shape(x).size());
    if (rx.space < 0 || !rx.rows.empty() || rx.block != 1 || int64_t(dims.size()) != rank) return freeze_node(n);
    for (int64_t i = 0; i < rank; ++i) {
      int64_t d = dims[size_t(i)].get<int64_t>();
      if (d < 0) d += rank;
      if (d == rx.dim) return alias(y, Ref{rx.space, 1, i, {}});
    }
    freeze_node(n);
  }

  // q, k, v [B, NH, S, HD] (heads on dim 1, as the reshape + permute above leave them): head h of
  // q, k and v and of the output are one class (q·k of a head mixes only that head's features).
  void attention(const runtime::Node& n) {
    if (n.inputs.size() < 3 || n.outputs.size() != 1) return freeze_node(n);
    const int32_t y = n.outputs[0];
    Ref r[3];
    for (int i = 0; i < 3; ++i) {
      r[i] = n.inputs[size_t(i)] >= 0 && !is_const(n.inputs[size_t(i)]) ? ref(n.inputs[size_t(i)]) : Ref{};
      if (r[i].space < 0 || r[i].dim != 1 || r[i].block != 1 || shape(n.inputs[size_t(i)]).size() != 4)
        return freeze_node(n);
    }
    for (size_t i = 3; i < n.inputs.size(); ++i)  // the mask: its channels are not heads
      if (n.inputs[i] >= 0 && !is_const(n.inputs[i])) freeze(ref(n.inputs[i]));
    tie(r[0].space, r[1].space);
    tie(r[2].space, r[0].space);
    if (shape(y) != shape(n.inputs[2])) return freeze_node(n);
    alias(y, r[2]);
  }

  // One row of stacked states ([L·D, B, C] -> [B, C]: that layer-direction's units), or one step
  // of a sequence ([B, T, C] -> [B, C]); any other select freezes what it touches.
  void select(const runtime::Node& n, int32_t x, int32_t y) {
    const Ref rx = ref(x);
    const auto rank = int64_t(shape(x).size());
    int64_t dim = n.attrs.value("dim", int64_t(0)), index = n.attrs.value("index", int64_t(0));
    if (dim < 0) dim += rank;
    if (dim >= 0 && dim < rank && index < 0) index += shape(x)[size_t(dim)];
    if (!rx.rows.empty() && dim == 0 && rank == 3 && index >= 0 && index < int64_t(rx.rows.size()))
      return alias(y, Ref{rx.rows[size_t(index)], 1, 1, {}});
    if (rx.space >= 0 && rx.rows.empty() && dim >= 0 && dim != rx.dim && rank >= 2 && rx.block == 1)
      return alias(y, Ref{rx.space, 1, dim < rx.dim ? rx.dim - 1 : rx.dim, {}});
    freeze_node(n);
  }

  // One layer of an nn::LSTM/GRU (inputs x, lengths, then per direction w_ih, w_hh, b_ih, b_hh
  // and for the LSTM w_hr; outputs y [.., D·P], h_n [D, B, P] and for the LSTM c_n [D, B, H]).
  void rnn(const runtime::Node& n) {
    // The module and layer from the first weight's name, "<path>.weight_ih_l<l>": forward_seq()
    // records the node inside its caller's scope, so the node's own name is the caller's.
    const std::string w = n.inputs.size() > 2 && n.inputs[2] >= 0 ? g_.values[size_t(n.inputs[2])].name : "";
    const size_t at = w.rfind("weight_ih_l");
    if (at == std::string::npos || (at > 0 && w[at - 1] != '.')) return freeze_node(n);
    const std::string path = at == 0 ? "" : w.substr(0, at - 1);
    auto it = modules_.find(path);
    auto* r = it == modules_.end() ? nullptr : dynamic_cast<nn::RNNBase*>(it->second);
    const bool lstm = n.op == "lstm";
    const int64_t D = r && r->bidirectional ? 2 : 1, per = lstm ? 5 : 4;
    if (!r || (r->type_name() == "LSTM") != lstm || n.inputs.size() != size_t(2 + D * per) ||
        n.outputs.size() != size_t(lstm ? 3 : 2))
      return freeze_node(n);
    int64_t layer = -1;
    for (int64_t l = 0; l < r->num_layers; ++l)
      if (w == (path.empty() ? "" : path + ".") + "weight_ih_l" + std::to_string(l)) layer = l;
    if (layer < 0) return freeze_node(n);
    const int64_t H = r->hidden_size, P = r->proj_size > 0 ? r->proj_size : H;
    const int64_t in_size = layer == 0 ? r->input_size : D * P;
    const int32_t x = n.inputs[0], y = n.outputs[0], h = n.outputs[1];
    const Ref rx = ref(x);
    const int32_t in_axis = axis(path, Role::rnn_in, in_size, 1, layer);
    if (rx.space >= 0 && rx.dim == 2 && rx.block == 1 && shape(x).size() == 3 && spaces_[size_t(rx.space)].size == in_size)
      tie(rx.space, in_axis);
    else {
      freeze(in_axis);
      freeze(rx);
    }
    Ref rh, rc;
    rh.dim = rc.dim = 2;
    for (int64_t d = 0; d < D; ++d) {
      const int32_t u = axis(path, Role::rnn_unit, H, 1, layer * D + d);
      if (u >= 0) axes_[size_t(spaces_[size_t(u)].axis)].min_keep = r->proj_size + 1;
      rc.rows.push_back(u);
      rh.rows.push_back(r->proj_size > 0 ? new_space(P) : u);
    }
    if (r->proj_size > 0) {  // h and y are projections: the cell units stay inside the layer
      freeze(rh);
      alias(y, Ref{new_space(D * P), 1, 2, {}});
      freeze(ref(y));
    } else {
      const int32_t ys = new_space(D * H);
      for (int64_t d = 0; d < D; ++d) tie(rh.rows[size_t(d)], ys, d * H);
      alias(y, Ref{ys, 1, 2, {}});
    }
    alias(h, rh);
    if (lstm) alias(n.outputs[2], rc);
  }

  ChannelGroups collect() {
    ChannelGroups out;
    out.axes = axes_;
    std::unordered_map<int64_t, int32_t> class_of;  // element root -> class
    for (size_t s = 0; s < spaces_.size(); ++s) {
      const Space& sp = spaces_[s];
      if (sp.axis < 0) continue;
      for (int64_t i = 0; i < sp.size; ++i) {
        const int64_t r = find(sp.base + i);
        auto [it, added] = class_of.emplace(r, int32_t(out.classes.size()));
        if (added) {
          out.classes.emplace_back();
          out.classes.back().frozen = frozen_[size_t(r)] != 0;
        }
        out.classes[size_t(it->second)].members.push_back({sp.axis, i});
      }
    }
    // Hidden units of two layer-directions tied together (their outputs added, say) would have
    // to leave both layers at once, which the equal-width rule of a recurrent module (every
    // layer-direction keeps hidden_size units) cannot balance: such classes stay.
    for (auto& c : out.classes) {
      int units = 0;
      for (const auto& m : c.members) units += axes_[size_t(m.first)].role == Role::rnn_unit;
      if (units > 1) c.frozen = true;
    }
    // Groups: classes whose first member's space shares a space-union root.
    std::map<int32_t, size_t> group_of;
    std::vector<ChannelGroup> groups;
    std::vector<int64_t> frozen_count;
    for (size_t c = 0; c < out.classes.size(); ++c) {
      const auto& first = out.classes[c].members.front();
      const LayerAxis& a = axes_[size_t(first.first)];
      const int32_t root = sfind(axis_space_.at({a.module, a.role, a.index}));
      auto [it, added] = group_of.emplace(root, groups.size());
      if (added) {
        const std::string layer = a.role == Role::rnn_unit ? ".l" + std::to_string(a.index) : "";
        groups.push_back({a.module + layer + "." + role_name(a.role), {}, 0});
      }
      ChannelGroup& g = groups[it->second];
      if (out.classes[c].frozen)
        ++g.frozen_classes;
      else
        g.classes.push_back(int32_t(c));
    }
    for (auto& g : groups)
      if (!g.classes.empty()) out.groups.push_back(std::move(g));
    return out;
  }
};

}  // namespace

ChannelGroups analyze_channels(nn::Module& model, const Tensor& example) {
  const runtime::Graph g = compile::capture_graph(model, example);
  return Analyzer(model, g).run();
}

}  // namespace finch::compress
