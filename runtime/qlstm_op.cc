// The runtime's static int8 LSTM (qlstm, ops.md) and GRU (qgru: the same without k_cell): the
// cell of kernels/qs8_lstm.h (qs8_gru.h) rebuilt from the node's values — x's and the output's
// int8 quantization, the per-row weight scales, the int32 biases, k_cell, and for a projected
// LSTM w_hr with m's quantization (m_scale, m_zero_point) — with the multipliers
// derived from the scales as qlstm_calibrate (qgru_calibrate) derives them, then checked by
// check_qlstm_cell (check_qgru_cell: one sentence for a hostile file). The plain fn runs the
// scalar reference (the specification), the prepared kernel kernels::QLstm / QGru (equal bit for
// bit).
#include <memory>
#include <string>
#include <vector>

#include "framework/error.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"
#include "ops/op_attrs.h"
#include "ops/op_attrs_rnn.h"
#include "runtime/op_table.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;
namespace qk = quant::kernels;

qk::QAct act_of(const Node& n, const Graph& g, int32_t v, const char* what) {
  const Value& x = g.values[size_t(v)];
  if (x.dtype != DType::i8 || !x.quant || x.quant->scale.size() != 1 || x.quant->zero_point.size() != 1)
    fail(node_where(n), ": expected the ", what, " '", x.name, "' as i8 codes with one scale and zero point");
  return {x.quant->scale[0], x.quant->zero_point[0]};
}

qk::QMatrix matrix_of(const Node& n, const Graph& g, const std::vector<Tensor>& in, size_t wi, size_t bi, float s_in) {
  const Tensor w = in[wi].contiguous();
  const Value& wv = g.values[size_t(n.inputs[wi])];
  qk::QMatrix m;
  m.rows = w.size(0), m.cols = w.size(1);
  m.w = w.to_vector<int8_t>();
  if (!wv.quant || int64_t(wv.quant->scale.size()) != m.rows || wv.quant->axis != 0)
    fail(node_where(n), ": expected weight '", wv.name, "' with one scale per row (", m.rows, " rows, axis 0)");
  m.s_w = wv.quant->scale;
  if (bi < in.size() && in[bi].defined()) m.bias = in[bi].contiguous().to_vector<int32_t>();
  m.m = qk::gate_multipliers(s_in, m.s_w);
  return m;
}

// One qlstm/qgru node as read once: the cell and the direction attributes.
template <class Cell>
struct QRnnNode {
  Cell cell;
  bool batch_first = false, reverse = false;
};
using QLstmNode = QRnnNode<qk::QLstmCell>;
using QGruNode = QRnnNode<qk::QGruCell>;  // qgru: no k_cell, 3H gate rows

// The reverse direction: the forward kernel on each sample's steps reversed (kernels::reverse_steps).
Tensor reversed(const Tensor& codes, const int64_t* lengths) {
  Tensor out = empty(codes.shape(), DType::i8);
  qk::reverse_steps(codes.size(0), codes.size(1), codes.size(2), codes.data<int8_t>(), lengths, out.data<int8_t>());
  return out;
}

// What only one of the cells has: qlstm's k_cell (read first, as it always was).
void read_cell_attrs(const Node& n, const std::string& where, qk::QLstmCell& c) {
  c.k_cell = int(ops::read_int(n.attrs, ops::attr::k_cell, where));
  c.P = 0;
}
void read_cell_attrs(const Node&, const std::string&, qk::QGruCell&) {}
// qlstm's projection (input 6, w_hr [P, H] with one scale per row; m's int8 quantization in the
// attributes): the multipliers s_m·s_w[p]/s_h as qlstm_calibrate derives them, and o·tanh(c')
// requantized to m's codes instead of h's.
void read_projection(const Node& n, const Graph& g, const std::vector<Tensor>& in, const std::string& where,
                     qk::QLstmCell& c) {
  c.H = in[2].size(0) / 4;
  if (in.size() <= 6 || !in[6].defined()) return;
  if (!n.attrs.contains(ops::attr::m_scale.name) || !n.attrs.contains(ops::attr::m_zero_point.name))
    fail(where, ": expected the attributes m_scale and m_zero_point with the projection w_hr");
  const double ms = ops::read_number(n.attrs, ops::attr::m_scale, where);
  if (!(ms > 0) || float(ms) != ms) fail(where, ": expected m_scale as a positive f32, found ", ms);
  c.m = {float(ms), int32_t(ops::read_int(n.attrs, ops::attr::m_zero_point, where))};
  c.proj = matrix_of(n, g, in, 6, in.size(), c.m.s);
  c.P = c.proj.rows;
  c.proj.m = quant::quantize_multipliers(quant::requant_multipliers(c.m.s, c.proj.s_w, c.h.s));
  c.m_out = qk::q30_out_multiplier(c.m.s);
}
void read_projection(const Node&, const Graph&, const std::vector<Tensor>&, const std::string&, qk::QGruCell& c) {
  c.H = c.hh.cols;
}
void check_cell(const qk::QLstmCell& c) { qk::check_qlstm_cell(c); }
void check_cell(const qk::QGruCell& c) { qk::check_qgru_cell(c); }

template <class Cell>
QRnnNode<Cell> build(const Node& n, const Graph& g, const std::vector<Tensor>& in) {
  QRnnNode<Cell> r;
  const std::string where = node_where(n);
  r.batch_first = ops::read_bool(n.attrs, ops::attr::batch_first, where, false);
  r.reverse = ops::read_bool(n.attrs, ops::attr::reverse, where, false);
  Cell& c = r.cell;
  read_cell_attrs(n, where, c);
  c.x = act_of(n, g, n.inputs[0], "input");
  c.h = act_of(n, g, n.outputs[0], "output");
  const qk::QAct hn = act_of(n, g, n.outputs[1], "final state");
  if (hn.s != c.h.s || hn.z != c.h.z) fail(where, ": expected the output and the final state quantized alike (they are one h)");
  c.IN = in[2].size(1);
  c.ih = matrix_of(n, g, in, 2, 4, c.x.s);
  c.hh = matrix_of(n, g, in, 3, 5, c.h.s);
  if (!(c.h.s > 0)) fail(where, ": expected a positive output scale, found ", c.h.s);
  c.m_out = qk::q30_out_multiplier(c.h.s);
  read_projection(n, g, in, where, c);
  try {
    check_cell(c);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  return r;
}

// The sequence around the cell: [T, B, IN] time-major (batch_first transposed), the lengths
// checked, a reverse direction run on each sample's steps reversed; `step(T, B, x, lengths, h, y)`
// runs the kernel with h starting at the output zero point.
template <class Cell, class Step>
Outs run_sequence(const char* op, const QRnnNode<Cell>& r, const std::vector<Tensor>& in, const Step& step) {
  const Tensor x = (r.batch_first ? in[0].transpose(0, 1) : in[0]).contiguous();
  const int64_t T = x.size(0), B = x.size(1), H = r.cell.hh.cols;  // h's size (P for a projected LSTM)
  std::vector<int64_t> len;
  if (in.size() > 1 && in[1].defined()) {
    len = in[1].contiguous().to_vector<int64_t>();
    for (size_t b = 0; b < len.size(); ++b)
      if (len[b] < 1 || len[b] > T) fail(op, ": expected every length in 1..", T, ", found length ", len[b], " for sample ", b);
  }
  Tensor y = empty({T, B, H}, DType::i8), h = full({1, B, H}, double(r.cell.h.z), DType::i8);
  const int64_t* lp = len.empty() ? nullptr : len.data();
  const Tensor xs = r.reverse ? reversed(x, lp) : x;
  step(T, B, xs.data<int8_t>(), lp, h.data<int8_t>(), y.data<int8_t>());
  if (r.reverse) y = reversed(y, lp);
  if (r.batch_first) y = y.transpose(0, 1).contiguous();
  return {y, h};
}

template <bool Fast>
Outs run_q(const QLstmNode& r, const qk::QLstm* op, const std::vector<Tensor>& in) {
  auto step = [&](int64_t T, int64_t B, const int8_t* x, const int64_t* lp, int8_t* h, int8_t* y) {
    std::vector<int16_t> c(size_t(B * r.cell.H), 0);
    if (Fast) op->run(T, B, x, lp, h, c.data(), y);
    else qk::qlstm_sequence_reference(r.cell, T, B, x, lp, h, c.data(), y);
  };
  return run_sequence("qlstm", r, in, step);
}

Outs qlstm(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  return run_q<false>(build<qk::QLstmCell>(n, g, in), nullptr, in);
}

template <bool Fast>
Outs run_gru(const QGruNode& r, const qk::QGru* op, const std::vector<Tensor>& in) {
  auto step = [&](int64_t T, int64_t B, const int8_t* x, const int64_t* lp, int8_t* h, int8_t* y) {
    if (Fast) op->run(T, B, x, lp, h, y);
    else qk::qgru_sequence_reference(r.cell, T, B, x, lp, h, y);
  };
  return run_sequence("qgru", r, in, step);
}

Outs qgru(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  return run_gru<false>(build<qk::QGruCell>(n, g, in), nullptr, in);
}

template <class F>
class FnKernel final : public NodeKernel {
 public:
  explicit FnKernel(F f) : f_(std::move(f)) {}
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override { return f_(in); }

 private:
  F f_;
};

// The prepared kernel when every weight and bias is a constant (nullptr otherwise: the plain fn).
template <class Op, class Cell>
std::unique_ptr<NodeKernel> prepare_rnn(const Node& n, const Graph& g,
                                        Outs (*run)(const QRnnNode<Cell>&, const Op*, const std::vector<Tensor>&)) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const int32_t v = n.inputs[i];
    if (i >= 2 && v >= 0 && !g.values[size_t(v)].is_constant()) return nullptr;
    in.push_back(i >= 2 && v >= 0 ? g.values[size_t(v)].data : Tensor());
  }
  auto r = std::make_shared<const QRnnNode<Cell>>(build<Cell>(n, g, in));
  auto op = std::make_shared<const Op>(r->cell);
  auto f = [r, op, run](const std::vector<Tensor>& x) { return run(*r, op.get(), x); };
  return std::make_unique<FnKernel<decltype(f)>>(f);
}

std::unique_ptr<NodeKernel> prepare_qlstm(const Node& n, const Graph& g) {
  return prepare_rnn<qk::QLstm, qk::QLstmCell>(n, g, &run_q<true>);
}
std::unique_ptr<NodeKernel> prepare_qgru(const Node& n, const Graph& g) {
  return prepare_rnn<qk::QGru, qk::QGruCell>(n, g, &run_gru<true>);
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& qlstm_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {{"qlstm", {qlstm, prepare_qlstm}},
                                                                {"qgru", {qgru, prepare_qgru}}};
  return t;
}

}  // namespace finch::runtime
