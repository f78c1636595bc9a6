// F32DepthwiseConv2d (kernels/f32_dwconv.h): validation, weight packing and threading around
// the Highway micro-kernels of f32_dwconv_hwy.cc.
#include "kernels/f32_dwconv.h"

#include <algorithm>
#include <cstdint>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/dwconv_band.h"
#include "kernels/f32_gemm.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

using reference::detail::describe;

namespace {
constexpr const char* kOp = "f32_dwconv2d";
// Output planes of at most f32_dwconv_cl_max_plane() pixels (with at least kClMinChannels
// channels) take the channels-last kernel (f32_dwconv_cl_hwy.cc): there the per-plane walk's
// fixed costs (packing a padded plane per channel, partial vectors) dominate.
constexpr int64_t kClMinChannels = 8;

bool float_tensor(const Tensor& t) { return t.dtype() == DType::f32 || t.dtype() == DType::f16; }
}  // namespace

DwGrid f32_dwconv_grid(int64_t C, int64_t M, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                       int64_t sh, int64_t sw, int64_t dh, int64_t dw) {
  DwGrid g;
  // A 3×3 stride-2 plane whose output rows fill a vector but for two lanes or less runs on the
  // per-plane kernel, which reads its input rows in place (f32_dwconv3x3s2_direct): it beat the
  // channels-last one's two transposes there (bench_f32_dwconv, CPU time, AVX-512: 64 channels
  // 56² → 28² 49–54 → 34–35 µs, 144 channels 28² → 14² 30–31 → 23–24 µs; 14² → 7² stays
  // channels-last, 4× faster than the plane walk).
  const bool s2_rows = KH == 3 && KW == 3 && sh == 2 && sw == 2 && dh == 1 && dw == 1 &&
                       OW >= f32k::f32_gemm_vector_cols() - 2;
  // (The channels-last kernel gathers with int32 offsets of up to 16 input planes.)
  if (M == 1 && !s2_rows && OH * OW <= f32_dwconv_cl_max_plane() && C >= kClMinChannels &&
      H * W <= INT32_MAX / kF32DwClBlock) {
    g.channels_last = true;
    g.col_channels = kF32DwClBlock;
    g.cols = (C + kF32DwClBlock - 1) / kF32DwClBlock;
    g.per_cell = Work::macs_dw_f32(double(kF32DwClBlock * OW * KH * KW));
  } else {
    g.cols = C;
    g.per_cell = Work::macs_dw_f32(double(OW * M * KH * KW));
  }
  return g;
}

F32DepthwiseConv2d::F32DepthwiseConv2d(const Tensor& w, const Tensor& bias, const ops::Conv2dParams& p, F32Act act)
    : p_(p), act_(act) {
  if (!w.defined() || !float_tensor(w) || w.dim() != 4 || w.size(0) < 1 || w.size(2) < 1 || w.size(3) < 1)
    fail(kOp, ": expected the weight as F32 or F16 [C·M, 1, KH, KW], got ", describe(w));
  C_ = p.groups;
  KH_ = w.size(2);
  KW_ = w.size(3);
  if (C_ < 1 || w.size(1) != 1 || w.size(0) % C_ != 0)
    fail(kOp, ": expected a depthwise weight [C·M, 1, KH, KW] with groups == C, got ", describe(w), " with groups ",
         p.groups);
  M_ = w.size(0) / C_;
  if (p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0 || p.dh < 1 || p.dw < 1)
    fail(kOp, ": expected stride >= 1, padding >= 0 and dilation >= 1, got stride (", p.sh, ", ", p.sw,
         "), padding (", p.ph, ", ", p.pw, "), dilation (", p.dh, ", ", p.dw, ")");
  if (bias.defined() && (!float_tensor(bias) || bias.dim() != 1 || bias.size(0) != w.size(0)))
    fail(kOp, ": expected the bias as F32 or F16 [", w.size(0), "] or absent, got ", describe(bias));
  w_ = w.to_vector<float>();
  bias_ = bias.defined() ? bias.to_vector<float>() : std::vector<float>(size_t(w.size(0)), 0.0f);
  if (M_ == 1) {
    const int64_t taps = KH_ * KW_;
    Cp_ = (C_ + kF32DwClBlock - 1) / kF32DwClBlock * kF32DwClBlock;
    w_cl_.assign(size_t(taps * Cp_), 0.0f);
    bias_cl_.assign(size_t(Cp_), 0.0f);
    for (int64_t c = 0; c < C_; ++c) {
      bias_cl_[size_t(c)] = bias_[size_t(c)];
      for (int64_t t = 0; t < taps; ++t) w_cl_[size_t(t * Cp_ + c)] = w_[size_t(c * taps + t)];
    }
  }
}

Tensor F32DepthwiseConv2d::run(const Tensor& xin, const Tensor& rin) const {
  if (!xin.defined() || xin.dtype() != DType::f32 || xin.dim() != 4 || xin.size(1) != C_)
    fail(kOp, ": expected the input as F32 [N, ", C_, ", H, W], got ", describe(xin));
  const int64_t N = xin.size(0), H = xin.size(2), W = xin.size(3);
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh);
  const int64_t OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1)
    fail(kOp, ": expected an input plane at least as large as the dilated kernel, got ", describe(xin),
         " for a ", KH_, "x", KW_, " kernel with padding (", p_.ph, ", ", p_.pw, ") and dilation (", p_.dh, ", ",
         p_.dw, ")");
  const Shape out_shape{N, C_ * M_, OH, OW};
  if (rin.defined() && (rin.dtype() != DType::f32 || rin.shape() != out_shape))
    fail(kOp, ": expected the residual as F32 ", shape_str(out_shape), ", got ", describe(rin));
  Tensor y = empty(out_shape, DType::f32);
  if (N == 0) return y;
  const Tensor x = xin.contiguous();
  const Tensor r = rin.defined() ? rin.contiguous() : Tensor();
  F32DwArgs a;
  a.x = x.data<float>();
  a.y = y.data<float>();
  a.residual = r.defined() ? r.data<float>() : nullptr;
  a.w = w_.data();
  a.bias = bias_.data();
  a.N = N, a.C = C_, a.M = M_, a.H = H, a.W = W, a.OH = OH, a.OW = OW, a.KH = KH_, a.KW = KW_;
  a.sh = p_.sh, a.sw = p_.sw, a.ph = p_.ph, a.pw = p_.pw, a.dh = p_.dh, a.dw = p_.dw;
  a.act = act_;
  a.w_cl = w_cl_.data();
  a.bias_cl = bias_cl_.data();
  a.Cp = Cp_;
  a.x_plane = H * W, a.y_plane = OH * OW, a.x_end = a.x + N * C_ * H * W;
  const DwGrid grid = f32_dwconv_grid(C_, M_, H, W, OH, OW, KH_, KW_, p_.sh, p_.sw, p_.dh, p_.dw);
  // A band of output rows [oh0, oh1) of image n: the arguments see only the input rows it reads
  // (dwconv_band.h) and the output rows it writes, with the whole tensors' plane pitches.
  auto band_args = [&](int64_t n, int64_t oh0, int64_t oh1) {
    const DwBand b = dw_band(H, KH_, p_.sh, p_.ph, p_.dh, oh0, oh1);
    F32DwArgs s = a;
    s.x = a.x + n * C_ * H * W + b.ih0 * W;
    s.y = a.y + n * C_ * M_ * OH * OW + oh0 * OW;
    s.residual = a.residual ? a.residual + n * C_ * M_ * OH * OW + oh0 * OW : nullptr;
    s.N = 1, s.H = b.H, s.ph = b.ph, s.OH = oh1 - oh0;
    return s;
  };
  // Split by bands of output rows (one per thread) and, within a band, by channels (blocks).
  if (grid.channels_last) {
    const int64_t nb = grid.cols;
    run_dw_bands(
        N, OH, H, KH_, p_.sh, p_.ph, p_.dh, nb, grid.per_cell,
        [&](int64_t n, int64_t oh0, int64_t oh1, int64_t b0, int64_t b1) {
          f32_dwconv_cl_blocks(band_args(n, oh0, oh1), b0, b1);
        },
        [&](int64_t b0, int64_t b1) {
          for (int64_t n = 0; n < N; ++n) f32_dwconv_cl_blocks(a, n * nb + b0, n * nb + b1);
        });
    return y;
  }
  run_dw_bands(
      N, OH, H, KH_, p_.sh, p_.ph, p_.dh, grid.cols, grid.per_cell,
      [&](int64_t n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1) {
        f32_dwconv_planes(band_args(n, oh0, oh1), c0, c1);
      },
      [&](int64_t c0, int64_t c1) {
        for (int64_t n = 0; n < N; ++n) f32_dwconv_planes(a, n * C_ + c0, n * C_ + c1);
      });
  return y;
}

}  // namespace finch::quant::kernels
