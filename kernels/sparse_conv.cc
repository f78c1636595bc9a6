// The sparse conv2d / linear operators of kernels/sparse_conv.h: validation, the rows of
// nonzeros built once, and the drivers (im2col or in-place planes, transposed Linear inputs).
#include "kernels/sparse_conv.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/reference_util.h"
#include "hwy/base.h"  // HWY_RESTRICT

namespace finch::quant::kernels {

using namespace ::finch::quant::reference::detail;

namespace {

constexpr int64_t kCols = 64;  // activation columns per thread block (4 AVX-512 vectors)
// Copied activations get their column count rounded up to this (a multiple of every target's fp32
// and int32 lanes): the micro-kernels' column tails are scalar, and a 7×7 plane's 63 columns
// would otherwise run 15 of 63 scalar (half the layer's time).
constexpr int64_t kRound = 16;
int64_t round_up(int64_t n) { return (n + kRound - 1) / kRound * kRound; }

// How the kernel reads one image: row k of the activations at koff[k], over a grid of OH rows of
// Wv columns (V = OH·Wv; columns ow >= OW are computed and dropped), after copying the image:
//   in_place  a 1×1 stride-1 unpadded conv: the CHW planes themselves (int8: their u8 codes);
//   padded    any other stride-1 conv: the planes padded to Hp × Wp; tap (c, kh, kw) of virtual
//             pixel q = oh·Wp + ow is at c·Hp·Wp + kh·dh·Wp + kw·dw + q, so the taps are read in
//             place, with no im2col copy (the padded copy is about one input's size);
//   im2col    strided convs: the im2col rows [K][OH·OW].
// Vr = V rounded up to kRound: a copy has slack after it, so that columns up to Vr can be read.
struct Geometry {
  enum Mode { in_place, padded, im2col } mode = in_place;
  int64_t OH = 0, OW = 0, Hp = 0, Wp = 0, Wv = 0, V = 0, Vr = 0, copy = 0;  // copy: elements of the copy
  std::vector<int64_t> koff;
};

Geometry geometry(int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, const ops::Conv2dParams& p) {
  Geometry g;
  g.OH = ops::conv_out_size(H, KH, p.sh, p.ph, p.dh), g.OW = ops::conv_out_size(W, KW, p.sw, p.pw, p.dw);
  g.koff.resize(size_t(C * KH * KW));
  if (KH == 1 && KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0) {
    g.Wv = g.OW, g.V = g.OH * g.OW, g.copy = C * H * W;
    for (int64_t k = 0; k < C; ++k) g.koff[size_t(k)] = k * H * W;
  } else if (p.sh == 1 && p.sw == 1) {
    g.mode = Geometry::padded;
    g.Hp = H + 2 * p.ph, g.Wp = W + 2 * p.pw, g.Wv = g.Wp, g.V = g.OH * g.Wp;
    // The last rows' dropped columns read up to (KW − 1)·dw past the last plane: padding too.
    g.copy = C * g.Hp * g.Wp + (KW - 1) * p.dw;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw)
          g.koff[size_t((c * KH + kh) * KW + kw)] = c * g.Hp * g.Wp + kh * p.dh * g.Wp + kw * p.dw;
  } else {
    g.mode = Geometry::im2col;
    g.Wv = g.OW, g.V = g.OH * g.OW, g.copy = C * KH * KW * g.V;
    for (int64_t k = 0; k < C * KH * KW; ++k) g.koff[size_t(k)] = k * g.V;
  }
  g.Vr = round_up(g.V);
  g.copy += g.Vr - g.V;
  return g;
}

// The copy of one image x [C][H][W] that geometry g reads, each element through f (int8: to u8
// codes), `pad` outside the plane.
template <class T, class F>
void copy_image(const T* x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, const ops::Conv2dParams& p,
                const Geometry& g, T pad, F f, T* dst) {
  // Byte stores may alias anything a lambda captures by reference, which would be reloaded per
  // element (and the loop not vectorized): the loops below read only locals.
  if (g.mode == Geometry::in_place) {
    parallel_for(0, C * H * W, Work::bytes_stream(2.0 * sizeof(T)), [x, dst, f](int64_t i0, int64_t i1) {
      const T* HWY_RESTRICT s = x + i0;
      T* HWY_RESTRICT d = dst + i0;
      for (int64_t i = 0, n = i1 - i0; i < n; ++i) d[i] = f(s[i]);
    });
    std::fill(dst + C * H * W, dst + g.copy, pad);
    return;
  }
  if (g.mode == Geometry::padded) {
    const int64_t plane = g.Hp * g.Wp;
    std::fill(dst + C * plane, dst + g.copy, pad);
    parallel_for(0, C, Work::bytes_stream(2.0 * double(plane * sizeof(T))), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        T* d = dst + c * plane;
        std::fill(d, d + p.ph * g.Wp, pad);
        std::fill(d + (p.ph + H) * g.Wp, d + plane, pad);
        const int64_t Wn = W, Wp = g.Wp, pw = p.pw;
        for (int64_t h = 0; h < H; ++h) {
          T* HWY_RESTRICT row = d + (p.ph + h) * Wp;
          const T* HWY_RESTRICT src = x + (c * H + h) * Wn;
          std::fill(row, row + pw, pad);
          for (int64_t w = 0; w < Wn; ++w) row[pw + w] = f(src[w]);
          std::fill(row + pw + Wn, row + Wp, pad);
        }
      }
    });
    return;
  }
  const int64_t P = g.V;
  std::fill(dst + C * KH * KW * P, dst + g.copy, pad);
  parallel_for(0, C * KH * KW, Work::bytes_stream(double(2 * P * sizeof(T))), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t c = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
      T* HWY_RESTRICT d = dst + k * P;
      const int64_t OH = g.OH, OW = g.OW, Hn = H, Wn = W, sw = p.sw, w0 = kw * p.dw - p.pw;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t ih = oh * p.sh - p.ph + kh * p.dh;
        if (ih < 0 || ih >= Hn) {
          std::fill(d + oh * OW, d + (oh + 1) * OW, pad);
          continue;
        }
        const T* HWY_RESTRICT row = x + (c * Hn + ih) * Wn;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t iw = ow * sw + w0;
          d[oh * OW + ow] = iw >= 0 && iw < Wn ? f(row[iw]) : pad;
        }
      }
    }
  });
}

// The geometry of the channel-quad copies (sparse_gemm.h sparse_quads): quad q = cq·taps + tap.
//   stride 1: planes padded to Hp × Wp, interleaved by channel quads [Cq][Hp][Wp][4]; quad (cq,
//             kh, kw) of virtual pixel v at 4·(cq·Hp·Wp + kh·dh·Wp + kw·dw + v);
//   strided:  im2col rows by quads [Cq·taps][Vr][4].
// koff and copy in bytes.
Geometry quad_geometry(int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, const ops::Conv2dParams& p) {
  Geometry g;
  const int64_t Cq = (C + 3) / 4, taps = KH * KW;
  g.OH = ops::conv_out_size(H, KH, p.sh, p.ph, p.dh), g.OW = ops::conv_out_size(W, KW, p.sw, p.pw, p.dw);
  g.koff.resize(size_t(Cq * taps));
  if (p.sh == 1 && p.sw == 1) {
    g.mode = Geometry::padded;
    g.Hp = H + 2 * p.ph, g.Wp = W + 2 * p.pw, g.Wv = g.Wp, g.V = g.OH * g.Wp, g.Vr = round_up(g.V);
    g.copy = 4 * (Cq * g.Hp * g.Wp + (KW - 1) * p.dw + g.Vr - g.V);
    for (int64_t cq = 0; cq < Cq; ++cq)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw)
          g.koff[size_t((cq * KH + kh) * KW + kw)] = 4 * (cq * g.Hp * g.Wp + kh * p.dh * g.Wp + kw * p.dw);
  } else {
    g.mode = Geometry::im2col;
    g.Wv = g.OW, g.V = g.OH * g.OW, g.Vr = round_up(g.V), g.copy = 4 * Cq * taps * g.Vr;
    for (int64_t q = 0; q < Cq * taps; ++q) g.koff[size_t(q)] = 4 * q * g.Vr;
  }
  return g;
}

// The channel-quad copy of one image x [C][H][W] of u8 codes (byte ^ flip), `pad` outside the
// plane and in the channels past C (whose weights are 0).
void copy_quads(const uint8_t* x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, const ops::Conv2dParams& p,
                const Geometry& g, uint8_t pad, uint8_t flip, uint8_t* dst) {
  std::memset(dst, pad, size_t(g.copy));
  const int64_t taps = KH * KW;
  if (g.mode == Geometry::padded) {
    // One 32-bit word (4 channels of a pixel) per store, built from the 4 planes' rows: the
    // byte-by-byte scatter took as long as the layer's multiply-adds.
    const int64_t Hp = g.Hp, Wp = g.Wp, Cq = (C + 3) / 4;
    const uint32_t flip4 = uint32_t(flip) * 0x01010101u;
    parallel_for(0, Cq, Work::bytes_stream(8.0 * double(H * W)), [&](int64_t q0, int64_t q1) {
      std::vector<uint8_t> padrow(size_t(W), uint8_t(pad ^ flip));  // absent channels read pad
      for (int64_t cq = q0; cq < q1; ++cq)
        for (int64_t h = 0; h < H; ++h) {
          const uint8_t* r[4];
          for (int64_t j = 0; j < 4; ++j) r[j] = 4 * cq + j < C ? x + ((4 * cq + j) * H + h) * W : padrow.data();
          const uint8_t *HWY_RESTRICT r0 = r[0], *HWY_RESTRICT r1 = r[1], *HWY_RESTRICT r2 = r[2], *HWY_RESTRICT r3 = r[3];
          uint8_t* HWY_RESTRICT row = dst + 4 * ((cq * Hp + p.ph + h) * Wp + p.pw);
          for (int64_t w = 0, n = W; w < n; ++w) {
            const uint32_t v = (uint32_t(r0[w]) | uint32_t(r1[w]) << 8 | uint32_t(r2[w]) << 16 | uint32_t(r3[w]) << 24) ^ flip4;
            std::memcpy(row + 4 * w, &v, 4);
          }
        }
    });
    return;
  }
  const int64_t OH = g.OH, OW = g.OW, Vr = g.Vr, Cq = (C + 3) / 4, sw = p.sw;
  const uint32_t flip4 = uint32_t(flip) * 0x01010101u;
  std::vector<uint8_t> padrow(size_t(W), uint8_t(pad ^ flip));
  for (int64_t cq = 0; cq < Cq; ++cq)
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t kh = t / KW, kw = t % KW;
      uint8_t* HWY_RESTRICT d = dst + 4 * (cq * taps + t) * Vr;
      // The valid output columns of this tap: iw = ow·sw − pw + kw·dw in [0, W).
      const int64_t w0 = kw * p.dw - p.pw;
      int64_t lo = 0, hi = OW;
      while (lo < OW && lo * sw + w0 < 0) ++lo;
      while (hi > lo && (hi - 1) * sw + w0 >= W) --hi;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t ih = oh * p.sh - p.ph + kh * p.dh;
        if (ih < 0 || ih >= H) continue;
        const uint8_t* r[4];
        for (int64_t j = 0; j < 4; ++j) r[j] = 4 * cq + j < C ? x + ((4 * cq + j) * H + ih) * W : padrow.data();
        const uint8_t *HWY_RESTRICT r0 = r[0], *HWY_RESTRICT r1 = r[1], *HWY_RESTRICT r2 = r[2], *HWY_RESTRICT r3 = r[3];
        uint8_t* HWY_RESTRICT row = d + 4 * oh * OW;
        for (int64_t ow = lo; ow < hi; ++ow) {
          const int64_t i = ow * sw + w0;  // in [0, W) for lo <= ow < hi
          const uint32_t v = (uint32_t(r0[i]) | uint32_t(r1[i]) << 8 | uint32_t(r2[i]) << 16 | uint32_t(r3[i]) << 24) ^ flip4;
          std::memcpy(row + 4 * ow, &v, 4);
        }
      }
    }
}

// y [M][OH][OW] from the kernel's grid (row m at grid + m·ld, [OH][Wv]; columns ow >= OW dropped).
template <class T>
void drop_columns(const T* grid, int64_t ld, int64_t M, const Geometry& g, T* y) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      std::copy(grid + m * ld + oh * g.Wv, grid + m * ld + oh * g.Wv + g.OW, y + (m * g.OH + oh) * g.OW);
}

// dst[c·ld + r] = src[r·cols + c] (src [rows][cols] transposed into rows of ld >= rows).
template <class S, class D>
void transpose(const S* src, int64_t rows, int64_t cols, int64_t ld, D* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld + r] = D(src[r * cols + c]);
}

// koff of a plain [K][ld] matrix.
std::vector<int64_t> row_offsets(int64_t K, int64_t ld) {
  std::vector<int64_t> o(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) o[size_t(k)] = k * ld;
  return o;
}

// Runs f(n0, n1, m0, m1) over blocks of kCols columns × ranges of output channels, in parallel.
template <class T, class F>
void split(const SparseRows<T>& w, int64_t P, F f) {
  const int64_t blocks = (P + kCols - 1) / kCols;
  // A sparse multiply-add loads its activation vector: about twice a packed GEMM's.
  const double macs = double(w.nnz()) / double(std::max<int64_t>(1, w.M)) * double(kCols);
  parallel_for_2d(blocks, w.M, Work::macs_f32(macs) * 2.0, [&](int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
    f(b0 * kCols, std::min(b1 * kCols, P), m0, m1);
  });
}
template <class T, class F>
void split_rows(const SparseRows<T>& w, F f) {
  const double per_row = double(w.nnz()) / double(std::max<int64_t>(1, w.M));
  parallel_for(0, w.M, Work::macs_f32(per_row) * 4.0, [&](int64_t m0, int64_t m1) { f(m0, m1); });
}

std::vector<float> f32_bias(const char* op, const Tensor& bias, int64_t OC) {
  if (!bias.defined()) return std::vector<float>(size_t(OC), 0.0f);
  if (bias.dtype() != DType::f32 || bias.dim() != 1 || bias.size(0) != OC)
    fail(op, ": expected the bias as F32 [", OC, "] or absent, got ", describe(bias));
  return bias.to_vector<float>();
}

void check_conv_params(const char* op, const ops::Conv2dParams& p) {
  if (p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0 || p.dh < 1 || p.dw < 1 || p.groups != 1)
    fail(op, ": expected stride >= 1, padding >= 0, dilation >= 1 and groups 1");
}

// The RowQuants of the dense int8 kernels (qs8_pack.cc): the same offsets, so the same sums.
std::vector<qs8::RowQuant> int8_rows(const char* op, const int8_t* w, int64_t OC, int64_t K, const Tensor& bias,
                                     const std::vector<FixedPointMultiplier>& m, int32_t zx_u8) {
  if (int64_t(m.size()) != OC) fail(op, ": expected ", OC, " requantization multipliers, got ", m.size());
  for (const auto& v : m)
    if (v.multiplier < 0) fail(op, ": expected multipliers >= 0, got ", v.multiplier);
  std::vector<int32_t> b;
  if (bias.defined()) {
    if (bias.dtype() != DType::i32 || bias.dim() != 1 || bias.size(0) != OC)
      fail(op, ": expected the bias as I32 [", OC, "] or absent, got ", describe(bias));
    b = bias.to_vector<int32_t>();
  }
  return qs8::row_quants(qs8::weight_sums(w, OC, K), b, m, zx_u8);
}

}  // namespace

// ---- fp32 ----

F32SparseConv2d::F32SparseConv2d(const Tensor& w, const Tensor& bias, const ops::Conv2dParams& p, FusedAct act)
    : p_(p), act_(act) {
  constexpr const char* op = "F32SparseConv2d";
  check_conv_params(op, p);
  if (!w.defined() || w.dtype() != DType::f32 || w.dim() != 4 || w.size(0) < 1 || w.size(1) < 1 || w.size(2) < 1 ||
      w.size(3) < 1)
    fail(op, ": expected the weight as F32 [OC, C, KH, KW], got ", describe(w));
  C_ = w.size(1), KH_ = w.size(2), KW_ = w.size(3);
  const Tensor wc = w.contiguous();
  w_ = sparse_rows(wc.data<float>(), w.size(0), C_ * KH_ * KW_);
  bias_ = f32_bias(op, bias, w.size(0));
}

Tensor F32SparseConv2d::run(const Tensor& x) const {
  constexpr const char* op = "F32SparseConv2d";
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() != 4 || x.size(1) != C_)
    fail(op, ": expected input x as F32 [N, ", C_, ", H, W], got ", describe(x));
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), M = w_.M;
  const Geometry g = geometry(C_, H, W, KH_, KW_, p_);
  if (g.OH < 1 || g.OW < 1) fail(op, ": the input ", describe(x), " is smaller than the dilated kernel");
  Tensor y = empty({N, M, g.OH, g.OW}, DType::f32);
  const Tensor xc = x.contiguous();
  const bool copy = g.mode != Geometry::in_place || g.Vr != g.V;
  const int64_t cols = copy ? g.Vr : g.V;  // the kernel's columns (those past OH·OW dropped)
  // Uninitialized (every element is written before it is read): zeroing them cost 10 % of a
  // small layer.
  const std::unique_ptr<float[]> buf(copy ? new float[size_t(g.copy)] : nullptr),
      grid(cols != g.OH * g.OW ? new float[size_t(M * cols)] : nullptr);
  for (int64_t i = 0; i < N; ++i) {
    const float* xi = xc.data<float>() + i * C_ * H * W;
    if (copy) copy_image(xi, C_, H, W, KH_, KW_, p_, g, 0.0f, [](float v) { return v; }, buf.get());
    const float* src = copy ? buf.get() : xi;
    float* yi = y.data<float>() + i * M * g.OH * g.OW;
    float* out = grid ? grid.get() : yi;
    split(w_, cols, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
      f32_spmm(w_, bias_.data(), act_, src, g.koff.data(), n0, n1, m0, m1, out, cols);
    });
    if (grid) drop_columns(grid.get(), cols, M, g, yi);
  }
  return y;
}

F32SparseLinear::F32SparseLinear(const Tensor& w, const Tensor& bias, FusedAct act) : act_(act) {
  constexpr const char* op = "F32SparseLinear";
  if (!w.defined() || w.dtype() != DType::f32 || w.dim() != 2 || w.size(0) < 1)
    fail(op, ": expected the weight as F32 [OC, K] (OC >= 1), got ", describe(w));
  const Tensor wc = w.contiguous();
  w_ = sparse_rows(wc.data<float>(), w.size(0), w.size(1));
  bias_ = f32_bias(op, bias, w.size(0));
}

Tensor F32SparseLinear::run(const Tensor& x) const {
  constexpr const char* op = "F32SparseLinear";
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1 || x.size(-1) != w_.K)
    fail(op, ": expected input x as F32 [.., ", w_.K, "], got ", describe(x));
  Shape shape = x.shape();
  shape.back() = w_.M;
  Tensor y = empty(shape, DType::f32);
  const int64_t R = y.numel() / w_.M, K = w_.K, M = w_.M;
  if (R == 0) return y;
  const Tensor xc = x.contiguous();
  const float* xp = xc.data<float>();
  float* yp = y.data<float>();
  if (R < kSpmmRows) {
    for (int64_t r = 0; r < R; ++r)
      split_rows(w_, [&](int64_t m0, int64_t m1) { f32_spmv(w_, bias_.data(), act_, xp + r * K, m0, m1, yp + r * M); });
    return y;
  }
  const int64_t Rr = round_up(R);  // columns R..Rr−1 are zeros, computed and dropped
  std::vector<float> xt(size_t(K * Rr)), yt(size_t(M * Rr));
  transpose(xp, R, K, Rr, xt.data());
  const std::vector<int64_t> koff = row_offsets(K, Rr);
  split(w_, Rr, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
    f32_spmm(w_, bias_.data(), act_, xt.data(), koff.data(), n0, n1, m0, m1, yt.data(), Rr);
  });
  for (int64_t r = 0; r < R; ++r)
    for (int64_t m = 0; m < M; ++m) yp[r * M + m] = yt[size_t(m * Rr + r)];
  return y;
}

// ---- int8 ----

QSparseConv2d::QSparseConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m,
                             const ops::Conv2dParams& p, DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin,
                             int32_t qmax, DType out_dtype)
    : p_(p), x_dtype_(x_dtype), out_dtype_(out_dtype) {
  constexpr const char* op = "QSparseConv2d";
  check_conv_params(op, p);
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 4 || w.size(0) < 1 || w.size(1) < 1 || w.size(2) < 1 ||
      w.size(3) < 1)
    fail(op, ": expected the weight as I8 [OC, C, KH, KW], got ", describe(w));
  if (x_dtype != DType::i8 && x_dtype != DType::u8) fail(op, ": expected an I8 or U8 input type");
  check_zero_point(op, "input zero point", zx, x_dtype);
  check_output(op, z_out, qmin, qmax, out_dtype);
  C_ = w.size(1), KH_ = w.size(2), KW_ = w.size(3);
  zx_u8_ = x_dtype == DType::i8 ? zx + 128 : zx;
  oq_ = {z_out, qmin, qmax, out_dtype == DType::u8};
  const Tensor wc = w.contiguous();
  const int64_t K = C_ * KH_ * KW_;
  w_ = sparse_rows(wc.data<int8_t>(), w.size(0), K);
  rq_ = int8_rows(op, wc.data<int8_t>(), w.size(0), K, bias, m, zx_u8_);
  // Not for 1×1 convs: their channel-quad copy of the input cost more than the kernel saved
  // (bench_sparse: a 144→24 1×1 on 16×16 at 98 % ran 1.87× dense with quads, 0.40× without).
  quad_ = qs8_quad_kernel() && KH_ * KW_ > 1;
  if (quad_) wq_ = sparse_quads(wc.data<int8_t>(), w.size(0), C_, KH_ * KW_);
}

Tensor QSparseConv2d::run_quads(const Tensor& x) const {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), M = w_.M;
  const Geometry g = quad_geometry(C_, H, W, KH_, KW_, p_);
  Tensor y = empty({N, M, g.OH, g.OW}, out_dtype_);
  const Tensor xc = x.contiguous();
  const uint8_t flip = x_dtype_ == DType::i8 ? 0x80 : 0;
  const int64_t cols = g.Vr;
  const std::unique_ptr<uint8_t[]> buf(new uint8_t[size_t(g.copy)]),
      grid(cols != g.OH * g.OW ? new uint8_t[size_t(M * cols)] : nullptr);
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t* xi = static_cast<const uint8_t*>(xc.raw_data()) + i * C_ * H * W;
    copy_quads(xi, C_, H, W, KH_, KW_, p_, g, uint8_t(zx_u8_), flip, buf.get());
    uint8_t* yi = static_cast<uint8_t*>(y.raw_data()) + i * M * g.OH * g.OW;
    uint8_t* out = grid ? grid.get() : yi;
    split(wq_, cols, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
      qs8_spmm_quad(wq_, rq_.data(), oq_, buf.get(), g.koff.data(), n0, n1, m0, m1, out, cols);
    });
    if (grid) drop_columns(grid.get(), cols, M, g, yi);
  }
  return y;
}

Tensor QSparseConv2d::run(const Tensor& x) const {
  constexpr const char* op = "QSparseConv2d";
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() != 4 || x.size(1) != C_)
    fail(op, ": expected input x as ", x_dtype_ == DType::i8 ? "I8" : "U8", " [N, ", C_, ", H, W], got ", describe(x));
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), M = w_.M;
  const Geometry g = geometry(C_, H, W, KH_, KW_, p_);
  if (g.OH < 1 || g.OW < 1) fail(op, ": the input ", describe(x), " is smaller than the dilated kernel");
  if (quad_) return run_quads(x);
  Tensor y = empty({N, M, g.OH, g.OW}, out_dtype_);
  const Tensor xc = x.contiguous();
  // u8 codes (i8 code c -> c + 128); padding is the zero point, whose taps the offset cancels.
  const uint8_t flip = x_dtype_ == DType::i8 ? 0x80 : 0;
  const bool copy = g.mode != Geometry::in_place || flip != 0 || g.Vr != g.V;
  const int64_t cols = copy ? g.Vr : g.V;
  const std::unique_ptr<uint8_t[]> buf(copy ? new uint8_t[size_t(g.copy)] : nullptr),
      grid(cols != g.OH * g.OW ? new uint8_t[size_t(M * cols)] : nullptr);
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t* xi = static_cast<const uint8_t*>(xc.raw_data()) + i * C_ * H * W;
    if (copy)
      copy_image(xi, C_, H, W, KH_, KW_, p_, g, uint8_t(zx_u8_), [flip](uint8_t v) { return uint8_t(v ^ flip); },
                 buf.get());
    const uint8_t* src = copy ? buf.get() : xi;
    uint8_t* yi = static_cast<uint8_t*>(y.raw_data()) + i * M * g.OH * g.OW;
    uint8_t* out = grid ? grid.get() : yi;
    split(w_, cols, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
      qs8_spmm(w_, rq_.data(), oq_, src, g.koff.data(), n0, n1, m0, m1, out, cols);
    });
    if (grid) drop_columns(grid.get(), cols, M, g, yi);
  }
  return y;
}

QSparseLinear::QSparseLinear(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, DType x_dtype,
                             int32_t zx, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype)
    : x_dtype_(x_dtype), out_dtype_(out_dtype) {
  constexpr const char* op = "QSparseLinear";
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 2 || w.size(0) < 1)
    fail(op, ": expected the weight as I8 [OC, K] (OC >= 1), got ", describe(w));
  if (x_dtype != DType::i8 && x_dtype != DType::u8) fail(op, ": expected an I8 or U8 input type");
  check_zero_point(op, "input zero point", zx, x_dtype);
  check_output(op, z_out, qmin, qmax, out_dtype);
  zx_u8_ = x_dtype == DType::i8 ? zx + 128 : zx;
  oq_ = {z_out, qmin, qmax, out_dtype == DType::u8};
  const Tensor wc = w.contiguous();
  w_ = sparse_rows(wc.data<int8_t>(), w.size(0), w.size(1));
  rq_ = int8_rows(op, wc.data<int8_t>(), w.size(0), w.size(1), bias, m, zx_u8_);
}

Tensor QSparseLinear::run(const Tensor& x) const {
  constexpr const char* op = "QSparseLinear";
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() < 1 || x.size(-1) != w_.K)
    fail(op, ": expected input x as ", x_dtype_ == DType::i8 ? "I8" : "U8", " [.., ", w_.K, "], got ", describe(x));
  Shape shape = x.shape();
  shape.back() = w_.M;
  Tensor y = empty(shape, out_dtype_);
  const int64_t R = y.numel() / w_.M, K = w_.K, M = w_.M;
  if (R == 0) return y;
  const Tensor xc = x.contiguous();
  std::vector<uint8_t> xu(size_t(R * K));
  qs8::to_u8(xc.raw_data(), x_dtype_ == DType::i8, R * K, xu.data());
  auto* out = static_cast<uint8_t*>(y.raw_data());
  if (R < kSpmmRows) {
    std::vector<int32_t> xi(static_cast<size_t>(K));
    for (int64_t r = 0; r < R; ++r) {
      std::copy(xu.begin() + r * K, xu.begin() + (r + 1) * K, xi.begin());
      split_rows(w_, [&](int64_t m0, int64_t m1) { qs8_spmv(w_, rq_.data(), oq_, xi.data(), m0, m1, out + r * M); });
    }
    return y;
  }
  const int64_t Rr = round_up(R);
  std::vector<uint8_t> xt(size_t(K * Rr)), yt(size_t(M * Rr));
  transpose(xu.data(), R, K, Rr, xt.data());
  const std::vector<int64_t> koff = row_offsets(K, Rr);
  split(w_, Rr, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
    qs8_spmm(w_, rq_.data(), oq_, xt.data(), koff.data(), n0, n1, m0, m1, yt.data(), Rr);
  });
  for (int64_t r = 0; r < R; ++r)
    for (int64_t m = 0; m < M; ++m) out[r * M + m] = yt[size_t(m * Rr + r)];
  return y;
}

}  // namespace finch::quant::kernels
