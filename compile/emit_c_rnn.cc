// `finch emit-c` for the static int8 series programs (compile/emit_c.h): qlstm and qgru (one
// direction each; a bidirectional layer is two nodes joined by cat), and the shape ops around
// them: permute, cat, select, add_scalar on the lengths (reshape is emit_c.cc's copy).
//
// Each recurrent node's cell is rebuilt from the program's values exactly as the runtime's
// qlstm_op.cc builds it (the same kernels:: functions derive the multipliers from the stored
// scales) and checked by kernels::check_qlstm_cell / check_qgru_cell; the emitted tables are
// those numbers, and the sigmoid/tanh tables are kernels::q16_sigmoid_table()/q16_tanh_table().
#include <algorithm>
#include <string>
#include <vector>

#include "compile/emit_c_emitter.h"
#include "kernels/q16_act.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"
#include "kernels/requant.h"
#include "ops/op_attrs.h"
#include "ops/op_attrs_rnn.h"

namespace finch::compile::emit_c_detail {

namespace qk = quant::kernels;

namespace {

std::string num(int64_t v) { return std::to_string(v); }

}  // namespace

std::string Emitter::q16_tables() {
  if (sig_table_.empty()) {
    sig_table_ = name_ + "_q16_sigmoid", tanh_table_ = name_ + "_q16_tanh";
    for (int which = 0; which < 2; ++which) {
      const int16_t* t = which == 0 ? qk::q16_sigmoid_table() : qk::q16_tanh_table();
      consts_ << "/* kernels/q16_act.cc: " << (which == 0 ? "sigmoid" : "tanh")
              << " of each Q3.12 code as Q0.15, indexed by (uint16_t)q */\nstatic const int16_t "
              << (which == 0 ? sig_table_ : tanh_table_) << "[65536] = {";
      for (int i = 0; i < 65536; ++i) consts_ << (i % 24 == 0 ? "\n  " : " ") << t[i] << ",";
      consts_ << "\n};\n";
      const_bytes_ += 2 * 65536;
    }
  }
  return sig_table_ + ", " + tanh_table_;
}

namespace {

// One gate matrix as the runtime's matrix_of reads it: i8 codes, one scale per row (axis 0).
qk::QMatrix matrix(const Graph& g, const Node& n, size_t wi, size_t bi, float s_in, const std::string& what) {
  const Value& wv = g.values[size_t(n.inputs[wi])];
  qk::QMatrix m;
  if (!wv.is_constant() || wv.dtype != DType::i8 || wv.shape.size() != 2)
    fail(what, ": node '", n.name, "' (", n.op, ") reads its weight '", wv.name, "' computed at run time or not as I8 [rows, cols]; emit-c needs constant I8 weights");
  m.rows = wv.shape[0], m.cols = wv.shape[1];
  m.w = wv.data.contiguous().to_vector<int8_t>();
  if (!wv.quant || int64_t(wv.quant->scale.size()) != m.rows || wv.quant->axis != 0)
    fail(what, ": node '", n.name, "' (", n.op, ") expected weight '", wv.name, "' with one scale per row (", m.rows, " rows, axis 0)");
  m.s_w = wv.quant->scale;
  if (bi < n.inputs.size() && n.inputs[bi] >= 0) {
    const Value& bv = g.values[size_t(n.inputs[bi])];
    if (!bv.is_constant() || bv.dtype != DType::i32)
      fail(what, ": node '", n.name, "' (", n.op, ") reads its bias '", bv.name, "' computed at run time or not as I32");
    m.bias = bv.data.contiguous().to_vector<int32_t>();
  }
  m.m = qk::gate_multipliers(s_in, m.s_w);
  return m;
}

}  // namespace

// The x/lengths/y/h_n pointers and the cell's common fields; T and B from x's shape.
std::string Emitter::rnn_common(const Node& n, int64_t& T, int64_t& B) {
  if (n.outputs.size() != 2) refuse(n, "has " + num(int64_t(n.outputs.size())) + " outputs; expected y and h_n");
  const Shape& xs = val(n.inputs[0]).shape;
  if (xs.size() != 3) refuse(n, "reads a " + num(int64_t(xs.size())) + "-d input; expected [T, B, IN] or [B, T, IN]");
  const bool bf = ops::read_bool(n.attrs, ops::attr::batch_first, where(n), false);
  T = bf ? xs[1] : xs[0], B = bf ? xs[0] : xs[1];
  std::string lengths = "0";
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    if (val(n.inputs[1]).dtype != DType::i64 || val(n.inputs[1]).shape != Shape{B})
      refuse(n, "reads lengths that are not I64 [" + num(B) + "]");
    lengths = "(const int64_t*)" + ptr(n, n.inputs[1]);
  }
  return ptr(n, n.inputs[0]) + ", " + lengths + ", " + ptr(n, n.outputs[0]) + ", " + ptr(n, n.outputs[1]);
}

Emitter::GateRows Emitter::gate_rows(const Node& n, const qk::QMatrix& q, size_t wi, size_t bi, const std::string& tag) {
  std::vector<int64_t> m, s;
  for (const auto& f : q.m) m.push_back(f.multiplier), s.push_back(f.total_shift());
  return GateRows{constant_input(n, wi), bi < n.inputs.size() ? constant_input(n, bi, true) : "0",
                  ints(m, n.name + ": " + tag + " multipliers"), ints(s, n.name + ": " + tag + " total shifts")};
}

void Emitter::qlstm(const Node& n) {
  qk::QLstmCell c;
  const std::string& what = what_;
  const Act ax = act(n, n.inputs[0]), ah = act(n, n.outputs[0]), an = act(n, n.outputs[1]);
  if (ah.s != an.s || ah.z != an.z) refuse(n, "quantizes its output and final state differently (they are one h)");
  c.x = {ax.s, ax.z}, c.h = {ah.s, ah.z};
  c.k_cell = int(ops::read_int(n.attrs, ops::attr::k_cell, where(n)));
  c.ih = matrix(g_, n, 2, 4, c.x.s, what);
  c.hh = matrix(g_, n, 3, 5, c.h.s, what);
  c.IN = c.ih.cols, c.H = c.ih.rows / 4;
  c.m_out = qk::q30_out_multiplier(c.h.s);
  const bool proj = n.inputs.size() > 6 && n.inputs[6] >= 0;
  if (proj) {
    if (!n.attrs.contains(ops::attr::m_scale.name) || !n.attrs.contains(ops::attr::m_zero_point.name))
      refuse(n, "has the projection w_hr without the attributes m_scale and m_zero_point");
    const double ms = ops::read_number(n.attrs, ops::attr::m_scale, where(n));
    if (!(ms > 0) || float(ms) != ms) refuse(n, "has m_scale " + std::to_string(ms) + "; expected a positive f32");
    c.m = {float(ms), int32_t(ops::read_int(n.attrs, ops::attr::m_zero_point, where(n)))};
    c.proj = matrix(g_, n, 6, n.inputs.size(), c.m.s, what);
    c.P = c.proj.rows;
    c.proj.m = quant::quantize_multipliers(quant::requant_multipliers(c.m.s, c.proj.s_w, c.h.s));
    c.m_out = qk::q30_out_multiplier(c.m.s);
  }
  try {
    qk::check_qlstm_cell(c);
  } catch (const Error& e) {
    refuse(n, std::string("has an invalid cell: ") + e.what());
  }
  int64_t T = 0, B = 0;
  const std::string io = rnn_common(n, T, B);
  if (val(n.inputs[0]).shape.back() != c.IN) refuse(n, "reads an input whose features differ from w_ih's columns");
  const GateRows ih = gate_rows(n, c.ih, 2, 4, "w_ih"), hh = gate_rows(n, c.hh, 3, 5, "w_hh");
  const GateRows hr = proj ? gate_rows(n, c.proj, 6, n.inputs.size(), "w_hr") : GateRows{"0", "0", "0", "0"};
  const std::string tables = q16_tables();
  const std::string id = name_ + "_p" + std::to_string(tables_++);
  const int64_t HO = c.hidden_out();
  consts_ << "static const finch_qrnn_t " << id << " = {" << T << ", " << B << ", " << c.IN << ", " << c.H << ", " << HO
          << ", " << int(ops::read_bool(n.attrs, ops::attr::batch_first, where(n), false)) << ", "
          << int(ops::read_bool(n.attrs, ops::attr::reverse, where(n), false)) << ", " << c.k_cell << ", " << c.x.z << ", "
          << c.h.z << ", " << (proj ? c.m.z : 0) << ",\n  " << ih.w << ", " << ih.b << ", " << ih.m << ", " << ih.s << ", "
          << hh.w << ", " << hh.b << ", " << hh.m << ", " << hh.s << ",\n  " << hr.w << ", " << hr.m << ", " << hr.s << ", "
          << int_literal(c.m_out.multiplier) << ", " << c.m_out.total_shift() << ", " << tables << "};\n";
  rnn16_ = std::max(rnn16_, 5 * c.H), rnn8_ = std::max(rnn8_, HO + c.H);
  use("qlstm");
  body_ << "  if (finch_qlstm(" << io << ", &" << id << ", " << name_ << "_s16, " << name_ << "_s8)) return 1;\n";
}

void Emitter::qgru(const Node& n) {
  qk::QGruCell c;
  const Act ax = act(n, n.inputs[0]), ah = act(n, n.outputs[0]), an = act(n, n.outputs[1]);
  if (ah.s != an.s || ah.z != an.z) refuse(n, "quantizes its output and final state differently (they are one h)");
  c.x = {ax.s, ax.z}, c.h = {ah.s, ah.z};
  c.ih = matrix(g_, n, 2, 4, c.x.s, what_);
  c.hh = matrix(g_, n, 3, 5, c.h.s, what_);
  c.IN = c.ih.cols, c.H = c.hh.cols;
  c.m_out = qk::q30_out_multiplier(c.h.s);
  try {
    qk::check_qgru_cell(c);
  } catch (const Error& e) {
    refuse(n, std::string("has an invalid cell: ") + e.what());
  }
  int64_t T = 0, B = 0;
  const std::string io = rnn_common(n, T, B);
  if (val(n.inputs[0]).shape.back() != c.IN) refuse(n, "reads an input whose features differ from w_ih's columns");
  const GateRows ih = gate_rows(n, c.ih, 2, 4, "w_ih"), hh = gate_rows(n, c.hh, 3, 5, "w_hh");
  const std::string tables = q16_tables();
  const std::string id = name_ + "_p" + std::to_string(tables_++);
  consts_ << "static const finch_qrnn_t " << id << " = {" << T << ", " << B << ", " << c.IN << ", " << c.H << ", " << c.H
          << ", " << int(ops::read_bool(n.attrs, ops::attr::batch_first, where(n), false)) << ", "
          << int(ops::read_bool(n.attrs, ops::attr::reverse, where(n), false)) << ", 0, " << c.x.z << ", " << c.h.z
          << ", 0,\n  " << ih.w << ", " << ih.b << ", " << ih.m << ", " << ih.s << ", " << hh.w << ", " << hh.b << ", "
          << hh.m << ", " << hh.s << ",\n  0, 0, 0, " << int_literal(c.m_out.multiplier) << ", " << c.m_out.total_shift()
          << ", " << tables << "};\n";
  rnn16_ = std::max(rnn16_, 6 * c.H), rnn8_ = std::max(rnn8_, c.H);
  use("qgru");
  body_ << "  if (finch_qgru(" << io << ", &" << id << ", " << name_ << "_s16, " << name_ << "_s8)) return 1;\n";
}

void Emitter::permute(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  const Shape& xs = val(x).shape;
  const int64_t nd = int64_t(xs.size());
  if (nd > 8) refuse(n, "permutes " + num(nd) + " dims; emit-c covers at most 8");
  if (val(x).dtype != val(y).dtype) refuse(n, "changes the dtype");
  std::vector<int64_t> dims = ops::read_ints(n.attrs, ops::attr::dims, where(n));
  if (int64_t(dims.size()) != nd) refuse(n, "has " + num(int64_t(dims.size())) + " dims for a " + num(nd) + "-d input");
  std::vector<int64_t> stride(size_t(nd), 1), size, step;
  for (int64_t k = nd - 2; k >= 0; --k) stride[size_t(k)] = stride[size_t(k + 1)] * xs[size_t(k + 1)];
  std::vector<bool> seen(size_t(nd), false);
  for (int64_t& d : dims) {
    if (d < 0) d += nd;
    if (d < 0 || d >= nd || seen[size_t(d)]) refuse(n, "has dims that are not a permutation of the input's");
    seen[size_t(d)] = true;
    size.push_back(xs[size_t(d)]), step.push_back(stride[size_t(d)]);
  }
  use("permute");
  body_ << "  finch_permute(" << ptr(n, x) << ", " << ptr(n, y) << ", " << dtype_size(val(x).dtype) << ", " << nd << ", "
        << ints(size, n.name + ": output sizes") << ", " << ints(step, n.name + ": input strides (elements)") << ");\n";
}

// outer · (size along dim) · inner elements: the block view cat and select copy by.
namespace {
int64_t prod(const Shape& s, size_t a, size_t b) {
  int64_t p = 1;
  for (size_t k = a; k < b; ++k) p *= s[k];
  return p;
}
}  // namespace

void Emitter::cat(const Node& n) {
  const int32_t y = n.outputs[0];
  const Shape& ys = val(y).shape;
  const int64_t nd = int64_t(ys.size());
  int64_t d = ops::read_int(n.attrs, ops::attr::dim, where(n));
  if (d < 0) d += nd;
  if (d < 0 || d >= nd) refuse(n, "has a dim outside its " + num(nd) + "-d output");
  const int64_t es = int64_t(dtype_size(val(y).dtype)), outer = prod(ys, 0, size_t(d)), inner = prod(ys, size_t(d) + 1, ys.size());
  int64_t at = 0;
  use("copy_blocks");
  for (int32_t x : n.inputs) {
    if (x < 0 || val(x).dtype != val(y).dtype || val(x).shape.size() != ys.size()) refuse(n, "joins inputs of another dtype or rank");
    const int64_t len = val(x).shape[size_t(d)];
    body_ << "  finch_copy_blocks((unsigned char*)" << ptr(n, y) << " + " << at * inner * es << ", " << ys[size_t(d)] * inner * es
          << ", " << ptr(n, x) << ", " << len * inner * es << ", " << len * inner * es << ", " << outer << ");\n";
    at += len;
  }
  if (at != ys[size_t(d)]) refuse(n, "joins inputs whose sizes along dim do not add up to the output's");
}

void Emitter::select(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  const Shape& xs = val(x).shape;
  const int64_t nd = int64_t(xs.size()), d = ops::read_int(n.attrs, ops::attr::dim, where(n));
  if (d < 0 || d >= nd) refuse(n, "has a dim outside its " + num(nd) + "-d input");
  int64_t i = ops::read_int(n.attrs, ops::attr::index, where(n));
  const int64_t size = xs[size_t(d)];
  if (i < -size || i >= size) refuse(n, "has an index outside dim " + num(d) + " of size " + num(size));
  if (i < 0) i += size;
  const int64_t es = int64_t(dtype_size(val(x).dtype)), outer = prod(xs, 0, size_t(d)), inner = prod(xs, size_t(d) + 1, xs.size());
  use("copy_blocks");
  body_ << "  finch_copy_blocks(" << ptr(n, y) << ", " << inner * es << ", (const unsigned char*)" << ptr(n, x) << " + "
        << i * inner * es << ", " << size * inner * es << ", " << inner * es << ", " << outer << ");\n";
}

void Emitter::add_scalar(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) != "i64" || dt(n, y) != "i64")
    refuse(n, "adds to " + std::string(dtype_name(val(x).dtype)) + " values; emit-c covers add_scalar on I64 lengths");
  const double s = ops::read_number(n.attrs, ops::attr::value, where(n));
  if (s != double(int64_t(s)) || s > 9.0e15 || s < -9.0e15) refuse(n, "adds " + std::to_string(s) + "; expected a whole number within ±9e15");
  use("add_scalar_i64");
  body_ << "  if (finch_add_scalar_i64(" << ptr(n, x) << ", " << ptr(n, y) << ", " << numel(y) << ", (int64_t)"
        << int64_t(s) << "LL)) return 1;\n";
}

}  // namespace finch::compile::emit_c_detail
