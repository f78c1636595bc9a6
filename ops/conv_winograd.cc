// Winograd F(2×2, 3×3) convolution for 3×3, stride-1, dilation-1, ungrouped F32 convs
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each 2×2 output
// tile costs 16 multiplies per (OC, C) pair instead of 36, as 16 GEMMs [OC, C]·[C, tiles].
// Used for the forward and — as a conv of dY with the flipped, transposed kernel — for dX.
//
// Shapes: x [N, C, H, W], weight [OC, C, 3, 3], y [N, OC, OH, OW]; tiles TH = ⌈OH/2⌉, TW = ⌈OW/2⌉.
// U [16, OC, C] = G·g·Gᵀ, V [16, C, tiles] = Bᵀ·d·B, M = U·V, y tile = Aᵀ·m·A.
// The transforms only add and halve, so F(2, 3) loses almost nothing in fp32 (the larger F(4, 3)
// would cut multiplies further but its ±4, ±8 coefficients cost accuracy).
//
// The padded image is stored split into even and odd columns, so the four columns a tile reads
// (2·tw .. 2·tw+3) are E[tw], O[tw], E[tw+1], O[tw+1]: four contiguous vector loads across tiles.
// The transforms are Highway kernels (the build's baseline is SSE2, so plain loops would not use
// AVX2/AVX-512); the 16 GEMMs go to OpenBLAS.
//
// Small maps (ResNet-20's 28×28, 14×14, 7×7 give 14, 7 and 4 tiles per row) would leave a
// 16-lane vector loop with nothing but scalar tails, so the vector width is picked per conv
// (4, 8 or 16 lanes, whichever pads a tile row least) and every tile row is padded to a whole
// number of vectors: the padding tiles read the zero border and are computed but never stored.
// When an image has few tiles, several images share one tile block so that the 16 GEMMs stay
// wide (a 7×7 map alone gives GEMMs only 16 columns wide).
#include <algorithm>
#include <cstring>
#include <vector>

#include "framework/parallel.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/im2col.h"

#ifndef FINCH_OPS_WINOGRAD_GEOM
#define FINCH_OPS_WINOGRAD_GEOM
namespace finch::ops::wino {
struct Geom {
  int64_t C, H, W, OC, OH, OW, ph, pw, TH, TW, Hp, Wh, rows;  // Wh: columns per phase plane
  int64_t TWp;  // tiles per row padded to whole vectors (the column stride of a tile row)
  int cap;      // vector lanes the transforms use (4, 8 or 16, capped by the target)
  int64_t imgs;  // images per tile block (rows == TH when > 1)
  int64_t plane() const { return Hp * Wh; }  // one phase plane
};
}  // namespace finch::ops::wino
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/conv_winograd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "framework/simd_dispatch.h"

HWY_BEFORE_NAMESPACE();
namespace finch::ops::wino {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Bᵀ·d·B for the tile rows [th0, th1) of one image into V [16, C, ld] at columns
// (th − th0)·TWp + tw; d B along a row is (d0 − d2, d1 + d2, d2 − d1, d1 − d3), then the same
// combination down the columns.
template <class D>
void InputT(D d, const float* P, const Geom& k, int64_t th0, int64_t th1, float* V, int64_t ld) {
  const int64_t L = int64_t(hn::Lanes(d));
  const int64_t xs = k.C * ld;
  for (int64_t c = 0; c < k.C; ++c)
    for (int64_t th = th0; th < th1; ++th) {
      const float* E = P + c * 2 * k.plane() + 2 * th * k.Wh;  // even columns, row 2·th
      const float* O = E + k.plane();                            // odd columns
      float* v = V + c * ld + (th - th0) * k.TWp;
      for (int64_t tw = 0; tw < k.TWp; tw += L) {
#define FINCH_WINO_ROW(i)                                                             \
  const auto a##i = hn::LoadU(d, E + i * k.Wh + tw), b##i = hn::LoadU(d, O + i * k.Wh + tw); \
  const auto c##i = hn::LoadU(d, E + i * k.Wh + tw + 1), e##i = hn::LoadU(d, O + i * k.Wh + tw + 1); \
  const auto r##i##0 = hn::Sub(a##i, c##i), r##i##1 = hn::Add(b##i, c##i);           \
  const auto r##i##2 = hn::Sub(c##i, b##i), r##i##3 = hn::Sub(b##i, e##i);
        FINCH_WINO_ROW(0)
        FINCH_WINO_ROW(1)
        FINCH_WINO_ROW(2)
        FINCH_WINO_ROW(3)
#undef FINCH_WINO_ROW
#define FINCH_WINO_COL(j)                                                       \
  hn::StoreU(hn::Sub(r0##j, r2##j), d, v + (0 * 4 + j) * xs + tw);             \
  hn::StoreU(hn::Add(r1##j, r2##j), d, v + (1 * 4 + j) * xs + tw);             \
  hn::StoreU(hn::Sub(r2##j, r1##j), d, v + (2 * 4 + j) * xs + tw);             \
  hn::StoreU(hn::Sub(r1##j, r3##j), d, v + (3 * 4 + j) * xs + tw);
        FINCH_WINO_COL(0)
        FINCH_WINO_COL(1)
        FINCH_WINO_COL(2)
        FINCH_WINO_COL(3)
#undef FINCH_WINO_COL
      }
    }
}

// y tile = Aᵀ·m·A + bias, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]], for the tile rows [th0, th1) of
// one image whose M [16, OC, ld] columns start at M. Vectors of whole tiles are stored with an
// interleaving store; the last vector of a row, which may hold padding tiles or a half tile
// (odd OW), goes through a small buffer and only its valid outputs are copied.
template <class D>
void OutputT(D d, const float* M, const Geom& k, int64_t th0, int64_t th1, int64_t ld,
             const float* bias, float* y) {
  const int64_t L = int64_t(hn::Lanes(d));
  const int64_t xs = k.OC * ld;
  HWY_ALIGN float buf[2 * HWY_MAX_BYTES / sizeof(float)];
  // The first `valid` (< 2L) of the interleaved outputs: masked stores, not a memcpy call per
  // row (a libc call for a few floats cost ~4% of a ResNet-20 step). Only where BlendedStore is a
  // real masked store (x86 AVX2 and up): on NEON and SSE4 Highway 1.0.3 emulates it by loading,
  // blending and storing the whole vector, which rewrites the floats past `valid` — the next
  // image's outputs, which another thread may be writing (a 5×1 map lost its neighbour's first
  // output that way under qemu). There the floats are copied one by one.
  auto store_partial = [&](auto e, auto o, int64_t valid, float* dst) {
    hn::StoreInterleaved2(e, o, d, buf);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    hn::BlendedStore(hn::Load(d, buf), hn::FirstN(d, size_t(std::min(valid, L))), d, dst);
    if (valid > L) hn::BlendedStore(hn::Load(d, buf + L), hn::FirstN(d, size_t(valid - L)), d, dst + L);
#else
    for (int64_t i = 0; i < valid; ++i) dst[i] = buf[i];
#endif
  };
  for (int64_t oc = 0; oc < k.OC; ++oc) {
    const auto bv = hn::Set(d, bias ? bias[oc] : 0.0f);
    float* yo = y + oc * k.OH * k.OW;
    for (int64_t th = th0; th < th1; ++th) {
      const float* m = M + oc * ld + (th - th0) * k.TWp;
      const int64_t oh = 2 * th;
      const bool two_rows = oh + 1 < k.OH;
      float* row0 = yo + oh * k.OW;
      float* row1 = row0 + k.OW;
      for (int64_t tw = 0; tw < k.TW; tw += L) {
#define FINCH_WINO_S(i)                                                                   \
  const auto m##i##0 = hn::LoadU(d, m + (i * 4 + 0) * xs + tw);                           \
  const auto m##i##1 = hn::LoadU(d, m + (i * 4 + 1) * xs + tw);                           \
  const auto m##i##2 = hn::LoadU(d, m + (i * 4 + 2) * xs + tw);                           \
  const auto m##i##3 = hn::LoadU(d, m + (i * 4 + 3) * xs + tw);                           \
  const auto s##i##0 = hn::Add(hn::Add(m##i##0, m##i##1), m##i##2);                       \
  const auto s##i##1 = hn::Sub(hn::Sub(m##i##1, m##i##2), m##i##3);
        FINCH_WINO_S(0)
        FINCH_WINO_S(1)
        FINCH_WINO_S(2)
        FINCH_WINO_S(3)
#undef FINCH_WINO_S
        const auto y00 = hn::Add(hn::Add(hn::Add(s00, s10), s20), bv);
        const auto y01 = hn::Add(hn::Add(hn::Add(s01, s11), s21), bv);
        const int64_t valid = std::min<int64_t>(2 * L, k.OW - 2 * tw);  // outputs of this vector
        if (valid == 2 * L) hn::StoreInterleaved2(y00, y01, d, row0 + 2 * tw);
        else store_partial(y00, y01, valid, row0 + 2 * tw);
        if (two_rows) {
          const auto y10 = hn::Add(hn::Sub(hn::Sub(s10, s20), s30), bv);
          const auto y11 = hn::Add(hn::Sub(hn::Sub(s11, s21), s31), bv);
          if (valid == 2 * L) hn::StoreInterleaved2(y10, y11, d, row1 + 2 * tw);
          else store_partial(y10, y11, valid, row1 + 2 * tw);
        }
      }
    }
  }
}

// A·dy·Aᵀ for the 2×2 dY tiles of the rows [th0, th1) of one image into E [16, OC, ld] (the
// weight gradient's counterpart of the output transform, A = [[1, 0], [1, 1], [1, −1], [0, −1]]);
// outputs beyond OH/OW are zero, and so are the padding tiles, so they add nothing to dW.
template <class D>
void DyT(D d, const float* dy, const Geom& k, int64_t th0, int64_t th1, int64_t ld, float* E) {
  const int64_t L = int64_t(hn::Lanes(d));
  const int64_t xs = k.OC * ld;
  // Each dY row is copied into a zero-tailed buffer 2·TWp long, so whole vectors of tiles
  // (padding tiles and the half tile of an odd OW included) deinterleave with full loads.
  std::vector<float> rb(size_t(4 * k.TWp), 0.0f);
  float* rb0 = rb.data();
  float* rb1 = rb0 + 2 * k.TWp;
  for (int64_t oc = 0; oc < k.OC; ++oc)
    for (int64_t th = th0; th < th1; ++th) {
      const float* r0 = dy + (oc * k.OH + 2 * th) * k.OW;
      const bool two_rows = 2 * th + 1 < k.OH;
      std::copy_n(r0, k.OW, rb0);
      if (two_rows) std::copy_n(r0 + k.OW, k.OW, rb1);
      float* e = E + oc * ld + (th - th0) * k.TWp;
      for (int64_t tw = 0; tw < k.TWp; tw += L) {
        hn::Vec<D> a0, b0, a1, b1;  // dY[2th + r][2tw + col]: a = even column, b = odd column
        hn::LoadInterleaved2(d, rb0 + 2 * tw, a0, b0);
        if (two_rows) hn::LoadInterleaved2(d, rb1 + 2 * tw, a1, b1);
        if (!two_rows) a1 = hn::Zero(d), b1 = hn::Zero(d);
        // Rows: t_i = A·dy along the tile's rows (per column a, b).
        const auto ta0 = a0, ta1 = hn::Add(a0, a1), ta2 = hn::Sub(a0, a1), ta3 = hn::Neg(a1);
        const auto tb0 = b0, tb1 = hn::Add(b0, b1), tb2 = hn::Sub(b0, b1), tb3 = hn::Neg(b1);
#define FINCH_WINO_DY(i)                                                     \
  hn::StoreU(ta##i, d, e + (i * 4 + 0) * xs + tw);                           \
  hn::StoreU(hn::Add(ta##i, tb##i), d, e + (i * 4 + 1) * xs + tw);           \
  hn::StoreU(hn::Sub(ta##i, tb##i), d, e + (i * 4 + 2) * xs + tw);           \
  hn::StoreU(hn::Neg(tb##i), d, e + (i * 4 + 3) * xs + tw);
        FINCH_WINO_DY(0)
        FINCH_WINO_DY(1)
        FINCH_WINO_DY(2)
        FINCH_WINO_DY(3)
#undef FINCH_WINO_DY
      }
    }
}

void DyTransform(const float* dy, const Geom& k, int64_t th0, int64_t th1, int64_t ld, float* E) {
  if (k.cap <= 4) return DyT(hn::CappedTag<float, 4>(), dy, k, th0, th1, ld, E);
  if (k.cap <= 8) return DyT(hn::CappedTag<float, 8>(), dy, k, th0, th1, ld, E);
  DyT(hn::CappedTag<float, 16>(), dy, k, th0, th1, ld, E);
}

// The lanes the transforms will use for a requested cap on this target.
int64_t CappedLanes(int cap) {
  if (cap <= 4) return int64_t(hn::Lanes(hn::CappedTag<float, 4>()));
  if (cap <= 8) return int64_t(hn::Lanes(hn::CappedTag<float, 8>()));
  return int64_t(hn::Lanes(hn::CappedTag<float, 16>()));
}

void InputTransform(const float* P, const Geom& k, int64_t th0, int64_t th1, float* V, int64_t ld) {
  if (k.cap <= 4) return InputT(hn::CappedTag<float, 4>(), P, k, th0, th1, V, ld);
  if (k.cap <= 8) return InputT(hn::CappedTag<float, 8>(), P, k, th0, th1, V, ld);
  InputT(hn::CappedTag<float, 16>(), P, k, th0, th1, V, ld);
}

void OutputTransform(const float* M, const Geom& k, int64_t th0, int64_t th1, int64_t ld,
                     const float* bias, float* y) {
  if (k.cap <= 4) return OutputT(hn::CappedTag<float, 4>(), M, k, th0, th1, ld, bias, y);
  if (k.cap <= 8) return OutputT(hn::CappedTag<float, 8>(), M, k, th0, th1, ld, bias, y);
  OutputT(hn::CappedTag<float, 16>(), M, k, th0, th1, ld, bias, y);
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::ops::wino
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops {
namespace wino {
HWY_EXPORT(InputTransform);
HWY_EXPORT(OutputTransform);
HWY_EXPORT(CappedLanes);
HWY_EXPORT(DyTransform);

// U[ξ][oc][c] = (G g Gᵀ)[ξ], G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
std::vector<float> transform_weights(const float* w, int64_t OC, int64_t C) {
  std::vector<float> U(size_t(16 * OC * C));
  for (int64_t oc = 0; oc < OC; ++oc)
    for (int64_t c = 0; c < C; ++c) {
      const float* g = w + (oc * C + c) * 9;
      float t[4][3];  // G·g
      for (int j = 0; j < 3; ++j) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; ++i) {
        const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                            0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; ++j) U[size_t(((i * 4 + j) * OC + oc) * C + c)] = u[j];
      }
    }
  return U;
}
}  // namespace wino

bool winograd_applies(int64_t C, int64_t OC, int64_t KH, int64_t KW, const Conv2dParams& p) {
  // Below ~8 channels the 16 GEMMs are too thin to beat im2col.
  return KH == 3 && KW == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1 && p.groups == 1 &&
         p.ph <= 2 && p.pw <= 2 && C >= 8 && OC >= 8;
}

namespace wino {

// Tiles, vector width and tile blocks of a conv of x [N, C, H, W] to OC channels.
Geom make_geom(int64_t C, int64_t H, int64_t W, int64_t OC, int64_t ph, int64_t pw) {
  Geom k;
  k.C = C, k.H = H, k.W = W, k.OC = OC, k.ph = ph, k.pw = pw;
  k.OH = k.H + 2 * ph - 2, k.OW = k.W + 2 * pw - 2;
  k.TH = (k.OH + 1) / 2, k.TW = (k.OW + 1) / 2;
  // The vector width whose padding of a tile row is least (ties to the wider vector).
  k.cap = 16, k.TWp = 0;
  for (int cap : {16, 8, 4}) {
    const int64_t L = FINCH_DISPATCH(wino::CappedLanes)(cap);
    const int64_t twp = (k.TW + L - 1) / L * L;
    if (k.TWp == 0 || twp < k.TWp) k.cap = cap, k.TWp = twp;
  }
  k.Hp = 2 * k.TH + 2, k.Wh = k.TWp + 1;
  // A block of ~256 tile columns keeps the GEMMs wide while V and M stay near L2: tile rows of
  // one image for large maps, several whole images for small ones.
  constexpr int64_t kTarget = 256;
  const int64_t img_cols = k.TH * k.TWp;
  k.rows = img_cols >= kTarget ? std::clamp<int64_t>(kTarget / k.TWp, 1, k.TH) : k.TH;
  k.imgs = img_cols >= kTarget ? 1 : std::max<int64_t>(1, kTarget / img_cols);
  return k;
}

// Copies the images [n0, n0 + nb) of x into their padded, even/odd-split planes
// P [nb, C, 2, Hp, Wh] (whose border the caller zeroed).
void pack_images(const float* px, const Geom& k, int64_t n0, int64_t nb, float* P) {
  const size_t pimg = size_t(k.C * 2 * k.plane());
  // Padded column s = iw + pw goes to phase s & 1 at s >> 1: two strided copies, which the
  // compiler vectorizes (one loop with a computed phase did not).
  const int64_t a = k.pw & 1;  // the first source column that lands in the even phase
  const int64_t ne = (k.W - a + 1) / 2, no = (k.W - (1 - a) + 1) / 2;
  const int64_t e0 = (a + k.pw) >> 1, o0 = (1 - a + k.pw) >> 1;
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t c = 0; c < k.C; ++c) {
      float* E = P + size_t(j) * pimg + c * 2 * k.plane();
      for (int64_t ih = 0; ih < k.H; ++ih) {
        const float* src = px + (((n0 + j) * k.C + c) * k.H + ih) * k.W;
        float* ev = E + (ih + k.ph) * k.Wh + e0;
        float* od = E + k.plane() + (ih + k.ph) * k.Wh + o0;
        for (int64_t i = 0; i < ne; ++i) ev[i] = src[2 * i + a];
        for (int64_t i = 0; i < no; ++i) od[i] = src[2 * i + 1 - a];
      }
    }
}

}  // namespace wino

Tensor conv2d_winograd(const Tensor& xin, const Tensor& win, const Tensor& bin, int64_t ph, int64_t pw) {
  const Tensor x = xin.contiguous(), w = win.contiguous();
  const Tensor b = bin.defined() ? bin.contiguous() : Tensor();
  FINCH_CHECK(x.dim() == 4 && w.dim() == 4 && x.dtype() == DType::f32 && w.dtype() == DType::f32 &&
                  w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3 &&
                  x.size(2) + 2 * ph > 2 && x.size(3) + 2 * pw > 2,
              "conv2d_winograd: x ", shape_str(x.shape()), " w ", shape_str(w.shape()));
  const wino::Geom k = wino::make_geom(x.size(1), x.size(2), x.size(3), w.size(0), ph, pw);
  const int64_t N = x.size(0), imgs = k.imgs;
  Tensor y = empty({N, k.OC, k.OH, k.OW}, DType::f32);
  const std::vector<float> U = wino::transform_weights(w.data<float>(), k.OC, k.C);
  const float *px = x.data<float>(), *pb = b.defined() ? b.data<float>() : nullptr;
  float* py = y.data<float>();
  const int64_t threads = get_num_threads(), chunks = N >= threads ? threads : 1;
  auto run = [&](int64_t n0, int64_t n1) {
    const int64_t nb_max = std::min(imgs, n1 - n0);
    // P [nb, C, 2 phases, Hp, Wh]: zero border written once, interior overwritten per image.
    const size_t pimg = size_t(k.C * 2 * k.plane());
    std::vector<float> P(size_t(nb_max) * pimg, 0.0f);
    const size_t cmax = size_t(nb_max * k.rows * k.TWp);
    float* V = conv_scratch<float, 2>(16 * size_t(k.C) * cmax);
    float* M = conv_scratch<float, 3>(16 * size_t(k.OC) * cmax);
    for (int64_t nb0 = n0; nb0 < n1; nb0 += nb_max) {
      const int64_t nb = std::min(nb_max, n1 - nb0);
      wino::pack_images(px, k, nb0, nb, P.data());
      for (int64_t th0 = 0; th0 < k.TH; th0 += k.rows) {
        const int64_t th1 = std::min(k.TH, th0 + k.rows), per = (th1 - th0) * k.TWp, ld = nb * per;
        for (int64_t j = 0; j < nb; ++j)
          FINCH_DISPATCH(wino::InputTransform)(P.data() + size_t(j) * pimg, k, th0, th1,
                                                     V + j * per, ld);
        for (int xi = 0; xi < 16; ++xi)
          sgemm(false, false, k.OC, ld, k.C, 1.0f, U.data() + xi * k.OC * k.C, k.C,
                V + xi * k.C * ld, ld, 0.0f, M + xi * k.OC * ld, ld);
        for (int64_t j = 0; j < nb; ++j)
          FINCH_DISPATCH(wino::OutputTransform)(M + j * per, k, th0, th1, ld, pb,
                                                      py + (nb0 + j) * k.OC * k.OH * k.OW);
      }
    }
  };
  if (chunks == 1) run(0, N);
  else parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) run(c * N / chunks, (c + 1) * N / chunks);
  });
  return y;
}

// dW [OC, C, 3, 3] of the Winograd conv (stride 1, padding ph, pw) from x [N, C, H, W] and
// dy [N, OC, OH, OW]. The forward is y_tile = Aᵀ[U ⊙ V]A with U = G·g·Gᵀ, so
// dL/dg = Gᵀ·(Σ_tiles (A·dy_tile·Aᵀ) ⊙ V)·G: per ξ one GEMM [OC, tiles]·[tiles, C] whose inner
// dimension is every tile of the chunk — 16·OC·C multiplies per 2×2 tile against 36·OC·C for
// the im2col GEMM, and no patch matrix.
Tensor conv2d_winograd_dweight(const Tensor& xin, const Tensor& dyin, int64_t ph, int64_t pw) {
  const Tensor x = xin.contiguous(), dy = dyin.contiguous();
  const wino::Geom k = wino::make_geom(x.size(1), x.size(2), x.size(3), dy.size(1), ph, pw);
  FINCH_CHECK(x.dtype() == DType::f32 && dy.dtype() == DType::f32 && dy.size(0) == x.size(0) &&
                  dy.size(2) == k.OH && dy.size(3) == k.OW,
              "conv2d_winograd_dweight: x ", shape_str(x.shape()), " dy ", shape_str(dy.shape()));
  const int64_t N = x.size(0), imgs = k.imgs;
  const float *px = x.data<float>(), *pdy = dy.data<float>();
  const int64_t threads = get_num_threads(), chunks = N >= threads ? threads : 1;
  // One partial Σ (A·dy·Aᵀ) ⊙ V [16, OC, C] per chunk, summed in chunk order (deterministic).
  std::vector<std::vector<float>> part(size_t(chunks), std::vector<float>(size_t(16 * k.OC * k.C), 0.0f));
  auto run = [&](int64_t ci, int64_t n0, int64_t n1) {
    const int64_t nb_max = std::min(imgs, n1 - n0);
    const size_t pimg = size_t(k.C * 2 * k.plane());
    std::vector<float> P(size_t(nb_max) * pimg, 0.0f);
    const size_t cmax = size_t(nb_max * k.rows * k.TWp);
    float* V = conv_scratch<float, 2>(16 * size_t(k.C) * cmax);
    float* E = conv_scratch<float, 3>(16 * size_t(k.OC) * cmax);
    float* acc = part[size_t(ci)].data();
    for (int64_t nb0 = n0; nb0 < n1; nb0 += nb_max) {
      const int64_t nb = std::min(nb_max, n1 - nb0);
      wino::pack_images(px, k, nb0, nb, P.data());
      for (int64_t th0 = 0; th0 < k.TH; th0 += k.rows) {
        const int64_t th1 = std::min(k.TH, th0 + k.rows), per = (th1 - th0) * k.TWp, ld = nb * per;
        for (int64_t j = 0; j < nb; ++j) {
          FINCH_DISPATCH(wino::InputTransform)(P.data() + size_t(j) * pimg, k, th0, th1,
                                                     V + j * per, ld);
          FINCH_DISPATCH(wino::DyTransform)(pdy + (nb0 + j) * k.OC * k.OH * k.OW, k, th0,
                                                  th1, ld, E + j * per);
        }
        for (int xi = 0; xi < 16; ++xi)
          sgemm(false, true, k.OC, k.C, ld, 1.0f, E + xi * k.OC * ld, ld, V + xi * k.C * ld, ld,
                1.0f, acc + xi * k.OC * k.C, k.C);
      }
    }
  };
  if (chunks == 1) run(0, 0, N);
  else parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) run(c, c * N / chunks, (c + 1) * N / chunks);
  });
  // dW[oc, c] = Gᵀ·M·G, M[i][j] = Σ_chunks part[i·4 + j][oc][c], G = [[1, 0, 0], [½, ½, ½],
  // [½, −½, ½], [0, 0, 1]].
  Tensor dw = empty({k.OC, k.C, 3, 3}, DType::f32);
  float* pdw = dw.data<float>();
  const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  for (int64_t oc = 0; oc < k.OC; ++oc)
    for (int64_t c = 0; c < k.C; ++c) {
      float m[4][4];
      for (int xi = 0; xi < 16; ++xi) {
        float v = 0;
        for (const auto& pc : part) v += pc[size_t((xi * k.OC + oc) * k.C + c)];
        m[xi / 4][xi % 4] = v;
      }
      float t[3][4];  // Gᵀ·M
      for (int a = 0; a < 3; ++a)
        for (int j = 0; j < 4; ++j)
          t[a][j] = G[0][a] * m[0][j] + G[1][a] * m[1][j] + G[2][a] * m[2][j] + G[3][a] * m[3][j];
      for (int a = 0; a < 3; ++a)
        for (int bb = 0; bb < 3; ++bb)
          pdw[(oc * k.C + c) * 9 + a * 3 + bb] =
              t[a][0] * G[0][bb] + t[a][1] * G[1][bb] + t[a][2] * G[2][bb] + t[a][3] * G[3][bb];
    }
  return dw;
}

}  // namespace finch::ops
#endif  // HWY_ONCE
