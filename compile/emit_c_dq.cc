// `finch emit-c` for text programs and dynamic int8 programs (compile/emit_c.h): qembedding
// (token ids in, int8 rows with one scale per row out as f32), dq_linear, dq_lstm (both
// directions, with the projection w_hr) and dq_gru. The weights are read as the runtime reads
// them (runtime/quant_rnn_ops.cc row_scales, runtime/quant_ops.cc dq_linear), the LSTM's two biases
// summed once in f32 here as the runtime sums them at load; the per-call quantization, the int8
// dot products and the f32 gate passes are C (compile/emit_c_kernels_dq.cc).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "compile/emit_c_emitter.h"
#include "ops/op_attrs.h"

namespace finch::compile::emit_c_detail {

namespace {
std::string num(int64_t v) { return std::to_string(v); }
}  // namespace

// One scale per row of the int8 weight input i (or one for all rows), zero points 0: what the
// runtime's row_scales accepts; anything else is the runtime's refusal, in one sentence.
std::string Emitter::row_scales(const Node& n, size_t i, int64_t rows) {
  const Value& w = val(n.inputs[i]);
  if (!w.is_constant() || w.dtype != DType::i8 || w.shape.size() != 2 || w.shape[0] != rows)
    refuse(n, "reads its weight '" + w.name + "' computed at run time or not as I8 [" + num(rows) + ", cols]");
  const bool ok = w.quant && w.quant->zero_point.size() == w.quant->scale.size() &&
                  (w.quant->scale.size() == 1 || (int64_t(w.quant->scale.size()) == rows && w.quant->axis == 0));
  if (!ok) refuse(n, "expected weight '" + w.name + "' quantized with one scale, or one per row (" + num(rows) + " rows, axis 0)");
  for (size_t k = 0; k < w.quant->scale.size(); ++k)
    if (w.quant->zero_point[k] != 0 || !(w.quant->scale[k] > 0) || !std::isfinite(w.quant->scale[k]))
      refuse(n, "expected weight '" + w.name + "' with zero points 0 and finite positive scales (row " + num(int64_t(k)) + ")");
  const std::vector<float> s = w.quant->scale.size() == 1 ? std::vector<float>(size_t(rows), w.quant->scale[0]) : w.quant->scale;
  return floats(s, n.name + ": " + w.name + " scales (one per row)");
}

// An F32 constant bias of `rows` entries as a float vector (input i), or empty when absent.
std::vector<float> Emitter::bias_of(const Node& n, size_t i, int64_t rows) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return {};
  const Value& b = val(n.inputs[i]);
  if (!b.is_constant() || b.dtype != DType::f32 || b.shape != Shape{rows})
    refuse(n, "reads its bias '" + b.name + "' computed at run time or not as F32 [" + num(rows) + "]");
  return b.data.contiguous().to_vector<float>();
}

void Emitter::qembedding(const Node& n) {
  const int32_t ids = n.inputs[0], y = n.outputs[0];
  const Value& w = val(n.inputs.at(1));
  if (w.shape.size() != 2) refuse(n, "reads a weight that is not [V, E]");
  const int64_t V = w.shape[0], E = w.shape[1];
  const DType it = val(ids).dtype;
  if (it != DType::i64 && it != DType::i32) refuse(n, "reads ids of dtype " + std::string(dtype_name(it)) + "; expected I64 or I32");
  if (dt(n, y) != "f32" || numel(y) != numel(ids) * E) refuse(n, "does not write F32 rows of E values per id");
  const std::string s = row_scales(n, 1, V), wc = constant_input(n, 1);
  const std::string key = it == DType::i64 ? "qembedding_i64" : "qembedding_i32";
  std::string id_ptr;
  const auto in = std::find(g_.inputs.begin(), g_.inputs.end(), ids);
  if (in != g_.inputs.end()) id_ptr = input_name(size_t(in - g_.inputs.begin()));
  else if (it == DType::i64) id_ptr = ptr(n, ids);
  else refuse(n, "reads I32 ids computed by another node; emit-c takes I32 ids as a program input");
  use(key);
  refusals_ |= 2;
  body_ << "  if (finch_" << key << "(" << id_ptr << ", " << ptr(n, y) << ", " << numel(ids) << ", " << wc << ", " << s << ", "
        << V << ", " << E << ")) return 2;\n";
}

void Emitter::dq_linear(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) != "f32" || dt(n, y) != "f32") refuse(n, "does not compute F32 from F32");
  const Value& w = val(n.inputs.at(1));
  if (!w.is_constant() || w.dtype != DType::i8 || w.shape.size() != 2) refuse(n, "reads a weight that is not a constant I8 [OC, K]");
  const int64_t OC = w.shape[0], K = w.shape[1];
  if (K < 1 || val(x).shape.empty() || val(x).shape.back() != K) refuse(n, "reads an input whose last dim differs from the weight's K");
  // The runtime's qparams_of: one scale per output channel or one for all (its zero points are 0
  // by construction: dynamic programs quantize weights symmetrically).
  if (!w.quant || (w.quant->scale.size() != 1 && int64_t(w.quant->scale.size()) != OC))
    refuse(n, "has " + num(w.quant ? int64_t(w.quant->scale.size()) : 0) + " weight scales for " + num(OC) + " output channels");
  for (float sc : w.quant->scale)
    if (!(sc > 0) || !std::isfinite(sc)) refuse(n, "has a weight scale that is not finite and positive");
  const std::vector<float> sw = w.quant->scale.size() == 1 ? std::vector<float>(size_t(OC), w.quant->scale[0]) : w.quant->scale;
  const std::vector<float> b = bias_of(n, 2, OC);
  const std::string a = ops::read_activation(n.attrs, where(n));
  if (a != "none" && a != "relu" && a != "relu6") refuse(n, "has the activation '" + a + "'; expected none, relu or relu6");
  const bool per_row = ops::read_bool(n.attrs, ops::attr::per_row, where(n), false);
  const int64_t rows = numel(x) / K;
  dq8_ = std::max(dq8_, numel(x));
  use("dq_linear");
  refusals_ |= 4;
  body_ << "  if (finch_dq_linear(" << ptr(n, x) << ", " << ptr(n, y) << ", " << rows << ", " << K << ", " << OC << ", "
        << constant_input(n, 1) << ", " << floats(sw, n.name + ": weight scales") << ", "
        << (b.empty() ? std::string("0") : floats(b, n.name + ": bias")) << ", " << int(per_row) << ", "
        << (a == "relu" ? 1 : a == "relu6" ? 2 : 0) << ", " << name_ << "_dq8)) return 3;\n";
}

// dq_lstm's inputs: x, lengths?, w_ih, w_hh, b_ih?, b_hh?, the same four reversed, w_hr?,
// w_hr_reverse? (runtime/quant_rnn_ops.cc); dq_gru's stop before w_hr.
void Emitter::dq_rnn(const Node& n) {
  const bool lstm = n.op == "dq_lstm";
  const size_t outs = n.outputs.size();
  if (outs < 2 || outs > (lstm ? 3u : 2u)) refuse(n, "has " + num(int64_t(outs)) + " outputs; expected y, h_n" + (lstm ? " (and c_n)" : ""));
  for (int32_t v : n.outputs)
    if (dt(n, v) != "f32") refuse(n, "writes an output that is not F32");
  const Shape& xs = val(n.inputs[0]).shape;
  if (xs.size() != 3 || dt(n, n.inputs[0]) != "f32") refuse(n, "reads an input that is not F32 [T, B, IN] or [B, T, IN]");
  const bool bf = ops::read_bool(n.attrs, ops::attr::batch_first, where(n), false);
  const int64_t T = bf ? xs[1] : xs[0], B = bf ? xs[0] : xs[1], IN = xs[2];
  const auto present = [&](size_t i) { return i < n.inputs.size() && n.inputs[i] >= 0; };
  const int64_t D = present(6) ? 2 : 1;
  const Value& w0 = val(n.inputs.at(2));
  if (w0.shape.size() != 2 || w0.shape[0] % (lstm ? 4 : 3) != 0) refuse(n, "reads w_ih that is not [G·H, IN]");
  const int64_t G = w0.shape[0], H = G / (lstm ? 4 : 3);
  const int64_t HO = present(10) ? val(n.inputs[10]).shape.at(0) : H;
  if (!lstm && (present(10) || present(11))) refuse(n, "has a projection; dq_gru has none");
  if (HO < 1 || HO > H) refuse(n, "has a projection of " + num(HO) + " rows for H " + num(H));
  std::string f[8];  // w_ih, s_ih, b_ih, w_hh, s_hh, b_hh, w_hr, s_hr: "{dir0, dir1}" each
  for (int64_t d = 0; d < D; ++d) {
    const size_t o = 2 + 4 * size_t(d), hr = 10 + size_t(d);
    if (!present(o) || !present(o + 1)) refuse(n, "lacks a weight of direction " + num(d));
    if (val(n.inputs[o]).shape != Shape{G, IN} || val(n.inputs[o + 1]).shape != Shape{G, HO})
      refuse(n, "has weights of direction " + num(d) + " that are not [" + num(G) + ", " + num(IN) + "] and [" + num(G) + ", " + num(HO) + "]");
    if (lstm && D == 2 && present(10) != present(11)) refuse(n, "projects one direction only");
    std::vector<float> bi = bias_of(n, o + 2, G), bh = bias_of(n, o + 3, G);
    if (lstm && !bi.empty() && !bh.empty())
      for (size_t r = 0; r < bi.size(); ++r) bi[r] = bi[r] + bh[r];  // summed once in f32, as the runtime
    if (lstm && bi.empty()) bi = bh;
    const std::string sep = d == 0 ? "{" : ", ", dir = d == 0 ? "" : " (reverse)";
    f[0] += sep + constant_input(n, o), f[1] += sep + row_scales(n, o, G);
    f[2] += sep + (bi.empty() ? std::string("0") : floats(bi, n.name + dir + (lstm ? ": b_ih + b_hh" : ": b_ih")));
    f[3] += sep + constant_input(n, o + 1), f[4] += sep + row_scales(n, o + 1, G);
    f[5] += sep + (lstm || bh.empty() ? std::string("0") : floats(bh, n.name + dir + ": b_hh"));
    if (present(hr)) {
      if (val(n.inputs[hr]).shape != Shape{HO, H}) refuse(n, "has a projection w_hr that is not [" + num(HO) + ", " + num(H) + "]");
      f[6] += sep + constant_input(n, hr), f[7] += sep + row_scales(n, hr, HO);
    } else {
      f[6] += sep + "0", f[7] += sep + "0";
    }
  }
  for (std::string& s : f) s += D == 1 ? ", 0}" : "}";
  std::string lengths = "0";
  if (present(1)) {
    if (val(n.inputs[1]).dtype != DType::i64 || val(n.inputs[1]).shape != Shape{B}) refuse(n, "reads lengths that are not I64 [" + num(B) + "]");
    lengths = "(const int64_t*)" + ptr(n, n.inputs[1]);
  }
  const Shape want_y = bf ? Shape{B, T, D * HO} : Shape{T, B, D * HO};
  if (val(n.outputs[0]).shape != want_y || val(n.outputs[1]).shape != Shape{D, B, HO} ||
      (outs == 3 && val(n.outputs[2]).shape != Shape{D, B, H}))
    refuse(n, "declares outputs of other shapes than y " + shape_str(want_y) + ", h_n [" + num(D) + ", " + num(B) + ", " + num(HO) + "]");
  const auto out_ptr = [&](size_t k) {
    return k < outs && plan_.offset[size_t(n.outputs[k])] >= 0 ? ptr(n, n.outputs[k]) : std::string("0");
  };
  const std::string id = name_ + "_p" + std::to_string(tables_++);
  consts_ << "static const finch_dq_rnn_t " << id << " = {" << T << ", " << B << ", " << IN << ", " << H << ", " << HO << ", "
          << D << ", " << int(bf) << ", " << int(lstm) << ",\n  " << f[0] << ", " << f[1] << ", " << f[2] << ",\n  " << f[3]
          << ", " << f[4] << ", " << f[5] << ",\n  " << f[6] << ", " << f[7] << "};\n";
  dqf_ = std::max(dqf_, 10 * H + HO);
  dq8_ = std::max({dq8_, IN, H, HO});
  use("dq_rnn");
  refusals_ |= 1 | 4;
  body_ << "  {\n    const int rc = finch_dq_rnn(" << ptr(n, n.inputs[0]) << ", " << lengths << ", " << ptr(n, n.outputs[0]) << ", "
        << out_ptr(1) << ", " << out_ptr(2) << ", &" << id << ", " << name_ << "_dqf, " << name_ << "_dq8);\n"
        << "    if (rc) return rc;\n  }\n";
}

}  // namespace finch::compile::emit_c_detail
