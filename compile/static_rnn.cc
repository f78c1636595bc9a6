// quantize_static_lstm (static_rnn.h): calibration on the float program, then the rewrite.
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

// One direction, no projection, constant weights (both biases or neither), c_n unread.
bool eligible(const Graph& g, const Node& n) {
  if (n.op != "lstm" || input(n, 6) >= 0 || input(n, 7) >= 0) return false;
  if (!constant_f32(g, input(n, 2)) || !constant_f32(g, input(n, 3))) return false;
  if ((input(n, 4) >= 0) != (input(n, 5) >= 0)) return false;
  if (input(n, 4) >= 0 && (!constant_f32(g, input(n, 4)) || !constant_f32(g, input(n, 5)))) return false;
  if (n.outputs.size() != 3) return false;
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

int rewrite(Graph& g, const std::vector<size_t>& todo, const std::vector<qk::QLstmRanges>& ranges);

QuantInfo per_tensor(const qk::QAct& a) {
  QuantInfo q;
  q.scale = {a.s};
  q.zero_point = {a.z};
  return q;
}

}  // namespace

int quantize_static_lstm(Graph& g, const std::vector<std::vector<Tensor>>& calibration) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (eligible(g, g.nodes[i])) todo.push_back(i);
  if (todo.empty()) return 0;
  if (calibration.empty()) fail("quantize_static_lstm: expected at least one calibration input set");
  std::vector<Range> xr(todo.size()), hr(todo.size()), cr(todo.size());
  {
    runtime::Program p(g, "calibration");
    for (const std::vector<Tensor>& ins : calibration) {
      const std::vector<Tensor> all = p.run_all(ins);
      for (size_t j = 0; j < todo.size(); ++j) {
        const Node& n = g.nodes[todo[j]];
        const bool bf = n.attrs.value("batch_first", false);
        const Tensor x = all[size_t(n.inputs[0])];
        xr[j].add(x);
        hr[j].add(all[size_t(n.outputs[0])]);
        hr[j].add(all[size_t(n.outputs[1])]);
        // max |c| over every step: the float layer's saved cell states.
        const ops::RnnWeights w{g.values[size_t(n.inputs[2])].data, g.values[size_t(n.inputs[3])].data,
                                input(n, 4) >= 0 ? g.values[size_t(n.inputs[4])].data : Tensor(),
                                input(n, 5) >= 0 ? g.values[size_t(n.inputs[5])].data : Tensor(), Tensor()};
        const Tensor lengths = input(n, 1) >= 0 ? all[size_t(n.inputs[1])] : Tensor();
        const ops::RnnSeqOutput r =
            ops::lstm_seq((bf ? x.transpose(0, 1) : x).contiguous(), Tensor(), Tensor(), w, lengths, false);
        cr[j].add(r.saved.c_prev);
        cr[j].add(r.c_n);
      }
    }
  }
  std::vector<qk::QLstmRanges> ranges(todo.size());
  for (size_t j = 0; j < todo.size(); ++j) {
    qk::QLstmRanges& rg = ranges[j];
    rg.x_lo = xr[j].lo, rg.x_hi = xr[j].hi, rg.h_lo = hr[j].lo, rg.h_hi = hr[j].hi, rg.c_absmax = cr[j].absmax;
  }
  return rewrite(g, todo, ranges);
}

int quantize_static_lstm(Graph& g, const LstmRangesOf& ranges_of) {
  std::vector<size_t> todo;
  std::vector<qk::QLstmRanges> ranges;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (eligible(g, g.nodes[i]))
      if (const std::optional<qk::QLstmRanges> r = ranges_of(g, g.nodes[i])) todo.push_back(i), ranges.push_back(*r);
  return todo.empty() ? 0 : rewrite(g, todo, ranges);
}

namespace {

// Each todo node (ranges[j] its observed ranges) becomes quantize → qlstm → dequantize (y, h_n).
int rewrite(Graph& g, const std::vector<size_t>& todo, const std::vector<qk::QLstmRanges>& ranges) {
  std::vector<std::vector<Node>> replacement(g.nodes.size());
  for (size_t j = 0; j < todo.size(); ++j) {
    const Node n = g.nodes[todo[j]];
    const Value& wih = g.values[size_t(n.inputs[2])];
    const int64_t G = wih.shape[0], IN = wih.shape[1], H = G / 4;
    const qk::QLstmRanges& rg = ranges[j];
    const qk::QLstmCell cell = qk::qlstm_calibrate(IN, H, 0, floats(g, n.inputs[2]), floats(g, n.inputs[3]),
                                                   floats(g, input(n, 4)), floats(g, input(n, 5)), {}, rg);
    // Value names must be unique: the layer's output value name is (several layers share a node name).
    const std::string base = g.values[size_t(n.outputs[0])].name;
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
    const Value& xv = g.values[size_t(n.inputs[0])];
    const int32_t xq = add_value(g, base + ".x_q", xv.shape, DType::i8, per_tensor(cell.x));
    const int32_t yq = add_value(g, base + ".y_q", g.values[size_t(n.outputs[0])].shape, DType::i8, per_tensor(cell.h));
    const int32_t hq = add_value(g, base + ".h_q", g.values[size_t(n.outputs[1])].shape, DType::i8, per_tensor(cell.h));
    const int32_t w_ih = weight(cell.ih, base + ".w_ih_q"), w_hh = weight(cell.hh, base + ".w_hh_q");
    const int32_t b_ih = bias(cell.ih, base + ".b_ih_q"), b_hh = bias(cell.hh, base + ".b_hh_q");
    std::vector<Node>& out = replacement[todo[j]];
    out.push_back({"quantize", base + ".quantize", {n.inputs[0]}, {xq}, nlohmann::json::object()});
    out.push_back({"qlstm", n.name, {xq, input(n, 1), w_ih, w_hh, b_ih, b_hh}, {yq, hq},
                   {{"batch_first", n.attrs.value("batch_first", false)}, {"k_cell", cell.k_cell}}});
    out.push_back({"dequantize", base + ".dequantize_y", {yq}, {n.outputs[0]}, nlohmann::json::object()});
    out.push_back({"dequantize", base + ".dequantize_h", {hq}, {n.outputs[1]}, nlohmann::json::object()});
  }
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (replacement[i].empty()) nodes.push_back(std::move(g.nodes[i]));
    else for (Node& m : replacement[i]) nodes.push_back(std::move(m));
  }
  g.nodes = std::move(nodes);
  remove_dead(g);
  return int(todo.size());
}

}  // namespace

// ---------------------------------------------------------------- GRU

namespace {

// One direction, constant weights (both biases or neither).
bool eligible_gru(const Graph& g, const Node& n) {
  if (n.op != "gru" || input(n, 6) >= 0 || input(n, 7) >= 0) return false;
  if (!constant_f32(g, input(n, 2)) || !constant_f32(g, input(n, 3))) return false;
  if ((input(n, 4) >= 0) != (input(n, 5) >= 0)) return false;
  if (input(n, 4) >= 0 && (!constant_f32(g, input(n, 4)) || !constant_f32(g, input(n, 5)))) return false;
  return n.outputs.size() == 2;
}

// Each todo node becomes quantize → qgru → dequantize (y, h_n), calibrated by qgru_calibrate.
int rewrite_gru(Graph& g, const std::vector<size_t>& todo, const std::vector<qk::QGruRanges>& ranges) {
  std::vector<std::vector<Node>> replacement(g.nodes.size());
  for (size_t j = 0; j < todo.size(); ++j) {
    const Node n = g.nodes[todo[j]];
    const Value& wih = g.values[size_t(n.inputs[2])];
    const int64_t IN = wih.shape[1], H = wih.shape[0] / 3;
    const qk::QGruCell cell = qk::qgru_calibrate(IN, H, floats(g, n.inputs[2]), floats(g, n.inputs[3]),
                                                 floats(g, input(n, 4)), floats(g, input(n, 5)), ranges[j]);
    const std::string base = g.values[size_t(n.outputs[0])].name;
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
    const int32_t xq = add_value(g, base + ".x_q", g.values[size_t(n.inputs[0])].shape, DType::i8, per_tensor(cell.x));
    const int32_t yq = add_value(g, base + ".y_q", g.values[size_t(n.outputs[0])].shape, DType::i8, per_tensor(cell.h));
    const int32_t hq = add_value(g, base + ".h_q", g.values[size_t(n.outputs[1])].shape, DType::i8, per_tensor(cell.h));
    const int32_t w_ih = weight(cell.ih, base + ".w_ih_q"), w_hh = weight(cell.hh, base + ".w_hh_q");
    const int32_t b_ih = bias(cell.ih, base + ".b_ih_q"), b_hh = bias(cell.hh, base + ".b_hh_q");
    std::vector<Node>& out = replacement[todo[j]];
    out.push_back({"quantize", base + ".quantize", {n.inputs[0]}, {xq}, nlohmann::json::object()});
    out.push_back({"qgru", n.name, {xq, input(n, 1), w_ih, w_hh, b_ih, b_hh}, {yq, hq},
                   {{"batch_first", n.attrs.value("batch_first", false)}}});
    out.push_back({"dequantize", base + ".dequantize_y", {yq}, {n.outputs[0]}, nlohmann::json::object()});
    out.push_back({"dequantize", base + ".dequantize_h", {hq}, {n.outputs[1]}, nlohmann::json::object()});
  }
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (replacement[i].empty()) nodes.push_back(std::move(g.nodes[i]));
    else for (Node& m : replacement[i]) nodes.push_back(std::move(m));
  }
  g.nodes = std::move(nodes);
  remove_dead(g);
  return int(todo.size());
}

}  // namespace

int quantize_static_gru(Graph& g, const std::vector<std::vector<Tensor>>& calibration) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (eligible_gru(g, g.nodes[i])) todo.push_back(i);
  if (todo.empty()) return 0;
  if (calibration.empty()) fail("quantize_static_gru: expected at least one calibration input set");
  std::vector<Range> xr(todo.size()), hr(todo.size());
  {
    runtime::Program p(g, "calibration");
    for (const std::vector<Tensor>& ins : calibration) {
      const std::vector<Tensor> all = p.run_all(ins);
      for (size_t j = 0; j < todo.size(); ++j) {
        const Node& n = g.nodes[todo[j]];
        xr[j].add(all[size_t(n.inputs[0])]);
        hr[j].add(all[size_t(n.outputs[0])]);
        hr[j].add(all[size_t(n.outputs[1])]);
      }
    }
  }
  std::vector<qk::QGruRanges> ranges(todo.size());
  for (size_t j = 0; j < todo.size(); ++j) ranges[j] = {xr[j].lo, xr[j].hi, hr[j].lo, hr[j].hi};
  return rewrite_gru(g, todo, ranges);
}

int quantize_static_gru(Graph& g, const GruRangesOf& ranges_of) {
  std::vector<size_t> todo;
  std::vector<qk::QGruRanges> ranges;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (eligible_gru(g, g.nodes[i]))
      if (const std::optional<qk::QGruRanges> r = ranges_of(g, g.nodes[i])) todo.push_back(i), ranges.push_back(*r);
  return todo.empty() ? 0 : rewrite_gru(g, todo, ranges);
}

}  // namespace finch::compile
