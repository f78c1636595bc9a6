// Highway kernel of qs8_max_pool2d: vectors of 8-bit codes across the output width.
//
// Shapes: x [P, H, W], y [P, OH, OW]; one plane at a time. As in qs8_dwconv_hwy.cc the plane is
// copied into a padded, stride-phase-split scratch (padded column pc in phase pc % sw at column
// pc / sw), so the window cell kw of output ow is one unit-stride load at phase kw % sw, column
// ow + kw / sw. Padding and everything past the input (ceil_mode windows) hold the smallest code
// of the dtype: it can never beat an input cell, and every window holds at least one input cell
// (checked by the operator), so the max equals the reference's max over input cells only.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/qs8_eltwise_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_maxpool_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Window (KH, KW) known at compile time (the 2×2 and 3×3 pools of ResNet/VGG) or not (K == 0).
template <int KH, int KW, typename T>
void PoolPlane(const MaxPoolArgs& a, const T* xs, int64_t Lp, int64_t row, T* y, T* tail) {
  const hn::ScalableTag<T> d;
  const int64_t L = int64_t(hn::Lanes(d)), kh_n = KH ? KH : a.KH, kw_n = KW ? KW : a.KW;
  for (int64_t oh = 0; oh < a.OH; ++oh) {
    T* out = y + oh * a.OW;
    for (int64_t ow = 0; ow < a.OW; ow += L) {
      const T* base = xs + oh * a.sh * row + ow;
      auto m = hn::LoadU(d, base);
      for (int64_t kh = 0; kh < kh_n; ++kh)
        for (int64_t kw = 0; kw < kw_n; ++kw)
          m = hn::Max(m, hn::LoadU(d, base + kh * row + (kw % a.sw) * Lp + kw / a.sw));
      if (ow + L <= a.OW) {
        hn::StoreU(m, d, out + ow);
      } else {
        hn::Store(m, d, tail);
        std::memcpy(out + ow, tail, size_t(a.OW - ow) * sizeof(T));
      }
    }
  }
}

template <typename T>
void Planes(const MaxPoolArgs& a, int64_t p_begin, int64_t p_end) {
  const hn::ScalableTag<T> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const T lowest = std::is_signed_v<T> ? T(-128) : T(0);
  const int64_t OWr = (a.OW + L - 1) / L * L;
  const int64_t R = std::max((a.OH - 1) * a.sh + a.KH, a.H + a.ph);  // rows from the top padding
  const int64_t Lp = std::max(OWr + (a.KW - 1) / a.sw, (a.W + a.pw + a.sw - 1) / a.sw);
  const int64_t row = a.sw * Lp;
  // Filled with `lowest` once: every plane overwrites the same input cells, the rest stays.
  std::vector<T> xs(size_t(R * row), lowest);
  HWY_ALIGN T tail[HWY_MAX_BYTES];
  const bool k2s2 = a.KH == 2 && a.KW == 2 && a.sh == 2 && a.sw == 2, k3 = a.KH == 3 && a.KW == 3;
  for (int64_t p = p_begin; p < p_end; ++p) {
    const T* x = static_cast<const T*>(a.x) + p * a.H * a.W;
    for (int64_t ih = 0; ih < a.H; ++ih) {
      T* dst = xs.data() + (ih + a.ph) * row;
      if (a.sw == 1) {
        std::memcpy(dst + a.pw, x + ih * a.W, size_t(a.W) * sizeof(T));
      } else {
        // Phase and column of padded column pc = iw + pw stepped, not divided: a 64-bit
        // division per code made this copy most of a 1-D pool's time (HarCNN's [C, 1, L] planes).
        int64_t phase = a.pw % a.sw, col = a.pw / a.sw;
        for (int64_t iw = 0; iw < a.W; ++iw) {
          dst[phase * Lp + col] = x[ih * a.W + iw];
          if (++phase == a.sw) phase = 0, ++col;
        }
      }
    }
    T* y = static_cast<T*>(a.y) + p * a.OH * a.OW;
    if (k2s2)
      PoolPlane<2, 2>(a, xs.data(), Lp, row, y, tail);
    else if (k3)
      PoolPlane<3, 3>(a, xs.data(), Lp, row, y, tail);
    else
      PoolPlane<0, 0>(a, xs.data(), Lp, row, y, tail);
  }
}

void MaxPoolPlanes(const MaxPoolArgs& a, int64_t p_begin, int64_t p_end) {
  a.u8 ? Planes<uint8_t>(a, p_begin, p_end) : Planes<int8_t>(a, p_begin, p_end);
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(MaxPoolPlanes);

void qs8_max_pool2d_planes(const MaxPoolArgs& a, int64_t p_begin, int64_t p_end) {
  FINCH_DISPATCH(MaxPoolPlanes)(a, p_begin, p_end);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
