// `finch emit-c` (compile/emit_c.h): walks a validated program's nodes in order and writes one C
// call per node, the constants and tables each call needs, and the arena of the runtime's own
// memory plan (runtime::plan_memory: a node's outputs never share bytes with its inputs).
//
// Everything numeric that the runtime derives at load (requantization multipliers, pool windows
// and divisors, fused ReLU6 bounds, batch-norm scale and shift) is derived here by the same
// functions and written as tables, so the C side holds only the per-element arithmetic.
#include "compile/emit_c.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "compile/emit_c_detail.h"
#include "compile/emit_c_emitter.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "kernels/requant.h"
#include "ops/op_attrs.h"
#include "ops/pool.h"
#include "runtime/executor.h"
#include "runtime/op_table.h"

namespace finch::compile {

namespace emit_c_detail {

std::string comment_safe(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool printable = (c >= 0x20 && c <= 0x7e) || c == '\n';
    if (!printable) out += '?';
    else if ((c == '/' && !out.empty() && out.back() == '*') || (c == '*' && !out.empty() && out.back() == '/')) out += ' ', out += c;
    else out += c;
  }
  return out;
}

std::string Emitter::constant(const Node& n, int32_t v) {
  const std::string id = name_ + "_c" + std::to_string(v);
  if (emitted_[size_t(v)]) return id;
  emitted_[size_t(v)] = true;
  const Value& d = val(v);
  Tensor t = d.data.contiguous();
  if (t.dtype() == DType::f16) t = t.to(DType::f32);
  std::vector<std::string> items;
  const char* type = nullptr;
  if (t.dtype() == DType::i8 || t.dtype() == DType::u8 || t.dtype() == DType::i32) {
    type = t.dtype() == DType::i8 ? "int8_t" : t.dtype() == DType::u8 ? "uint8_t" : "int32_t";
    for (int64_t x : t.to_vector<int64_t>()) items.push_back(int_literal(x));
  } else if (t.dtype() == DType::f32) {
    type = "float";
    for (float x : t.to_vector<float>()) items.push_back(float_literal(x));
  } else {
    refuse(n, "reads the constant '" + d.name + "' of dtype " + dtype_name(t.dtype()) + "; emit-c covers I8, U8, I32, F32 and F16 constants");
  }
  consts_ << "/* " << comment_safe(d.name) << ": " << dtype_name(d.dtype) << " " << shape_str(d.shape) << " */\nstatic const " << type
          << " " << id << "[" << std::max<size_t>(1, items.size()) << "] = {";
  for (size_t i = 0; i < items.size(); ++i) consts_ << (i % 24 == 0 ? "\n  " : " ") << items[i] << ",";
  if (items.empty()) consts_ << "0";
  consts_ << "\n};\n";
  const_bytes_ += int64_t(t.nbytes());
  return id;
}

// The (multiplier, total shift) per output channel of a qconv2d/qlinear, as the runtime's
// requant_of takes them: the node's rq constant when present, else derived from the stored scales
// with the spec's quantize_multiplier (runtime/quant_ops.cc).
std::vector<int64_t> Emitter::multipliers(const Node& n, const Act& x, const Act& y, std::vector<int64_t>& shifts) {
  const Tensor& w = val(n.inputs[1]).data;
  const int64_t oc = w.size(0);
  std::vector<quant::FixedPointMultiplier> m;
  if (n.inputs.size() > 3 && n.inputs[3] >= 0) {
    if (!val(n.inputs[3]).is_constant()) refuse(n, "reads its requantization table rq computed at run time");
    const auto v = val(n.inputs[3]).data.to_vector<int64_t>();
    if (int64_t(v.size()) != 2 * oc) refuse(n, "has an rq table of " + std::to_string(v.size()) + " numbers for " + std::to_string(oc) + " channels");
    for (int64_t c = 0; c < oc; ++c) m.push_back({int32_t(v[size_t(2 * c)]), int(v[size_t(2 * c + 1)])});
  } else {
    const auto& q = val(n.inputs[1]).quant;
    if (!q) refuse(n, "has a weight without quantization parameters");
    if (q->scale.size() != 1 && int64_t(q->scale.size()) != oc)
      refuse(n, "has " + std::to_string(q->scale.size()) + " weight scales for " + std::to_string(oc) + " output channels");
    const std::vector<float> sw = q->scale.size() == 1 ? std::vector<float>(size_t(oc), q->scale[0]) : q->scale;
    m = quant::quantize_multipliers(quant::requant_multipliers(x.s, sw, y.s));
  }
  std::vector<int64_t> mult;
  shifts.clear();
  for (const auto& f : m) mult.push_back(f.multiplier), shifts.push_back(f.total_shift());
  return mult;
}

std::string Emitter::conv_struct(const Node& n, const Act& x, const Act& y, int64_t qmin, int64_t qmax) {
  const Shape &xs = val(n.inputs[0]).shape, &ys = val(n.outputs[0]).shape, &ws = val(n.inputs[1]).shape;
  if (xs.size() != 4 || ys.size() != 4 || ws.size() != 4) refuse(n, "is not a 2-d convolution over [N, C, H, W]");
  const ops::Conv2dParams p = ops::conv2d_from_json(n.attrs, where(n));
  const std::string id = name_ + "_p" + std::to_string(tables_++);
  consts_ << "static const finch_conv_t " << id << " = {" << xs[0] << ", " << xs[1] << ", " << xs[2] << ", " << xs[3]
          << ", " << ws[0] << ", " << ws[2] << ", " << ws[3] << ", " << ys[2] << ", " << ys[3] << ", " << p.sh << ", "
          << p.sw << ", " << p.ph << ", " << p.pw << ", " << p.dh << ", " << p.dw << ", " << p.groups << ", " << x.z
          << ", " << y.z << ", " << int_literal(qmin) << ", " << int_literal(qmax) << "};\n";
  return id;
}

void Emitter::quantize(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) != "f32" || dt(n, y) == "f32") refuse(n, "does not quantize F32 to I8/U8 codes");
  const Act q = act(n, y);
  use("quantize_" + dt(n, y));
  call("quantize_" + dt(n, y), ptr(n, x) + ", " + ptr(n, y) + ", " + std::to_string(numel(y)) + ", " +
                                   float_literal(q.s) + ", " + float_literal(float(q.z)) + ", " +
                                   float_literal(float(q.qmin)) + ", " + float_literal(float(q.qmax)));
}

void Emitter::dequantize(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) == "f32" || dt(n, y) != "f32") refuse(n, "does not dequantize I8/U8 codes to F32");
  const Act q = act(n, x);
  use("dequantize_" + dt(n, x));
  call("dequantize_" + dt(n, x), ptr(n, x) + ", " + ptr(n, y) + ", " + std::to_string(numel(y)) + ", " +
                                     std::to_string(q.z) + ", " + float_literal(q.s));
}

void Emitter::qconv_or_linear(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  const Act ax = act(n, x), ay = act(n, y);
  const ops::CodeRange r = ops::code_range_from_json(n.attrs, where(n));
  const std::string w = constant_input(n, 1), b = constant_input(n, 2, true);
  if (val(n.inputs[1]).dtype != DType::i8) refuse(n, "has weights that are not I8");
  std::vector<int64_t> shifts;
  const std::vector<int64_t> mult = multipliers(n, ax, ay, shifts);
  const std::string m = ints(mult, n.name + ": requantization multipliers"), s = ints(shifts, n.name + ": total shifts (31 + shift)");
  const std::string key = n.op + "_" + dt(n, x) + "_" + dt(n, y);
  use(key);
  if (n.op == "qconv2d") {
    const std::string p = conv_struct(n, ax, ay, r.qmin, r.qmax);
    int_scratch_ = std::max(int_scratch_, numel(y) / (val(y).shape[0] * val(y).shape[1]));
    call(key, ptr(n, x) + ", " + ptr(n, y) + ", " + w + ", " + b + ", " + m + ", " + s + ", &" + p + ", " + name_ + "_acc");
    return;
  }
  const int64_t K = val(n.inputs[1]).shape.at(1), OC = val(n.inputs[1]).shape.at(0);
  call(key, ptr(n, x) + ", " + ptr(n, y) + ", " + w + ", " + b + ", " + m + ", " + s + ", " + std::to_string(numel(x) / K) +
                ", " + std::to_string(K) + ", " + std::to_string(OC) + ", " + std::to_string(ax.z) + ", " +
                std::to_string(ay.z) + ", " + int_literal(r.qmin) + ", " + int_literal(r.qmax));
}

void Emitter::qadd(const Node& n) {
  const int32_t a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  if (val(a).shape != val(b).shape) refuse(n, "adds operands of different shapes; emit-c needs one shape");
  const Act qa = act(n, a), qb = act(n, b), qy = act(n, y);
  const ops::CodeRange r = ops::code_range_from_json(n.attrs, where(n));
  const std::string key = "qadd_" + dt(n, a) + "_" + dt(n, b) + "_" + dt(n, y);
  use(key);
  call(key, ptr(n, a) + ", " + ptr(n, b) + ", " + ptr(n, y) + ", " + std::to_string(numel(y)) + ", " + float_literal(qa.s) +
                ", " + std::to_string(qa.z) + ", " + float_literal(qb.s) + ", " + std::to_string(qb.z) + ", " +
                float_literal(qy.s) + ", " + std::to_string(qy.z) + ", " + int_literal(r.qmin) + ", " + int_literal(r.qmax));
}

// qrelu: [max(qmin, z), qmax]; qrelu6: the fused ReLU6 range (kernels/requant.h), as the reference.
void Emitter::qclamp(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) != dt(n, y)) refuse(n, "changes the dtype of its codes");
  const Act q = act(n, x);
  int64_t lo = std::max<int64_t>(q.qmin, q.z), hi = q.qmax;
  if (n.op == "qrelu6") {
    const quant::QRange rr = quant::fused_activation_range("relu6", q.s, q.z, quant::QRange{q.qmin, q.qmax});
    lo = rr.qmin, hi = rr.qmax;
  }
  use("qclamp_" + dt(n, x));
  call("qclamp_" + dt(n, x), ptr(n, x) + ", " + ptr(n, y) + ", " + std::to_string(numel(y)) + ", " + int_literal(lo) + ", " + int_literal(hi));
}

// Every pool, integer or float: the windows (ops/pool.h, PyTorch's geometry) as tables of
// (lo, hi, divisor factor) per output row and column.
void Emitter::pool(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  const Shape &xs = val(x).shape, &ys = val(y).shape;
  if (xs.size() < 3 || ys.size() != xs.size()) refuse(n, "does not pool over [.., H, W]");
  const int64_t H = xs[xs.size() - 2], W = xs.back(), OH = ys[ys.size() - 2], OW = ys.back();
  const bool adaptive = n.op == "adaptive_avg_pool2d" || n.op == "qadaptive_avg_pool2d";
  const bool is_max = n.op == "max_pool2d" || n.op == "qmax_pool2d";
  std::vector<ops::PoolWindow> wh, ww;
  bool include_pad = true;
  if (adaptive) {
    const ops::AdaptivePool2dAttrs o = ops::adaptive_pool2d_from_json(n.attrs, where(n));
    if (o.oh != OH || o.ow != OW) refuse(n, "declares an output plane that differs from its output_size");
    wh = ops::adaptive_pool_windows(OH, H), ww = ops::adaptive_pool_windows(OW, W);
  } else {
    const ops::Pool2dParams p = ops::pool2d_from_json(n.attrs, where(n));
    wh = ops::pool_windows(OH, H, p.kh, p.sh, p.ph), ww = ops::pool_windows(OW, W, p.kw, p.sw, p.pw);
    include_pad = p.count_include_pad;
  }
  const auto rows = [&](const std::vector<ops::PoolWindow>& v, std::vector<int64_t>& f) {
    std::vector<int64_t> t;
    for (const auto& w : v) {
      if (w.lo >= w.hi) refuse(n, "has an empty pooling window");
      const int64_t factor = adaptive ? w.hi - w.lo : include_pad ? w.span : w.hi - w.lo;
      t.insert(t.end(), {w.lo, w.hi, factor});
      f.push_back(factor);
    }
    return t;
  };
  std::vector<int64_t> fh, fw;
  const std::string th = ints(rows(wh, fh), n.name + ": window rows (lo, hi, divisor factor)");
  const std::string tw = ints(rows(ww, fw), n.name + ": window columns (lo, hi, divisor factor)");
  const std::string geom = std::to_string(numel(x) / (H * W)) + ", " + std::to_string(H) + ", " + std::to_string(W) + ", " +
                           std::to_string(OH) + ", " + std::to_string(OW) + ", " + th + ", " + tw;
  const std::string io = ptr(n, x) + ", " + ptr(n, y) + ", ";
  if (n.op[0] != 'q') {
    if (dt(n, x) != "f32") refuse(n, "pools codes as floats");
    use(is_max ? "max_pool_f32" : "avg_pool_f32");
    call(is_max ? "max_pool_f32" : "avg_pool_f32", io + geom);
    return;
  }
  if (is_max) {
    if (dt(n, x) != dt(n, y)) refuse(n, "changes the dtype of its codes");
    use("qmax_pool_" + dt(n, x));
    call("qmax_pool_" + dt(n, x), io + geom);
    return;
  }
  // One (count, multiplier, shift) per divisor the windows have: s_in / (s_out · count).
  const Act ax = act(n, x), ay = act(n, y);
  std::set<int64_t> counts;
  for (int64_t a : fh)
    for (int64_t b : fw) counts.insert(a * b);
  if (*counts.rbegin() > (int64_t(1) << 23)) refuse(n, "has a window of more than 2^23 cells (its int32 sum could overflow)");
  std::vector<int64_t> rq;
  for (int64_t c : counts) {
    const quant::FixedPointMultiplier m = quant::quantize_multiplier(double(ax.s) / (double(ay.s) * double(c)));
    rq.insert(rq.end(), {c, m.multiplier, m.total_shift()});
  }
  const std::string trq = ints(rq, n.name + ": (count, multiplier, total shift) per divisor");
  const std::string key = "qavg_pool_" + dt(n, x) + "_" + dt(n, y);
  use(key);
  call(key, io + geom + ", " + std::to_string(ax.z) + ", " + std::to_string(ay.z) + ", " + int_literal(ay.qmin) + ", " +
                int_literal(ay.qmax) + ", " + trq + ", " + std::to_string(counts.size()));
}

// flatten / reshape: the same bytes under another shape (codes keep their quantization).
void Emitter::copy(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) != dt(n, y) || numel(x) != numel(y)) refuse(n, "changes the dtype or element count");
  body_ << "  memcpy(" << ptr(n, y) << ", " << ptr(n, x) << ", " << numel(y) * int64_t(dtype_size(val(y).dtype)) << ");\n";
}

int activation_code(const std::string& act) { return act == "relu" ? 1 : act == "relu6" ? 2 : 0; }

void Emitter::conv_or_linear(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (dt(n, x) != "f32" || dt(n, y) != "f32") refuse(n, "does not compute in F32");
  const std::string w = constant_input(n, 1), b = constant_input(n, 2, true);
  const int act_code = activation_code(ops::read_activation(n.attrs, where(n)));
  if (n.op == "conv2d") {
    use("conv2d_f32");
    const std::string p = conv_struct(n, Act{1, 0, 0, 0}, Act{1, 0, 0, 0}, 0, 0);
    float_scratch_ = std::max(float_scratch_, numel(y) / (val(y).shape[0] * val(y).shape[1]));
    call("conv2d_f32", ptr(n, x) + ", " + ptr(n, y) + ", " + w + ", " + b + ", &" + p + ", " + std::to_string(act_code) +
                           ", " + name_ + "_facc");
    return;
  }
  use("linear_f32");
  const int64_t K = val(n.inputs[1]).shape.at(1), OC = val(n.inputs[1]).shape.at(0);
  call("linear_f32", ptr(n, x) + ", " + ptr(n, y) + ", " + w + ", " + b + ", " + std::to_string(numel(x) / K) + ", " +
                         std::to_string(K) + ", " + std::to_string(OC) + ", " + std::to_string(act_code));
}

void Emitter::add(const Node& n) {
  const int32_t a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  if (val(a).shape != val(b).shape || dt(n, a) != "f32" || dt(n, b) != "f32")
    refuse(n, "adds operands of different shapes or dtypes (broadcasting); emit-c needs one F32 shape");
  const float alpha = float(ops::read_number(n.attrs, ops::attr::alpha, where(n), 1.0));
  use("add_f32");
  call("add_f32", ptr(n, a) + ", " + ptr(n, b) + ", " + ptr(n, y) + ", " + std::to_string(numel(y)) + ", " +
                      float_literal(alpha) + ", " + std::to_string(activation_code(ops::read_activation(n.attrs, where(n)))));
}

// Inference form: a = w / sqrt(var + eps), shift = b − mean · a, in double as ops/batch_norm.cc.
void Emitter::batch_norm(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  if (ops::read_bool(n.attrs, ops::attr::training, where(n), false)) refuse(n, "is in training form");
  const Shape& xs = val(x).shape;
  if (xs.size() < 2 || dt(n, x) != "f32") refuse(n, "does not normalize an F32 [N, C, ..] input");
  const int64_t C = xs[1];
  const auto stat = [&](size_t i, double fallback) {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::vector<double>(size_t(C), fallback);
    constant_input(n, i);  // refuses a statistic computed at run time
    std::vector<double> v = val(n.inputs[i]).data.to(DType::f64).to_vector<double>();
    if (int64_t(v.size()) != C) refuse(n, "has a statistic of " + std::to_string(v.size()) + " entries for " + std::to_string(C) + " channels");
    return v;
  };
  const double eps = ops::read_number(n.attrs, ops::attr::eps, where(n));
  const auto w = stat(1, 1.0), b = stat(2, 0.0), mean = stat(3, 0.0), var = stat(4, 1.0);
  std::vector<float> a(static_cast<size_t>(C)), sh(static_cast<size_t>(C));
  for (size_t c = 0; c < size_t(C); ++c) {
    const double ac = w[c] * (1.0 / std::sqrt(var[c] + eps));
    a[c] = float(ac), sh[c] = float(b[c] - mean[c] * ac);
  }
  use("batch_norm_f32");
  call("batch_norm_f32", ptr(n, x) + ", " + ptr(n, y) + ", " + std::to_string(xs[0]) + ", " + std::to_string(C) + ", " +
                             std::to_string(numel(x) / (xs[0] * C)) + ", " + floats(a, n.name + ": scale") + ", " +
                             floats(sh, n.name + ": shift"));
}

void Emitter::softmax(const Node& n) {
  const int32_t x = n.inputs[0], y = n.outputs[0];
  const Shape& xs = val(x).shape;
  if (dt(n, x) != "f32" || xs.empty()) refuse(n, "does not take an F32 tensor");
  const int64_t nd = int64_t(xs.size()), d = ops::read_int(n.attrs, ops::attr::dim, where(n));
  if (d < -nd || d >= nd) refuse(n, "has dim " + std::to_string(d) + " outside a " + std::to_string(nd) + "-d input");
  const int64_t dim = d < 0 ? d + nd : d;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < dim; ++k) outer *= xs[size_t(k)];
  for (int64_t k = dim + 1; k < nd; ++k) inner *= xs[size_t(k)];
  use("softmax_f32");
  call("softmax_f32", ptr(n, x) + ", " + ptr(n, y) + ", " + std::to_string(outer) + ", " + std::to_string(xs[size_t(dim)]) + ", " +
                          std::to_string(inner));
}

void Emitter::node(const Node& n) {
  for (int32_t v : n.outputs)
    if (numel(v) > kMaxElements) refuse(n, "writes a tensor of 2^31 elements or more");
  for (int32_t v : n.inputs)
    if (v >= 0 && numel(v) > kMaxElements) refuse(n, "reads a tensor of 2^31 elements or more");
  const bool rnn = n.op == "qlstm" || n.op == "qgru" || n.op == "dq_gru", dq_lstm = n.op == "dq_lstm";
  if (!dq_lstm && n.outputs.size() != (rnn ? 2u : 1u))
    refuse(n, "has " + std::to_string(n.outputs.size()) + " outputs; emit-c covers " + (rnn ? "two (y, h_n)" : "one-output ops"));
  body_ << "  /* " << comment_safe(n.name) << ": " << n.op << " -> " << shape_str(val(n.outputs[0]).shape) << " "
        << dtype_name(val(n.outputs[0]).dtype) << " */\n";
  const std::string& op = n.op;
  if (op == "quantize") quantize(n);
  else if (op == "dequantize") dequantize(n);
  else if (op == "qconv2d" || op == "qlinear") qconv_or_linear(n);
  else if (op == "qadd") qadd(n);
  else if (op == "qrelu" || op == "qrelu6") qclamp(n);
  else if (op == "qmax_pool2d" || op == "qavg_pool2d" || op == "qadaptive_avg_pool2d" || op == "max_pool2d" ||
           op == "avg_pool2d" || op == "adaptive_avg_pool2d")
    pool(n);
  else if (op == "flatten" || op == "reshape") copy(n);
  else if (op == "qlstm") qlstm(n);
  else if (op == "qgru") qgru(n);
  else if (op == "permute") permute(n);
  else if (op == "cat") cat(n);
  else if (op == "select") select(n);
  else if (op == "add_scalar") add_scalar(n);
  else if (op == "qembedding") qembedding(n);
  else if (op == "dq_linear") dq_linear(n);
  else if (op == "dq_lstm" || op == "dq_gru") dq_rnn(n);
  else if (op == "conv2d" || op == "linear") conv_or_linear(n);
  else if (op == "add") add(n);
  else if (op == "relu" || op == "relu6") {
    if (dt(n, n.inputs[0]) != "f32") refuse(n, "takes codes; expected F32");
    use("act_f32");
    call("act_f32", ptr(n, n.inputs[0]) + ", " + ptr(n, n.outputs[0]) + ", " + std::to_string(numel(n.outputs[0])) + ", " +
                        (op == "relu" ? "1" : "2"));
  } else if (op == "batch_norm") batch_norm(n);
  else if (op == "softmax") softmax(n);
  else
    refuse(n, "is an op emit-c does not cover (it covers the ops of docs/emit-c.md: quantize, dequantize, qconv2d, "
              "qlinear, qadd, qrelu, qrelu6, integer and float pools, flatten, reshape, conv2d, linear, add, relu, relu6, "
              "batch_norm, softmax, qlstm, qgru, permute, cat, select, add_scalar on lengths, qembedding, dq_linear, dq_lstm, "
              "dq_gru)");
}

EmittedC Emitter::run() {
  if (g_.inputs.empty() || g_.inputs.size() > 8 || g_.outputs.size() != 1)
    fail(what_, ": has ", g_.inputs.size(), " inputs and ", g_.outputs.size(),
         " outputs; emit-c covers programs with 1 to 8 inputs and one output");
  if (g_.meta.is_object() && g_.meta.value("variable_sequence", false))
    fail(what_, ": takes inputs of variable length (meta.variable_sequence); emit-c needs the program's declared shapes");
  const std::vector<bool> lengths = runtime::sequence_length_values(g_);
  // Token ids: a program input an embedding reads (I64, or I32 as the runtime's qembedding takes).
  std::vector<bool> ids(g_.values.size(), false);
  for (const Node& n : g_.nodes)
    if (n.op == "qembedding" && !n.inputs.empty() && n.inputs[0] >= 0) ids[size_t(n.inputs[0])] = true;
  const auto c_of = [](DType d) -> std::string {
    return d == DType::f32 ? "float" : d == DType::i8 ? "int8_t" : d == DType::u8 ? "uint8_t" : d == DType::i32 ? "int32_t" : "int64_t";
  };
  std::vector<std::string> in_t;
  for (int32_t v : g_.inputs) {
    const Value& in = val(v);
    const bool ok = in.dtype == DType::f32 || in.dtype == DType::i8 || in.dtype == DType::u8 ||
                    (in.dtype == DType::i64 && (lengths[size_t(v)] || ids[size_t(v)])) || (in.dtype == DType::i32 && ids[size_t(v)]);
    if (!ok)
      fail(what_, ": its input '", in.name, "' is ", dtype_name(in.dtype),
           "; emit-c covers F32, I8 and U8 inputs, I64 sequence lengths and I64/I32 token ids of an embedding");
    if (ids[size_t(v)] && lengths[size_t(v)]) fail(what_, ": its input '", in.name, "' is read both as token ids and as lengths");
    if (shape_numel(in.shape) > kMaxElements) fail(what_, ": its input '", in.name, "' has 2^31 elements or more");
    in_t.push_back(c_of(in.dtype));
  }
  const Value& out = val(g_.outputs[0]);
  if (out.dtype != DType::f32 && out.dtype != DType::i8 && out.dtype != DType::u8)
    fail(what_, ": its output '", out.name, "' is ", dtype_name(out.dtype), "; emit-c covers F32, I8 and U8");
  if (shape_numel(out.shape) > kMaxElements || plan_.arena_bytes > kMaxElements)
    fail(what_, ": needs ", plan_.arena_bytes, " bytes of activations; emit-c covers programs under 2^31 bytes");
  for (const Node& n : g_.nodes) node(n);
  if (out.is_constant() || plan_.offset[size_t(g_.outputs[0])] < 0)
    fail(what_, ": its output '", out.name, "' is not computed by a node");

  const std::string out_t = c_of(out.dtype);
  std::string upper = name_;
  for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  std::string about = "the program " + what_;
  if (g_.meta.is_object()) {
    for (const char* k : {"model", "precision", "dataset", "mean", "std", "classes"})
      if (g_.meta.contains(k)) about += "\n   " + std::string(k) + ": " + g_.meta[k].dump();
  }
  EmittedC e;
  e.name = name_;
  e.kernels = kernel_order_;
  e.arena_bytes = plan_.arena_bytes;
  e.scratch_bytes = 4 * (int_scratch_ + float_scratch_ + dqf_) + 2 * rnn16_ + rnn8_ + dq8_;
  e.constant_bytes = const_bytes_;
  std::string params, sizes, described;
  for (size_t i = 0; i < g_.inputs.size(); ++i) {
    const Value& in = val(g_.inputs[i]);
    const std::string macro = name_ + (i == 0 ? "_INPUT_SIZE" : "_INPUT" + std::to_string(i) + "_SIZE");
    params += "const " + in_t[i] + "* " + input_name(i) + ", ";
    sizes += "#define " + macro + " " + std::to_string(shape_numel(in.shape)) + "\n";
    described += "   Input " + std::to_string(i) + " (" + input_name(i) + ") '" + comment_safe(in.name) + "': " +
                 dtype_name(in.dtype) + " " + shape_str(in.shape) +
                 (lengths[size_t(g_.inputs[i])] ? ", each sample's valid steps (1..T; the rest is padding)"
                  : ids[size_t(g_.inputs[i])] ? ", token ids (0..V-1, V the embedding's rows; padding 0)"
                  : in.dtype == DType::f32 ? " (already normalized as mean/std above say, when the program has them)" : "") +
                 ".\n";
  }
  if (std::any_of(g_.inputs.begin(), g_.inputs.end(), [&](int32_t v) { return lengths[size_t(v)]; })) refusals_ |= 1;
  std::string refused;  // what NAME_run refuses, as the runtime does
  if (refusals_ & 1) refused += ", or 1 (output unspecified) when a length is outside 1..T";
  if (refusals_ & 2) refused += ", 2 when a token id is outside 0..V-1";
  if (refusals_ & 4) refused += ", 3 when a value a dynamic quantization reads is not finite";
  if (!refused.empty()) refused += ", as the runtime refuses it";
  std::ostringstream h;
  h << "/* " << name_ << ".h: " << comment_safe(about) << "\n   as standalone C, written by `finch emit-c` (docs/emit-c.md).\n"
    << described << "   Output '" << comment_safe(out.name) << "': " << dtype_name(out.dtype) << " " << shape_str(out.shape) << ". */\n"
    << "#ifndef " << upper << "_H_\n#define " << upper << "_H_\n\n#include <stdint.h>\n\n"
    << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    << sizes << "#define " << name_ << "_INPUTS " << g_.inputs.size() << "\n"
    << "#define " << name_ << "_OUTPUT_SIZE " << shape_numel(out.shape) << "\n"
    << "#define " << name_ << "_ARENA_BYTES " << plan_.arena_bytes << "\n\n"
    << "/* Runs the program on its inputs (row-major, the sizes above) and writes " << name_
    << "_OUTPUT_SIZE outputs. Returns 0"
    << refused
    << ".\n   Not reentrant: the activations live in one static arena of " << name_ << "_ARENA_BYTES bytes. */\n"
    << "int " << name_ << "_run(" << params << out_t << "* output);\n\n"
    << "#ifdef __cplusplus\n}\n#endif\n\n#endif\n";
  e.header = h.str();

  std::ostringstream s;
  s << "/* " << name_ << ".c: " << comment_safe(about) << "\n   as standalone C99 (also C++17), written by `finch emit-c`: "
    << g_.nodes.size() << " nodes, " << const_bytes_ << " bytes of constants, an arena of " << plan_.arena_bytes
    << " bytes.\n   Integer ops give the finch runtime's codes bit for bit; compile without -ffast-math. */\n"
    << "#if defined(__clang__)\n#pragma clang fp contract(off)\n#elif defined(__GNUC__)\n"
    << (rnn16_ > 0 || dq8_ > 0
            ? "/* GCC's -O2 leaves the recurrent gate rows' int8 dot loops scalar; O3 vectorizes them (integer sums:\n"
              "   the same in any order; no fast-math, contraction still off), 6.6x faster on an LSTM H 128. */\n"
                     "#pragma GCC optimize(\"O3\", \"fp-contract=off\")\n"
            : "#pragma GCC optimize(\"fp-contract=off\")\n")
    << "#endif\n"
    << (dq8_ > 0 ? "/* The dynamic ops call fmaf (one rounding, as the runtime's fused multiply-adds): exact on every\n"
                   "   target; on x86 -mfma (or -march=x86-64-v3) makes it one instruction instead of a libm call. */\n"
                 : "")
    << "#if defined(__FAST_MATH__)\n#error \"" << name_ << ".c: compile without -ffast-math: the int8 arithmetic needs IEEE f32 rounding\"\n#endif\n"
    << "#include <float.h>\n#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD > 0\n#error \"" << name_
    << ".c: needs float arithmetic in float (FLT_EVAL_METHOD 0; on 32-bit x86 use -msse2 -mfpmath=sse)\"\n#endif\n"
    << "#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n#include \"" << name_ << ".h\"\n\n"
    << kernels_ << consts_.str() << "\n/* The activations: offsets from the runtime's memory plan (runtime/executor.cc). */\n"
    << "static float " << name_ << "_arena[" << std::max<int64_t>(1, (plan_.arena_bytes + 3) / 4) << "];\n"
    << "#define FINCH_AT(offset) ((unsigned char*)" << name_ << "_arena + (offset))\n";
  if (int_scratch_ > 0) s << "static int32_t " << name_ << "_acc[" << int_scratch_ << "]; /* a convolution's accumulators */\n";
  if (float_scratch_ > 0) s << "static float " << name_ << "_facc[" << float_scratch_ << "]; /* a convolution's accumulators */\n";
  if (rnn16_ > 0)
    s << "static int16_t " << name_ << "_s16[" << rnn16_ << "]; /* a recurrent cell's gates and cell state */\n"
      << "static int8_t " << name_ << "_s8[" << rnn8_ << "]; /* a recurrent cell's h (and m) */\n";
  if (dqf_ > 0) s << "static float " << name_ << "_dqf[" << dqf_ << "]; /* a dynamic recurrent cell's gates and states */\n";
  if (dq8_ > 0) s << "static int8_t " << name_ << "_dq8[" << dq8_ << "]; /* a dynamic quantization's codes */\n";
  s << "\n"
    << "int " << name_ << "_run(" << params << out_t << "* output) {\n"
    << body_.str() << "  memcpy(output, FINCH_AT(" << plan_.offset[size_t(g_.outputs[0])] << "), "
    << shape_numel(out.shape) * int64_t(dtype_size(out.dtype)) << ");\n  return 0;\n}\n";
  e.source = s.str();
  e.main = main_text(name_, in_t, out_t);
  return e;
}

}  // namespace emit_c_detail

using emit_c_detail::Emitter;

EmittedC emit_c(const runtime::Graph& g, const std::string& name, const std::string& what) {
  bool ok = !name.empty() && name.size() <= 64 && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) fail("emit-c: expected --name to be a C identifier of at most 64 letters, digits and underscores, got '", name, "'");
  // Exactly what the runtime accepts (structure, attributes, shapes by a dry run, accumulator
  // bounds): the emitted arithmetic relies on those checks (the int32 sums never wrap).
  const runtime::Program checked(g, what);
  return Emitter(checked.graph(), name, what).run();
}

void write_emitted_c(const EmittedC& e, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    fail("emit-c: cannot create the output folder ", dir, (ec ? " (" + ec.message() + ")" : std::string()));
  const std::filesystem::path d(dir);
  write_file_atomically((d / (e.name + ".h")).string(), e.header);
  write_file_atomically((d / (e.name + ".c")).string(), e.source);
  write_file_atomically((d / (e.name + "_main.c")).string(), e.main);
}

}  // namespace finch::compile
