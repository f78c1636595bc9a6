// QDepthwiseConv2d (kernels/qs8_dwconv.h): validation, weight preparation and threading
// around the Highway micro-kernel of qs8_dwconv_hwy.cc.
#include "kernels/qs8_dwconv.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/dwconv_band.h"
#include "kernels/qs8_dwconv_kernels.h"
#include "kernels/reference.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

using reference::detail::check_output;
using reference::detail::check_zero_point;
using reference::detail::describe;

namespace {
constexpr const char* kOp = "qs8_dwconv2d";
// The channels-last path takes input and output planes of at most kClMaxPlane pixels with at least
// kClMinChannels channels, in blocks of kClBlock channels. Measured (bench_qs8_dwconv, AVX3_DL, 1
// thread): 960 ch 7×7 stride 1 46 -> 36 µs; 576 ch 14×14 (stride 1: 70 -> 97 µs, stride 2 to 7×7:
// 36 -> 42 µs) stays faster per plane, so 14×14 planes keep the per-plane path. Where the VNNI
// quad path runs (qs8_dwconv_quad_path) it wins from 7×7 planes on (960 ch 7×7: 22 µs against
// channels-last's 40–46 µs in the same runs) but not on 4×4 (960 ch: 22 against 16 µs, its
// fixed cost per plane), so channels-last keeps only output planes under kQuadMinPlane pixels there.
constexpr int64_t kClMaxPlane = 64, kClMinChannels = 16, kClBlock = 32, kQuadMinPlane = 32;
}

DwGrid qs8_dwconv_grid(int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                       int64_t sw, int64_t dw) {
  const bool quad = qs8_dwconv_quad_path(sw, dw) && OH * OW >= kQuadMinPlane;
  DwGrid g;
  if (H * W <= kClMaxPlane && OH * OW <= kClMaxPlane && C >= kClMinChannels && !quad) {
    g.channels_last = true;
    g.col_channels = kClBlock;
    g.cols = (C + kClBlock - 1) / kClBlock;
    g.per_cell = Work::macs_dw_i8(double(OW * KH * KW * std::min(C, kClBlock)));
  } else {
    g.cols = C;
    g.per_cell = Work::macs_dw_i8(double(OW * KH * KW));
  }
  return g;
}

QDepthwiseConv2d::QDepthwiseConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m,
                                   const ops::Conv2dParams& p, DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin,
                                   int32_t qmax, DType out_dtype)
    : p_(p), x_dtype_(x_dtype), out_dtype_(out_dtype), zx_(zx), z_out_(z_out), qmin_(qmin), qmax_(qmax) {
  if (x_dtype != DType::i8 && x_dtype != DType::u8)
    fail(kOp, ": expected the input dtype I8 or U8, got ", dtype_name(x_dtype));
  check_zero_point(kOp, "input zero point", zx, x_dtype);
  check_output(kOp, z_out, qmin, qmax, out_dtype);
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 4 || w.size(0) < 1 || w.size(2) < 1 || w.size(3) < 1)
    fail(kOp, ": expected the weight as I8 [C, 1, KH, KW], got ", describe(w));
  C_ = w.size(0);
  KH_ = w.size(2);
  KW_ = w.size(3);
  if (p.groups != C_ || w.size(1) != 1)
    fail(kOp, ": expected a depthwise weight [C, 1, KH, KW] with groups == C (channel multiplier 1), got ",
         describe(w), " with groups ", p.groups);
  if (p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0 || p.dh < 1 || p.dw < 1)
    fail(kOp, ": expected stride >= 1, padding >= 0 and dilation >= 1, got stride (", p.sh, ", ", p.sw,
         "), padding (", p.ph, ", ", p.pw, "), dilation (", p.dh, ", ", p.dw, ")");
  if (int64_t(m.size()) != C_) fail(kOp, ": expected one multiplier per channel (", C_, "), got ", m.size());
  for (const auto& f : m)
    if (f.multiplier < 0) fail(kOp, ": expected multipliers >= 0, got ", f.multiplier);
  if (bias.defined() && (bias.dtype() != DType::i32 || bias.dim() != 1 || bias.size(0) != C_))
    fail(kOp, ": expected the bias as I32 [", C_, "] or absent, got ", describe(bias));

  w_ = w.contiguous().to_vector<int32_t>();
  bias_ = bias.defined() ? bias.contiguous().to_vector<int32_t>() : std::vector<int32_t>(size_t(C_), 0);
  for (const auto& f : m) {
    mult_.push_back(f.multiplier);
    shift_.push_back(f.total_shift());
  }
  // The kernel sums in int32 in its own order. |x − zx| <= 255, so |Σ + bias| stays below
  // |bias| + 255·Σ|w|: where that bound fits int32 no partial sum can wrap; otherwise (a program
  // the loader refuses, docs/quantization.md §10) run() defers to the reference, which reduces the
  // exact sum modulo 2^32 as the rule says, whatever the order of the vector sums.
  const int64_t taps = KH_ * KW_;
  for (int64_t c = 0; c < C_; ++c) {
    int64_t bound = std::abs(int64_t(bias_[size_t(c)]));
    for (int64_t k = 0; k < taps; ++k) bound += 255 * std::abs(int64_t(w_[size_t(c * taps + k)]));
    if (bound > std::numeric_limits<int32_t>::max()) may_overflow_ = true;
  }
  if (may_overflow_) {
    w_raw_ = w;
    bias_raw_ = bias;
  }
  m_ = std::move(m);
  build_channels_last_tables();
  build_quad_tables();
}

void QDepthwiseConv2d::build_quad_tables() {
  const int64_t taps = KH_ * KW_, G = (KW_ + 3) / 4;
  const int64_t zx_u8 = x_dtype_ == DType::u8 ? zx_ : zx_ + 128;
  quad_w_.assign(size_t(C_ * KH_ * G), 0);
  quad_off_.assign(size_t(C_), 0);
  for (int64_t c = 0; c < C_; ++c) {
    const int32_t* w = w_.data() + c * taps;
    int64_t sum = 0;
    for (int64_t k = 0; k < taps; ++k) sum += w[k];
    quad_off_[size_t(c)] = int32_t(uint32_t(int64_t(bias_[size_t(c)]) - zx_u8 * sum));
    for (int64_t kh = 0; kh < KH_; ++kh)
      for (int64_t kw = 0; kw < KW_; ++kw) {
        uint32_t& q = reinterpret_cast<uint32_t&>(quad_w_[size_t((c * KH_ + kh) * G + kw / 4)]);
        q |= (uint32_t(w[kh * KW_ + kw]) & 0xFFu) << (8 * (kw % 4));
      }
  }
}

void QDepthwiseConv2d::build_channels_last_tables() {
  const int64_t taps = KH_ * KW_;
  Cp_ = (C_ + 64 + 63) / 64 * 64;
  cl_w_.assign(size_t(taps * Cp_), 0);
  cl_bias_.assign(size_t(Cp_), 0);
  cl_mult_.assign(size_t(Cp_), 0);
  cl_rshift_.assign(size_t(Cp_), 0);
  cl_round_even_.assign(size_t(Cp_ / 2), 0);
  cl_round_odd_.assign(size_t(Cp_ / 2), 0);
  cl_vec_ok_.assign(size_t(Cp_), 1);
  for (int64_t c = 0; c < Cp_; ++c) {
    // n >= 64 (and the padding) is multiplier 0: rounding_shift(0) = 0, which the rule below
    // gives with any n in [32, 52]; 32 keeps the shift 0.
    int32_t mult = 0, n = 32;
    if (c < C_) {
      for (int64_t t = 0; t < taps; ++t)
        cl_w_[size_t(t * Cp_ + c)] = int32_t(uint32_t(w_[size_t(c * taps + t)]) & 0xFFFFu);
      cl_bias_[size_t(c)] = bias_[size_t(c)];
      if (shift_[size_t(c)] < 64 && mult_[size_t(c)] != 0) mult = mult_[size_t(c)], n = shift_[size_t(c)];
    }
    cl_vec_ok_[size_t(c)] = n >= 32 && n <= 52;
    cl_mult_[size_t(c)] = mult;
    cl_rshift_[size_t(c)] = n - 32;
    // RequantHighRound (requant_hwy-inl.h): 2^(n−1) with z_out folded in.
    const int64_t round = cl_vec_ok_[size_t(c)] ? (int64_t(1) << (n - 1)) + int64_t(z_out_) * (int64_t(1) << n) : 0;
    (c % 2 ? cl_round_odd_ : cl_round_even_)[size_t(c / 2)] = round;
  }
}

Tensor QDepthwiseConv2d::run(const Tensor& x) const {
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() != 4 || x.size(1) != C_)
    fail(kOp, ": expected input x as ", dtype_name(x_dtype_), " [N, ", C_, ", H, W], got ", describe(x));
  if (may_overflow_)
    return reference::qconv2d(x, zx_, w_raw_, bias_raw_, reference::rq_tensor(m_), p_, z_out_, qmin_, qmax_,
                              out_dtype_);
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1)
    fail(kOp, ": the input ", describe(x), " is smaller than the dilated ", KH_, "x", KW_, " kernel with padding (",
         p_.ph, ", ", p_.pw, ")");
  const Tensor xc = x.contiguous();
  Tensor y = empty({N, C_, OH, OW}, out_dtype_);
  const DwGrid grid = qs8_dwconv_grid(C_, H, W, OH, OW, KH_, KW_, p_.sw, p_.dw);
  const int64_t elt = int64_t(dtype_size(x_dtype_)), yelt = int64_t(dtype_size(out_dtype_));
  const auto* xb = static_cast<const uint8_t*>(xc.raw_data());
  auto* yb = static_cast<uint8_t*>(y.raw_data());
  // A band of output rows [oh0, oh1) of image n: the arguments see only the input rows it reads
  // (dwconv_band.h) and the output rows it writes, with the whole tensors' plane pitches. Every
  // output is computed the same way in any band and any block of channels, so the codes do not
  // depend on the thread count.
  auto band = [&](auto a, int64_t n, int64_t oh0, int64_t oh1) {
    const DwBand b = dw_band(H, KH_, p_.sh, p_.ph, p_.dh, oh0, oh1);
    a.x = xb + ((n * C_ * H + b.ih0) * W) * elt;
    a.y = yb + ((n * C_ * OH + oh0) * OW) * yelt;
    a.N = 1, a.H = b.H, a.ph = b.ph, a.OH = oh1 - oh0;
    return a;
  };
  if (grid.channels_last) {
    // Small planes: channels-last (qs8_dwconv_cl_hwy.cc), blocks of kClBlock channels.
    const DwClArgs a{xc.raw_data(), x_dtype_ == DType::u8, zx_, y.raw_data(), out_dtype_ == DType::u8,
                     N, C_, H, W, OH, OW, KH_, KW_, p_.sh, p_.sw, p_.ph, p_.pw, p_.dh, p_.dw, Cp_,
                     cl_w_.data(), cl_bias_.data(), cl_mult_.data(), cl_rshift_.data(), cl_round_even_.data(),
                     cl_round_odd_.data(), cl_vec_ok_.data(), mult_.data(), shift_.data(), z_out_, qmin_, qmax_,
                     H * W, OH * OW};
    run_dw_bands(
        N, OH, H, KH_, p_.sh, p_.ph, p_.dh, grid.cols, grid.per_cell,
        [&](int64_t n, int64_t oh0, int64_t oh1, int64_t b0, int64_t b1) {
          qs8_dwconv_cl(band(a, n, oh0, oh1), 0, b0 * kClBlock, std::min(C_, b1 * kClBlock));
        },
        [&](int64_t b0, int64_t b1) {
          for (int64_t n = 0; n < N; ++n) qs8_dwconv_cl(a, n, b0 * kClBlock, std::min(C_, b1 * kClBlock));
        });
    return y;
  }
  const DwConvArgs a{xc.raw_data(), x_dtype_ == DType::u8, zx_, y.raw_data(), out_dtype_ == DType::u8,
                     N, C_, H, W, OH, OW, KH_, KW_, p_.sh, p_.sw, p_.ph, p_.pw, p_.dh, p_.dw,
                     w_.data(), bias_.data(), mult_.data(), shift_.data(), z_out_, qmin_, qmax_,
                     quad_w_.data(), quad_off_.data(), H * W, OH * OW, xb + N * C_ * H * W * elt};
  run_dw_bands(
      N, OH, H, KH_, p_.sh, p_.ph, p_.dh, grid.cols, grid.per_cell,
      [&](int64_t n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1) {
        qs8_dwconv_planes(band(a, n, oh0, oh1), c0, c1);
      },
      [&](int64_t c0, int64_t c1) {
        for (int64_t n = 0; n < N; ++n) qs8_dwconv_planes(a, n * C_ + c0, n * C_ + c1);
      });
  return y;
}

}  // namespace finch::quant::kernels
