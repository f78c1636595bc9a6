// Reference kernels (kernels/reference.h): the shared argument checks, rq tensors, and the
// element-wise ops qadd, qrelu, qrelu6 and qcat. Convolutions and linear layers are in
// reference_conv.cc, pools in reference_pool.cc.

// qadd's f32 rule needs every multiply and add rounded separately: on FMA targets (ARM, x86 with
// -mfma) GCC's default -ffp-contract=fast would fuse f32(a − za)·sa + vb into one fma and move
// ties to another code than the simulated model's.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "kernels/reference.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "kernels/reference_util.h"

namespace finch::quant::reference {

namespace detail {

int32_t code_min(DType t) { return t == DType::u8 ? 0 : -128; }
int32_t code_max(DType t) { return t == DType::u8 ? 255 : 127; }

std::string describe(const Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape());
}

void check_codes(const char* op, const char* what, const Tensor& x) {
  if (!x.defined() || (x.dtype() != DType::i8 && x.dtype() != DType::u8))
    fail(op, ": expected ", what, " to hold I8 or U8 codes, got ", describe(x));
}

void check_zero_point(const char* op, const char* what, int32_t z, DType t) {
  if (z < code_min(t) || z > code_max(t))
    fail(op, ": expected the ", what, " inside the ", dtype_name(t), " code range [", code_min(t), ", ",
         code_max(t), "], got ", z);
}

void check_add_args(const char* op, const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb,
                    float s_out, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  check_codes(op, "input a", a);
  check_codes(op, "input b", b);
  if (a.shape() != b.shape())
    fail(op, ": expected inputs of the same shape, got ", describe(a), " and ", describe(b));
  check_zero_point(op, "zero point of a", za, a.dtype());
  check_zero_point(op, "zero point of b", zb, b.dtype());
  check_scale(op, "scale of a", sa);
  check_scale(op, "scale of b", sb);
  check_scale(op, "output scale", s_out);
  check_output(op, z_out, qmin, qmax, out_dtype);
}

void check_output(const char* op, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  if (out_dtype != DType::i8 && out_dtype != DType::u8)
    fail(op, ": expected an I8 or U8 output dtype, got ", dtype_name(out_dtype));
  if (qmin > qmax || qmin < code_min(out_dtype) || qmax > code_max(out_dtype))
    fail(op, ": expected an output code range qmin <= qmax inside [", code_min(out_dtype), ", ",
         code_max(out_dtype), "] (", dtype_name(out_dtype), "), got [", qmin, ", ", qmax, "]");
  check_zero_point(op, "output zero point", z_out, out_dtype);
}

void check_scale(const char* op, const char* what, float s) {
  if (!(std::isfinite(s) && s > 0)) fail(op, ": expected a positive finite ", what, ", got ", s);
}

std::vector<int32_t> codes_of(const Tensor& x) { return x.to_vector<int32_t>(); }

Tensor codes_tensor(const std::vector<int32_t>& codes, const Shape& shape, DType t) {
  Tensor y = empty(shape, t);
  FINCH_CHECK(int64_t(codes.size()) == y.numel(), "codes_tensor: ", codes.size(), " codes for shape ",
              shape_str(shape));
  if (t == DType::i8) {
    int8_t* p = y.data<int8_t>();
    for (size_t i = 0; i < codes.size(); ++i) p[i] = int8_t(codes[i]);
  } else {
    uint8_t* p = y.data<uint8_t>();
    for (size_t i = 0; i < codes.size(); ++i) p[i] = uint8_t(codes[i]);
  }
  return y;
}

}  // namespace detail

using namespace detail;

Tensor rq_tensor(const std::vector<FixedPointMultiplier>& m) {
  Tensor rq = empty({int64_t(m.size()), 2}, DType::i32);
  int32_t* p = rq.data<int32_t>();
  for (size_t c = 0; c < m.size(); ++c) {
    p[2 * c] = m[c].multiplier;
    p[2 * c + 1] = m[c].shift;
  }
  return rq;
}

std::vector<FixedPointMultiplier> rq_multipliers(const Tensor& rq, int64_t OC, const char* op) {
  if (!rq.defined() || rq.dtype() != DType::i32 || rq.dim() != 2 || rq.size(0) != OC || rq.size(1) != 2)
    fail(op, ": expected the requantization table rq as I32 [", OC, ", 2] (multiplier, shift per output channel), got ",
         describe(rq));
  const auto v = rq.to_vector<int32_t>();
  std::vector<FixedPointMultiplier> m(static_cast<size_t>(OC));
  for (int64_t c = 0; c < OC; ++c) {
    m[size_t(c)] = FixedPointMultiplier{v[size_t(2 * c)], v[size_t(2 * c + 1)]};
    // A negative multiplier is no real multiplier (scales are positive); any shift is fine:
    // rounding_shift handles every total shift, left shifts saturating.
    if (m[size_t(c)].multiplier < 0)
      fail(op, ": expected non-negative multipliers in rq, got ", m[size_t(c)].multiplier, " for output channel ", c);
  }
  return m;
}

namespace {

// The f32 rule of qadd on contiguous codes. Each line is one IEEE f32 operation in the order of
// docs/quantization.md §7 (the simulated model's fake-quantized add): no multiply and add are
// fused (the pragma above), and the division is a true division, never a reciprocal. The clamp happens in f32 (q + z is exact: |q| < 2^24 or it is
// far outside [qmin, qmax] anyway), and NaN cannot occur (finite codes, positive finite scales).
template <typename TA, typename TB, typename TY>
void qadd_f32(const TA* a, float sa, int32_t za, const TB* b, float sb, int32_t zb, int64_t n, float s_out,
              int32_t z_out, int32_t qmin, int32_t qmax, TY* y) {
  for (int64_t i = 0; i < n; ++i) {
    const float va = float(int32_t(a[i]) - za) * sa;
    const float vb = float(int32_t(b[i]) - zb) * sb;
    const float q = std::nearbyint((va + vb) / s_out);
    const float c = std::fmin(std::fmax(q + float(z_out), float(qmin)), float(qmax));
    y[i] = TY(int32_t(c));
  }
}

template <typename TA, typename TB>
void qadd_to(const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb, float s_out,
             int32_t z_out, int32_t qmin, int32_t qmax, Tensor& y) {
  if (y.dtype() == DType::i8)
    qadd_f32(a.data<TA>(), sa, za, b.data<TB>(), sb, zb, a.numel(), s_out, z_out, qmin, qmax, y.data<int8_t>());
  else
    qadd_f32(a.data<TA>(), sa, za, b.data<TB>(), sb, zb, a.numel(), s_out, z_out, qmin, qmax, y.data<uint8_t>());
}

template <typename TA>
void qadd_b(const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb, float s_out, int32_t z_out,
            int32_t qmin, int32_t qmax, Tensor& y) {
  if (b.dtype() == DType::i8)
    qadd_to<TA, int8_t>(a, sa, za, b, sb, zb, s_out, z_out, qmin, qmax, y);
  else
    qadd_to<TA, uint8_t>(a, sa, za, b, sb, zb, s_out, z_out, qmin, qmax, y);
}

}  // namespace

Tensor qadd(const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb, float s_out, int32_t z_out,
            int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qadd";
  check_add_args(op, a, sa, za, b, sb, zb, s_out, z_out, qmin, qmax, out_dtype);
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  Tensor y = empty(a.shape(), out_dtype);
  if (ca.dtype() == DType::i8)
    qadd_b<int8_t>(ca, sa, za, cb, sb, zb, s_out, z_out, qmin, qmax, y);
  else
    qadd_b<uint8_t>(ca, sa, za, cb, sb, zb, s_out, z_out, qmin, qmax, y);
  return y;
}

Tensor qrelu(const Tensor& x, int32_t z, int32_t qmin, int32_t qmax) {
  check_codes("qrelu", "input x", x);
  check_output("qrelu", z, qmin, qmax, x.dtype());
  const int32_t lo = std::max(qmin, z);  // z is the code of 0.0
  auto y = codes_of(x);
  for (auto& v : y) v = std::clamp(v, lo, qmax);
  return codes_tensor(y, x.shape(), x.dtype());
}

Tensor qrelu6(const Tensor& x, float s, int32_t z, int32_t qmin, int32_t qmax) {
  check_codes("qrelu6", "input x", x);
  check_output("qrelu6", z, qmin, qmax, x.dtype());
  check_scale("qrelu6", "scale", s);
  // [z, code of 6.0] exactly as a fused ReLU6 clamps (f32 division, round half to even).
  const QRange r = fused_activation_range("relu6", s, z, QRange{qmin, qmax});
  auto y = codes_of(x);
  for (auto& v : y) v = int32_t(std::clamp<int64_t>(v, r.qmin, r.qmax));
  return codes_tensor(y, x.shape(), x.dtype());
}

Tensor qcat(const std::vector<Tensor>& xs, const std::vector<float>& s, const std::vector<int32_t>& z, int64_t dim,
            float s_out, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qcat";
  if (xs.empty()) fail(op, ": expected at least one input, got none");
  if (s.size() != xs.size() || z.size() != xs.size())
    fail(op, ": expected one scale and one zero point per input (", xs.size(), "), got ", s.size(), " scales and ",
         z.size(), " zero points");
  check_output(op, z_out, qmin, qmax, out_dtype);
  check_scale(op, "output scale", s_out);
  for (size_t i = 0; i < xs.size(); ++i) {
    check_codes(op, "every input", xs[i]);
    check_zero_point(op, "zero point of an input", z[i], xs[i].dtype());
    check_scale(op, "input scale", s[i]);
  }
  const int64_t nd = xs[0].dim();
  if (nd < 1) fail(op, ": expected inputs with at least one dimension, got ", describe(xs[0]));
  const int64_t d = wrap_dim(dim, nd, op);
  Shape out_shape = xs[0].shape();
  out_shape[size_t(d)] = 0;
  for (const Tensor& x : xs) {
    bool ok = x.dim() == nd;
    for (int64_t k = 0; ok && k < nd; ++k) ok = k == d || x.size(k) == out_shape[size_t(k)];
    if (!ok)
      fail(op, ": expected inputs that agree in every dimension but ", d, ", got ", describe(xs[0]), " and ",
           describe(x));
    out_shape[size_t(d)] += x.size(d);
  }
  // [outer, size along d, inner] views: input i fills columns [offset_i, offset_i + size_i) of
  // each outer row of the output.
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= out_shape[size_t(k)];
  for (int64_t k = d + 1; k < nd; ++k) inner *= out_shape[size_t(k)];
  const int64_t row = out_shape[size_t(d)] * inner;
  std::vector<int32_t> y(size_t(outer * row));
  int64_t offset = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const auto X = codes_of(xs[i]);
    const int64_t n = xs[i].size(d) * inner;
    // Same quantization as the output: a copy (requantizing by 1.0 = 2^30 · 2^-30 is the identity,
    // so this is only a shortcut, not another rule). Otherwise s_i / s_out, one rounding.
    const bool same = s[i] == s_out && z[i] == z_out;
    const FixedPointMultiplier m = quantize_multiplier(double(s[i]) / double(s_out));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n; ++j) {
        const int32_t q = X[size_t(o * n + j)];
        y[size_t(o * row + offset + j)] = same ? std::clamp(q, qmin, qmax) : requantize(q - z[i], m, z_out, qmin, qmax);
      }
    offset += n;
  }
  return codes_tensor(y, out_shape, out_dtype);
}

}  // namespace finch::quant::reference
