// Native fp16 conv2d and linear (f16_conv.h): validation, im2col / transpose into f16, the GEMM
// split over threads, and the double-precision reference the tests compare against.
#include "kernels/f16_conv.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "framework/f16_convert.h"
#include "framework/parallel.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

namespace {

using f16k::Act;
using f16k::kMR;
using f16k::kNR;

// Columns per GEMM task: a multiple of the tile width, small enough that a layer with few output
// channels still spreads over the cores, large enough that a task amortizes its call.
constexpr int64_t kChunk = 64;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

using reference::detail::describe;

std::vector<float> bias_of(const Tensor& b, int64_t n, const char* op) {
  if (!b.defined()) return std::vector<float>(size_t(n), 0.0f);
  if ((b.dtype() != DType::f32 && b.dtype() != DType::f16) || b.dim() != 1 || b.size(0) != n)
    fail(op, ": expected the bias as F32 or F16 [", n, "] or absent, got ", describe(b));
  return b.contiguous().to_vector<float>();
}

double apply(double v, Act act) {
  if (act != Act::none) v = std::max(v, 0.0);
  if (act == Act::relu6) v = std::min(v, 6.0);
  return v;
}

// f32 values rounded to f16 and back (what the kernels' inputs become), as doubles.
std::vector<double> rounded(const Tensor& t) {
  std::vector<float> v = t.contiguous().to_vector<float>();
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f16_to_f32(f32_to_f16(v[i]));
  return r;
}

}  // namespace

// ---- conv2d ----

F16Conv2d::F16Conv2d(const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p, Act act)
    : p_(p), act_(act) {
  if (weight.dtype() != DType::f16 || weight.dim() != 4)
    fail("conv2d (fp16): expected an F16 weight [OC, C/groups, KH, KW], got ", describe(weight));
  if (p.groups < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0)
    fail("conv2d (fp16): expected groups, stride and dilation >= 1 and padding >= 0, got groups ", p.groups,
         ", stride (", p.sh, ", ", p.sw, "), padding (", p.ph, ", ", p.pw, "), dilation (", p.dh, ", ", p.dw, ")");
  w_ = weight.contiguous();
  OC_ = w_.size(0), Cg_ = w_.size(1), KH_ = w_.size(2), KW_ = w_.size(3);
  if (OC_ % p.groups != 0)
    fail("conv2d (fp16): expected output channels (", OC_, ") divisible by groups (", p.groups, ")");
  bias_ = bias_of(bias, OC_, "conv2d (fp16)");
}

Tensor F16Conv2d::run(const Tensor& x) const {
  const int64_t G = p_.groups;
  if (x.dtype() != DType::f32 || x.dim() != 4 || x.size(1) != Cg_ * G)
    fail("conv2d (fp16): expected an F32 input [N, ", Cg_ * G, ", H, W] for weight ", shape_str(w_.shape()),
         " and ", G, " groups, got ", describe(x));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1)
    fail("conv2d (fp16): the input ", shape_str(x.shape()), " is smaller than the dilated kernel ",
         shape_str(w_.shape()), " with padding (", p_.ph, ", ", p_.pw, ")");
  const int64_t OCg = OC_ / G, K = Cg_ * KH_ * KW_, P = OH * OW, ldx = round_up(P, kNR);
  Tensor y = empty({N, OC_, OH, OW}, DType::f32);
  const Tensor xc = x.contiguous();
  std::vector<f16> xh(size_t(C * H * W)), col(size_t(G * K * ldx));  // zero-filled: the padding lanes
  const f16* w = w_.data<f16>();
  for (int64_t n = 0; n < N; ++n) {
    f32_to_f16_array(xc.data<float>() + n * C * H * W, C * H * W, xh.data());
    // col row (g, c, kh, kw) = input channel g·Cg + c shifted by the tap: G × [K][ldx], the B
    // operand of group g's GEMM (out-of-image taps are zeros, as the padding).
    parallel_for(0, G * K, Work::bytes(4.0 * double(P)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t kw = r % KW_, kh = r / KW_ % KH_, ch = r / (KW_ * KH_);  // ch = g·Cg + c
        const f16* plane = xh.data() + ch * H * W;
        f16* dst = col.data() + r * ldx;
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * p_.sh - p_.ph + kh * p_.dh;
          for (int64_t ox = 0; ox < OW; ++ox) {
            const int64_t ix = ox * p_.sw - p_.pw + kw * p_.dw;
            dst[oy * OW + ox] = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[iy * W + ix] : f16{};
          }
        }
      }
    });
    const int64_t mb = (OCg + kMR - 1) / kMR, cb = (P + kChunk - 1) / kChunk;
    float* yn = y.data<float>() + n * OC_ * P;
    parallel_for(0, G * mb * cb, Work::macs_f32(double(std::min(kMR, OCg) * std::min(kChunk, P) * K)),
                 [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t g = t / (mb * cb), m0 = t / cb % mb * kMR, c0 = t % cb * kChunk;
        const int64_t oc = g * OCg + m0;
        f16k::f16_gemm_8x8(w + oc * K, K, col.data() + g * K * ldx + c0, ldx, std::min(kMR, OCg - m0), K,
                           std::min(kChunk, P - c0), bias_.data() + oc, act_, yn + oc * P + c0, P, 1);
      }
    });
  }
  return y;
}

// ---- linear ----

F16Linear::F16Linear(const Tensor& weight, const Tensor& bias, Act act) : act_(act) {
  if (weight.dtype() != DType::f16 || weight.dim() != 2)
    fail("linear (fp16): expected an F16 weight [OUT, IN], got ", describe(weight));
  w_ = weight.contiguous();
  OUT_ = w_.size(0), IN_ = w_.size(1);
  bias_ = bias_of(bias, OUT_, "linear (fp16)");
}

Tensor F16Linear::run(const Tensor& x) const {
  if (x.dtype() != DType::f32 || x.dim() < 1 || x.size(-1) != IN_)
    fail("linear (fp16): expected an F32 input [..., ", IN_, "] for weight ", shape_str(w_.shape()), ", got ",
         describe(x));
  const int64_t R = x.numel() / std::max<int64_t>(IN_, 1), ldx = round_up(R, kNR);
  Shape out_shape = x.shape();
  out_shape.back() = OUT_;
  Tensor y = empty({R, OUT_}, DType::f32);
  // xt = x^T in f16 [IN][ldx]: the rows of x are the GEMM's columns.
  std::vector<f16> xh(size_t(R * IN_)), xt(size_t(IN_ * ldx));
  f32_to_f16_array(x.contiguous().data<float>(), R * IN_, xh.data());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < IN_; ++k) xt[size_t(k * ldx + r)] = xh[size_t(r * IN_ + k)];
  const int64_t mb = (OUT_ + kMR - 1) / kMR, cb = (R + kChunk - 1) / kChunk;
  const f16* w = w_.data<f16>();
  float* py = y.data<float>();
  parallel_for(0, mb * cb, Work::macs_f32(double(std::min(kMR, OUT_) * std::min(kChunk, R) * IN_)),
               [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m0 = t / cb * kMR, c0 = t % cb * kChunk;
      f16k::f16_gemm_8x8(w + m0 * IN_, IN_, xt.data() + c0, ldx, std::min(kMR, OUT_ - m0), IN_,
                         std::min(kChunk, R - c0), bias_.data() + m0, act_, py + c0 * OUT_ + m0, 1, OUT_);
    }
  });
  return y.view(out_shape);
}

// ---- references ----

Tensor f16_conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p,
                            Act act) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OC = weight.size(0), Cg = weight.size(1), KH = weight.size(2), KW = weight.size(3);
  const int64_t G = p.groups, OCg = OC / G;
  const int64_t OH = ops::conv_out_size(H, KH, p.sh, p.ph, p.dh), OW = ops::conv_out_size(W, KW, p.sw, p.pw, p.dw);
  const std::vector<double> xv = rounded(x), wv = rounded(weight);
  const std::vector<float> b = bias_of(bias, OC, "f16_conv2d_reference");
  Tensor y = empty({N, OC, OH, OW}, DType::f32);
  float* py = y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double s = 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t iy = oy * p.sh - p.ph + kh * p.dh, ix = ox * p.sw - p.pw + kw * p.dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const int64_t ci = oc / OCg * Cg + c;
                s += xv[size_t(((n * C + ci) * H + iy) * W + ix)] * wv[size_t(((oc * Cg + c) * KH + kh) * KW + kw)];
              }
          py[((n * OC + oc) * OH + oy) * OW + ox] = float(apply(s + b[size_t(oc)], act));
        }
  return y;
}

Tensor f16_linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, Act act) {
  const int64_t OUT = weight.size(0), IN = weight.size(1), R = x.numel() / std::max<int64_t>(IN, 1);
  const std::vector<double> xv = rounded(x), wv = rounded(weight);
  const std::vector<float> b = bias_of(bias, OUT, "f16_linear_reference");
  Shape out_shape = x.shape();
  out_shape.back() = OUT;
  Tensor y = empty({R, OUT}, DType::f32);
  float* py = y.data<float>();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t o = 0; o < OUT; ++o) {
      double s = 0;
      for (int64_t k = 0; k < IN; ++k) s += xv[size_t(r * IN + k)] * wv[size_t(o * IN + k)];
      py[r * OUT + o] = float(apply(s + b[size_t(o)], act));
    }
  return y.view(out_shape);
}

}  // namespace finch::quant::kernels
