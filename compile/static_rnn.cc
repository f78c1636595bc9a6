// quantize_static_lstm / quantize_static_gru (static_rnn.h): calibration on the float program,
// then the rewrite, one qlstm / qgru node per direction (the reverse one with `reverse`).
#include "compile/static_rnn.h"

#include <algorithm>
#include <cmath>

#include "compile/passes.h"
#include "framework/error.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"
#include "ops/rnn_seq.h"
#include "runtime/executor.h"

namespace finch::compile {

namespace {

using runtime::Graph;
using runtime::Node;
using runtime::QuantInfo;
using runtime::Value;
namespace qk = quant::kernels;

int32_t input(const Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : -1; }

bool constant_f32(const Graph& g, int32_t v) {
  return v >= 0 && g.values[size_t(v)].is_constant() && g.values[size_t(v)].dtype == DType::f32;
}

std::vector<float> floats(const Graph& g, int32_t v) {
  return v < 0 ? std::vector<float>() : g.values[size_t(v)].data.contiguous().to_vector<float>();
}

// The op's layout: gate rows per H and where direction d's w_ih, w_hh, b_ih, b_hh start
// (lstm: x, lengths, then w_ih, w_hh, b_ih, b_hh, w_hr per direction; gru: no w_hr).
struct Layout {
  int64_t gates;
  size_t per_dir;
  size_t at(int64_t d) const { return 2 + per_dir * size_t(d); }
};
Layout layout_of(const Node& n) { return n.op == "lstm" ? Layout{4, 5} : Layout{3, 4}; }

int64_t directions(const Node& n) { return input(n, layout_of(n).at(1)) >= 0 ? 2 : 1; }

// Constant weights in every direction (both biases or neither; an LSTM's projection w_hr
// constant too), c_n unread.
bool eligible(const Graph& g, const Node& n, const char* op) {
  if (n.op != op) return false;
  const Layout L = layout_of(n);
  const bool lstm = L.gates == 4;
  for (int64_t d = 0; d < directions(n); ++d) {
    const size_t o = L.at(d);
    if (!constant_f32(g, input(n, o)) || !constant_f32(g, input(n, o + 1))) return false;
    if (lstm && input(n, o + 4) >= 0 && !constant_f32(g, input(n, o + 4))) return false;  // w_hr
    if ((input(n, o + 2) >= 0) != (input(n, o + 3) >= 0)) return false;
    if (input(n, o + 2) >= 0 && (!constant_f32(g, input(n, o + 2)) || !constant_f32(g, input(n, o + 3)))) return false;
  }
  if (n.outputs.size() != (lstm ? 3u : 2u)) return false;
  if (!lstm) return true;
  for (const Node& m : g.nodes)
    for (int32_t v : m.inputs)
      if (v == n.outputs[2]) return false;
  for (int32_t v : g.outputs)
    if (v == n.outputs[2]) return false;
  return true;
}

struct Range {
  float lo = 0, hi = 0, absmax = 0;
  void add(const Tensor& t) {
    for (float v : t.contiguous().to_vector<float>()) lo = std::min(lo, v), hi = std::max(hi, v), absmax = std::max(absmax, std::fabs(v));
  }
};

int32_t add_value(Graph& g, std::string name, Shape shape, DType dt, std::optional<QuantInfo> q, Tensor data = Tensor()) {
  Value v;
  v.name = std::move(name);
  v.shape = std::move(shape);
  v.dtype = dt;
  v.quant = std::move(q);
  v.data = std::move(data);
  return g.add_value(std::move(v));
}

QuantInfo per_tensor(const qk::QAct& a) {
  QuantInfo q;
  q.scale = {a.s};
  q.zero_point = {a.z};
  return q;
}

// One direction's deployed cell, whichever the op.
struct DirCell {
  qk::QAct x, h;
  qk::QMatrix ih, hh;
  nlohmann::json attrs;  // k_cell for qlstm (and m_scale, m_zero_point with a projection)
  qk::QMatrix proj;      // a projected LSTM's w_hr (rows 0: none)
};

// Per direction d: quantize → q<op> (reverse for d = 1) → dequantize. One direction writes the
// node's y and h_n values; two write their own, joined by cat (y on the feature axis, h_n on 0).
void emit(Graph& g, const Node& n, const std::vector<DirCell>& cells, std::vector<Node>& out) {
  const std::string base = g.values[size_t(n.outputs[0])].name;  // unique (layers share node names)
  const std::string qop = n.op == "lstm" ? "qlstm" : "qgru";
  const auto D = int64_t(cells.size());
  const Shape ys = g.values[size_t(n.outputs[0])].shape, hs = g.values[size_t(n.outputs[1])].shape;
  std::vector<int32_t> y_parts, h_parts;
  for (int64_t d = 0; d < D; ++d) {
    const DirCell& c = cells[size_t(d)];
    const std::string b = D == 1 ? base : base + (d ? ".reverse" : ".forward");
    auto weight = [&](const qk::QMatrix& m, const std::string& name) {
      QuantInfo q;
      q.scale = m.s_w;
      q.zero_point.assign(m.s_w.size(), 0);
      q.axis = 0, q.qmin = -127, q.qmax = 127;
      return add_value(g, name, {m.rows, m.cols}, DType::i8, q, from_vector(m.w, {m.rows, m.cols}));
    };
    auto bias = [&](const qk::QMatrix& m, const std::string& name) {
      return m.bias.empty() ? -1 : add_value(g, name, {m.rows}, DType::i32, std::nullopt, from_vector(m.bias, {m.rows}));
    };
    Shape y1 = ys, h1 = hs;
    if (!y1.empty()) y1.back() = c.hh.cols;
    if (!h1.empty()) h1[0] = 1;
    const int32_t xq = add_value(g, b + ".x_q", g.values[size_t(n.inputs[0])].shape, DType::i8, per_tensor(c.x));
    const int32_t yq = add_value(g, b + ".y_q", D == 1 ? ys : y1, DType::i8, per_tensor(c.h));
    const int32_t hq = add_value(g, b + ".h_q", D == 1 ? hs : h1, DType::i8, per_tensor(c.h));
    const int32_t w_ih = weight(c.ih, b + ".w_ih_q"), w_hh = weight(c.hh, b + ".w_hh_q");
    const int32_t b_ih = bias(c.ih, b + ".b_ih_q"), b_hh = bias(c.hh, b + ".b_hh_q");
    const int32_t w_hr = c.proj.rows > 0 ? weight(c.proj, b + ".w_hr_q") : -1;
    nlohmann::json attrs = c.attrs;
    attrs["batch_first"] = n.attrs.value("batch_first", false);
    if (d == 1) attrs["reverse"] = true;
    const int32_t y = D == 1 ? n.outputs[0] : add_value(g, b + ".y", y1, DType::f32, std::nullopt);
    const int32_t h = D == 1 ? n.outputs[1] : add_value(g, b + ".h", h1, DType::f32, std::nullopt);
    out.push_back({"quantize", b + ".quantize", {n.inputs[0]}, {xq}, nlohmann::json::object()});
    std::vector<int32_t> ins = {xq, input(n, 1), w_ih, w_hh, b_ih, b_hh};
    if (w_hr >= 0) ins.push_back(w_hr);
    out.push_back({qop, D == 1 ? n.name : n.name + (d ? ".reverse" : ".forward"), ins, {yq, hq}, attrs});
    out.push_back({"dequantize", b + ".dequantize_y", {yq}, {y}, nlohmann::json::object()});
    out.push_back({"dequantize", b + ".dequantize_h", {hq}, {h}, nlohmann::json::object()});
    y_parts.push_back(y), h_parts.push_back(h);
  }
  if (D == 2) {
    out.push_back({"cat", base + ".cat_y", y_parts, {n.outputs[0]}, {{"dim", int64_t(ys.size()) - 1}}});
    out.push_back({"cat", base + ".cat_h", h_parts, {n.outputs[1]}, {{"dim", 0}}});
  }
}

using Todo = std::vector<std::pair<size_t, std::vector<DirCell>>>;

int apply(Graph& g, Todo& todo) {
  if (todo.empty()) return 0;
  std::vector<std::vector<Node>> replacement(g.nodes.size());
  for (auto& [i, cells] : todo) emit(g, g.nodes[i], cells, replacement[i]);
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (replacement[i].empty()) nodes.push_back(std::move(g.nodes[i]));
    else for (Node& m : replacement[i]) nodes.push_back(std::move(m));
  }
  g.nodes = std::move(nodes);
  remove_dead(g);
  return int(todo.size());
}

DirCell lstm_cell(const Graph& g, const Node& n, int64_t d, const qk::QLstmRanges& r) {
  const size_t o = layout_of(n).at(d);
  const Value& wih = g.values[size_t(n.inputs[o])];
  const int64_t P = input(n, o + 4) >= 0 ? g.values[size_t(n.inputs[o + 4])].shape[0] : 0;
  const qk::QLstmCell c = qk::qlstm_calibrate(wih.shape[1], wih.shape[0] / 4, P, floats(g, n.inputs[o]),
                                              floats(g, n.inputs[o + 1]), floats(g, input(n, o + 2)),
                                              floats(g, input(n, o + 3)), floats(g, input(n, o + 4)), r);
  DirCell dc{c.x, c.h, c.ih, c.hh, {{"k_cell", c.k_cell}}, {}};
  if (P > 0) {
    dc.proj = c.proj;
    dc.attrs["m_scale"] = double(c.m.s);
    dc.attrs["m_zero_point"] = c.m.z;
  }
  return dc;
}

DirCell gru_cell(const Graph& g, const Node& n, int64_t d, const qk::QGruRanges& r) {
  const size_t o = layout_of(n).at(d);
  const Value& wih = g.values[size_t(n.inputs[o])];
  const qk::QGruCell c = qk::qgru_calibrate(wih.shape[1], wih.shape[0] / 3, floats(g, n.inputs[o]),
                                            floats(g, n.inputs[o + 1]), floats(g, input(n, o + 2)),
                                            floats(g, input(n, o + 3)), r);
  return {c.x, c.h, c.ih, c.hh, nlohmann::json::object(), {}};
}

// The float program's ranges per eligible node and direction: x, h (direction d's half of y and
// row d of h_n) and, for the LSTM, max |c| over every step of that direction's float cell and
// (projected) the range of its m = o·tanh(c') before W_hr.
struct CellRange {
  Range c, m;
};
std::vector<std::vector<Range>> calibrate(const Graph& g, const std::vector<size_t>& nodes,
                                          const std::vector<std::vector<Tensor>>& calibration, const char* op,
                                          std::vector<std::vector<CellRange>>* cell_ranges) {
  if (calibration.empty()) fail("quantize_static_", op, ": expected at least one calibration input set");
  std::vector<std::vector<Range>> xr(nodes.size()), hr(nodes.size());
  for (size_t j = 0; j < nodes.size(); ++j) {
    const int64_t D = directions(g.nodes[nodes[j]]);
    xr[j].resize(size_t(D)), hr[j].resize(size_t(D));
    if (cell_ranges) (*cell_ranges)[j].resize(size_t(D));
  }
  runtime::Program p(g, "calibration");
  for (const std::vector<Tensor>& ins : calibration) {
    const std::vector<Tensor> all = p.run_all(ins);
    for (size_t j = 0; j < nodes.size(); ++j) {
      const Node& n = g.nodes[nodes[j]];
      const bool bf = n.attrs.value("batch_first", false);
      const Tensor x = all[size_t(n.inputs[0])], y = all[size_t(n.outputs[0])], h = all[size_t(n.outputs[1])];
      const Tensor lengths = input(n, 1) >= 0 ? all[size_t(n.inputs[1])] : Tensor();
      const int64_t D = directions(n), H = h.size(-1);
      for (int64_t d = 0; d < D; ++d) {
        xr[j][size_t(d)].add(x);
        hr[j][size_t(d)].add(y.slice(y.dim() - 1, d * H, (d + 1) * H));
        hr[j][size_t(d)].add(h.slice(0, d, d + 1));
        if (!cell_ranges) continue;
        const size_t o = layout_of(n).at(d);
        const ops::RnnWeights w{g.values[size_t(n.inputs[o])].data, g.values[size_t(n.inputs[o + 1])].data,
                                input(n, o + 2) >= 0 ? g.values[size_t(n.inputs[o + 2])].data : Tensor(),
                                input(n, o + 3) >= 0 ? g.values[size_t(n.inputs[o + 3])].data : Tensor(),
                                input(n, o + 4) >= 0 ? g.values[size_t(n.inputs[o + 4])].data : Tensor()};
        const ops::RnnSeqOutput r =
            ops::lstm_seq((bf ? x.transpose(0, 1) : x).contiguous(), Tensor(), Tensor(), w, lengths, d == 1);
        CellRange& cr = (*cell_ranges)[j][size_t(d)];
        cr.c.add(r.saved.c_prev), cr.c.add(r.c_n);
        if (w.w_hr.defined()) cr.m.add(r.saved.h_raw);
      }
    }
  }
  for (size_t j = 0; j < nodes.size(); ++j) xr[j].insert(xr[j].end(), hr[j].begin(), hr[j].end());
  return xr;  // per node: D x ranges, then D h ranges
}

std::vector<size_t> eligible_nodes(const Graph& g, const char* op) {
  std::vector<size_t> v;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (eligible(g, g.nodes[i], op)) v.push_back(i);
  return v;
}

}  // namespace

int quantize_static_lstm(Graph& g, const std::vector<std::vector<Tensor>>& calibration) {
  const std::vector<size_t> nodes = eligible_nodes(g, "lstm");
  if (nodes.empty()) return 0;
  std::vector<std::vector<CellRange>> cr(nodes.size());
  const std::vector<std::vector<Range>> r = calibrate(g, nodes, calibration, "lstm", &cr);
  Todo todo;
  for (size_t j = 0; j < nodes.size(); ++j) {
    const auto D = int64_t(cr[j].size());
    std::vector<DirCell> cells;
    for (int64_t d = 0; d < D; ++d) {
      const Range &x = r[j][size_t(d)], &h = r[j][size_t(D + d)];
      const CellRange& c = cr[j][size_t(d)];
      cells.push_back(lstm_cell(g, g.nodes[nodes[j]], d, {x.lo, x.hi, h.lo, h.hi, c.c.absmax, c.m.lo, c.m.hi}));
    }
    todo.emplace_back(nodes[j], std::move(cells));
  }
  return apply(g, todo);
}

int quantize_static_lstm(Graph& g, const LstmRangesOf& ranges_of) {
  Todo todo;
  for (size_t i : eligible_nodes(g, "lstm")) {
    std::vector<DirCell> cells;
    for (int64_t d = 0; d < directions(g.nodes[i]); ++d)
      if (const std::optional<qk::QLstmRanges> r = ranges_of(g, g.nodes[i], d)) cells.push_back(lstm_cell(g, g.nodes[i], d, *r));
    if (int64_t(cells.size()) == directions(g.nodes[i])) todo.emplace_back(i, std::move(cells));
  }
  return apply(g, todo);
}

int quantize_static_gru(Graph& g, const std::vector<std::vector<Tensor>>& calibration) {
  const std::vector<size_t> nodes = eligible_nodes(g, "gru");
  if (nodes.empty()) return 0;
  const std::vector<std::vector<Range>> r = calibrate(g, nodes, calibration, "gru", nullptr);
  Todo todo;
  for (size_t j = 0; j < nodes.size(); ++j) {
    const int64_t D = directions(g.nodes[nodes[j]]);
    std::vector<DirCell> cells;
    for (int64_t d = 0; d < D; ++d) {
      const Range &x = r[j][size_t(d)], &h = r[j][size_t(D + d)];
      cells.push_back(gru_cell(g, g.nodes[nodes[j]], d, {x.lo, x.hi, h.lo, h.hi}));
    }
    todo.emplace_back(nodes[j], std::move(cells));
  }
  return apply(g, todo);
}

int quantize_static_gru(Graph& g, const GruRangesOf& ranges_of) {
  Todo todo;
  for (size_t i : eligible_nodes(g, "gru")) {
    std::vector<DirCell> cells;
    for (int64_t d = 0; d < directions(g.nodes[i]); ++d)
      if (const std::optional<qk::QGruRanges> r = ranges_of(g, g.nodes[i], d)) cells.push_back(gru_cell(g, g.nodes[i], d, *r));
    if (int64_t(cells.size()) == directions(g.nodes[i])) todo.emplace_back(i, std::move(cells));
  }
  return apply(g, todo);
}

}  // namespace finch::compile
