// Reference kernels (kernels/reference.h): qconv2d, qlinear and dynamic-quantization
// dq_linear. Plain loops over centered codes with an int64 accumulator, reduced modulo 2^32 to the
// int32 the spec defines (docs/quantization.md §10), then one requantize() per output value.
//
// Why wrap and not fail or saturate: the fast kernels accumulate in int32 lanes (vpdpbusd, sdot,
// pairwise i16 multiply-adds), which wrap, and they fold −zx·Σw and the bias into one int32
// offset whose intermediate values may wrap even when the result does not. Modulo 2^32 every
// such order gives the same value, so "the exact sum reduced modulo 2^32" is the one rule every
// path can follow. A valid program never reaches the wrap: the loader refuses a node whose worst
// case max|x − zx|·Σ|w| + |bias| exceeds INT32_MAX (accumulator_bound below, runtime/executor.cc).
// Each term is at most 255 · 128 = 32640 < 2^15 in magnitude, so int64 holds any window exactly.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "kernels/reference_util.h"

namespace finch::quant::reference {

using namespace detail;

namespace {

// The exact sum modulo 2^32 (two's complement), as an int32 lane computes it.
int32_t to_acc32(int64_t acc) { return int32_t(uint32_t(uint64_t(acc))); }

// Bias: i32 [OC] or undefined (zeros).
std::vector<int64_t> bias_of(const Tensor& bias, int64_t OC, const char* op) {
  if (!bias.defined()) return std::vector<int64_t>(size_t(OC), 0);
  if (bias.dtype() != DType::i32 || bias.dim() != 1 || bias.size(0) != OC)
    fail(op, ": expected the bias as I32 [", OC, "] or absent, got ", describe(bias));
  return bias.to_vector<int64_t>();
}

// w: i8 [OC, K]; checks it against x's K and returns its codes.
std::vector<int32_t> linear_weights(const Tensor& w, int64_t K, const char* op) {
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 2 || w.size(1) != K || w.size(0) < 1)
    fail(op, ": expected the weight as I8 [OC, ", K, "] (OC >= 1), got ", describe(w));
  return codes_of(w);
}

}  // namespace

// Shapes: x [N, C, H, W], w [OC, Cg = C/groups, KH, KW], y [N, OC, OH, OW]; output channel oc
// belongs to group g = oc / (OC/groups) and reads input channels g·Cg .. g·Cg + Cg − 1.
Tensor qconv2d(const Tensor& x, int32_t zx, const Tensor& w, const Tensor& bias, const Tensor& rq,
               const ops::Conv2dParams& p, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qconv2d";
  check_codes(op, "input x", x);
  if (x.dim() != 4) fail(op, ": expected input x of shape [N, C, H, W], got ", describe(x));
  check_zero_point(op, "input zero point", zx, x.dtype());
  if (p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0 || p.dh < 1 || p.dw < 1 || p.groups < 1)
    fail(op, ": expected stride >= 1, padding >= 0, dilation >= 1 and groups >= 1, got stride (", p.sh, ", ", p.sw,
         "), padding (", p.ph, ", ", p.pw, "), dilation (", p.dh, ", ", p.dw, "), groups ", p.groups);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (C % p.groups != 0) fail(op, ": expected the ", C, " input channels to divide into ", p.groups, " groups");
  const int64_t Cg = C / p.groups;
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 4 || w.size(0) < 1 || w.size(0) % p.groups != 0 ||
      w.size(1) != Cg || w.size(2) < 1 || w.size(3) < 1)
    fail(op, ": expected the weight as I8 [OC, ", Cg, ", KH, KW] with OC a multiple of ", p.groups,
         " groups, got ", describe(w));
  const int64_t OC = w.size(0), KH = w.size(2), KW = w.size(3), OCg = OC / p.groups;
  const int64_t OH = ops::conv_out_size(H, KH, p.sh, p.ph, p.dh), OW = ops::conv_out_size(W, KW, p.sw, p.pw, p.dw);
  if (OH < 1 || OW < 1)
    fail(op, ": the input ", describe(x), " is smaller than the dilated kernel ", describe(w), " with padding (",
         p.ph, ", ", p.pw, ")");
  const auto B = bias_of(bias, OC, op);
  const auto M = rq_multipliers(rq, OC, op);
  check_output(op, z_out, qmin, qmax, out_dtype);

  auto X = codes_of(x);
  for (auto& v : X) v -= zx;  // centered codes: padding (absent below) is the same as x = zx
  const auto Wq = codes_of(w);
  std::vector<int32_t> y(size_t(N * OC * OH * OW));
  // One output plane (n, oc) per iteration: every plane is computed the same way whatever the
  // thread count, so the codes do not depend on it (evaluating a program on a test set would
  // otherwise leave all but one core idle).
  parallel_for(0, N * OC, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t n = i / OC, oc = i % OC, g = oc / OCg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t acc = B[size_t(oc)];
          for (int64_t cg = 0; cg < Cg; ++cg) {
            const int32_t* xp = &X[size_t((n * C + g * Cg + cg) * H * W)];
            const int32_t* wp = &Wq[size_t((oc * Cg + cg) * KH * KW)];
            for (int64_t kh = 0; kh < KH; ++kh) {
              const int64_t ih = oh * p.sh - p.ph + kh * p.dh;
              if (ih < 0 || ih >= H) continue;  // padded row: contributes nothing
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t iw = ow * p.sw - p.pw + kw * p.dw;
                if (iw < 0 || iw >= W) continue;
                acc += int64_t(xp[ih * W + iw]) * wp[kh * KW + kw];
              }
            }
          }
          y[size_t(((n * OC + oc) * OH + oh) * OW + ow)] =
              requantize(to_acc32(acc), M[size_t(oc)], z_out, qmin, qmax);
        }
    }
  });
  return codes_tensor(y, {N, OC, OH, OW}, out_dtype);
}

// Shapes: x [R.., K] viewed as [rows, K], w [OC, K], y [R.., OC].
Tensor qlinear(const Tensor& x, int32_t zx, const Tensor& w, const Tensor& bias, const Tensor& rq, int32_t z_out,
               int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qlinear";
  check_codes(op, "input x", x);
  if (x.dim() < 1) fail(op, ": expected input x of shape [.., K], got ", describe(x));
  check_zero_point(op, "input zero point", zx, x.dtype());
  const int64_t K = x.size(-1);
  const auto Wq = linear_weights(w, K, op);
  const int64_t OC = w.size(0), rows = K > 0 ? x.numel() / K : shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const auto B = bias_of(bias, OC, op);
  const auto M = rq_multipliers(rq, OC, op);
  check_output(op, z_out, qmin, qmax, out_dtype);

  const auto X = codes_of(x);
  std::vector<int32_t> y(size_t(rows * OC));
  parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {  // rows are independent (see qconv2d)
    for (int64_t r = b; r < e; ++r)
      for (int64_t oc = 0; oc < OC; ++oc) {
        int64_t acc = B[size_t(oc)];
        for (int64_t k = 0; k < K; ++k) acc += int64_t(X[size_t(r * K + k)] - zx) * Wq[size_t(oc * K + k)];
        y[size_t(r * OC + oc)] = requantize(to_acc32(acc), M[size_t(oc)], z_out, qmin, qmax);
      }
  });
  Shape out_shape = x.shape();
  out_shape.back() = OC;
  return codes_tensor(y, out_shape, out_dtype);
}

// Shapes: x f32 [R.., K] viewed as [rows, K], w i8 [OC, K], y f32 [R.., OC].
Tensor dq_linear(const Tensor& x, const Tensor& w, const std::vector<float>& s_w, const Tensor& bias,
                 const std::string& act) {
  constexpr const char* op = "dq_linear";
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1)
    fail(op, ": expected input x as F32 [.., K], got ", describe(x));
  const int64_t K = x.size(-1);
  const auto Wq = linear_weights(w, K, op);
  const int64_t OC = w.size(0);
  if (int64_t(s_w.size()) != OC)
    fail(op, ": expected one weight scale per output channel (", OC, "), got ", s_w.size());
  for (float s : s_w) check_scale(op, "weight scale", s);
  if (bias.defined() && (bias.dtype() != DType::f32 || bias.dim() != 1 || bias.size(0) != OC))
    fail(op, ": expected the bias as F32 [", OC, "] or absent, got ", describe(bias));
  if (act != "none" && act != "relu" && act != "relu6")
    fail(op, ": expected activation none, relu or relu6, got '", act, "'");
  const std::vector<float> b = bias.defined() ? bias.to_vector<float>() : std::vector<float>(size_t(OC), 0.0f);

  // Quantize x per call: per tensor, int8 affine full range [-128, 127], from its min/max.
  const Tensor xc = x.contiguous();
  const float* xp = xc.data<float>();
  float lo = 0, hi = 0;  // an empty x quantizes with the range [0, 0] (qparams widens to 0 anyway)
  for (int64_t i = 0; i < xc.numel(); ++i) {
    if (!std::isfinite(xp[i])) fail(op, ": expected finite input values, got ", xp[i], " at flat index ", i);
    lo = i == 0 ? xp[i] : std::min(lo, xp[i]);
    hi = i == 0 ? xp[i] : std::max(hi, xp[i]);
  }
  const QSpec spec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
  const QParams qp = qparams(spec, {lo}, {hi});
  const float s_x = qp.scale[0];
  const int32_t zx = qp.zero_point[0];
  const auto X = codes_of(reference::quantize(xc, qp));  // the scalar reference of quantize()

  const int64_t rows = K > 0 ? xc.numel() / K : shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  std::vector<float> y(size_t(rows * OC));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t oc = 0; oc < OC; ++oc) {
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += int64_t(X[size_t(r * K + k)] - zx) * Wq[size_t(oc * K + k)];
      const int32_t acc32 = to_acc32(acc);
      // The order the simulated model must reproduce:
      //   scale = s_x * s_w[oc]                 (f32 product of the two f32 scales)
      //   v     = fma(float(acc), scale, b[oc]) (one rounding; float(acc) is exact for
      //                                          |acc| <= 2^24, larger sums round to even first)
      // std::fma is correctly rounded on every target, so the result does not depend on whether
      // the compiler would have contracted a separate multiply and add (-ffp-contract=fast).
      const float scale = s_x * s_w[size_t(oc)];
      float v = std::fma(float(acc32), scale, b[size_t(oc)]);
      if (act == "relu") v = std::max(v, 0.0f);
      if (act == "relu6") v = std::min(std::max(v, 0.0f), 6.0f);
      y[size_t(r * OC + oc)] = v;
    }
  Shape out_shape = x.shape();
  out_shape.back() = OC;
  return from_vector(y, out_shape);
}

Tensor dq_linear_rows(const Tensor& x, const Tensor& w, const std::vector<float>& s_w, const Tensor& bias,
                      const std::string& act) {
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1)
    fail("dq_linear: expected input x as F32 [.., K], got ", describe(x));
  const int64_t K = x.size(-1);
  if (K < 1 || x.numel() == 0) return dq_linear(x, w, s_w, bias, act);  // its checks; no row to split
  const Tensor rows = x.contiguous().view({x.numel() / K, K});
  std::vector<Tensor> ys;
  for (int64_t r = 0; r < rows.size(0); ++r) ys.push_back(dq_linear(rows.narrow(0, r, 1), w, s_w, bias, act));
  std::vector<float> y;
  for (const Tensor& t : ys) {
    const std::vector<float> v = t.to_vector<float>();
    y.insert(y.end(), v.begin(), v.end());
  }
  Shape out_shape = x.shape();
  out_shape.back() = w.size(0);
  return from_vector(y, out_shape);
}

AccumulatorBound accumulator_bound(const Tensor& w, const Tensor& bias, int64_t max_abs_x) {
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() < 1 || w.size(0) < 1)
    fail("accumulator_bound: expected the weight as I8 [OC, ...], got ", describe(w));
  const int64_t OC = w.size(0), K = w.numel() / OC;
  const auto B = bias_of(bias, OC, "accumulator_bound");
  const auto Wq = codes_of(w);
  AccumulatorBound worst;
  for (int64_t oc = 0; oc < OC; ++oc) {
    int64_t abs_w = 0;
    for (int64_t k = 0; k < K; ++k) abs_w += std::abs(Wq[size_t(oc * K + k)]);
    const int64_t b = std::abs(B[size_t(oc)]), bound = max_abs_x * abs_w + b;
    if (oc == 0 || bound > worst.bound) worst = {bound, oc, abs_w, b};
  }
  return worst;
}

}  // namespace finch::quant::reference
