// im2col / col2im with the valid output-column range of each row computed once, so the inner
// loop is a straight copy (memcpy at stride 1) with no per-pixel bounds test.
#include "ops/im2col.h"

#include <algorithm>
#include <cstring>

namespace finch::ops {

namespace {

// The output columns ow in [lo, hi) whose input column ow·sw − pw + off lies in [0, W).
inline void valid_range(int64_t off, const ConvGeometry& g, int64_t& lo, int64_t& hi) {
  // iw = ow·sw + (off − pw) >= 0  ⇔  ow >= ceil((pw − off) / sw)
  const int64_t a = g.pw - off;
  lo = a <= 0 ? 0 : (a + g.sw - 1) / g.sw;
  // iw <= W − 1  ⇔  ow <= floor((W − 1 + pw − off) / sw)
  const int64_t b = g.W - 1 + g.pw - off;
  hi = b < 0 ? 0 : b / g.sw + 1;
  lo = std::min(lo, g.OW);
  hi = std::clamp(hi, lo, g.OW);
}

}  // namespace

// Stride 1 with OW == W ("same" padding): the patch row of (c, kh, kw) over output rows is the
// input plane read at one constant offset, so it is one long copy; only the columns that fall
// into the left/right padding (garbage from the neighbouring input row) are zeroed afterwards.
// ResNet-20's maps have 28-, 14- and 7-float rows, where a copy call per row cost more than
// the copying.
template <typename T>
void im2col_same_rows(const T* x, const ConvGeometry& g, int64_t oh0, int64_t oh1, T* col) {
  const int64_t OHW = (oh1 - oh0) * g.OW, W = g.W;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      // Output rows [a, b) read input rows a − ph + kh·dh inside [0, H).
      const int64_t off_h = kh * g.dh - g.ph;
      const int64_t a = std::clamp<int64_t>(-off_h, oh0, oh1), b = std::clamp<int64_t>(g.H - off_h, a, oh1);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * OHW;
        std::fill(row, row + (a - oh0) * W, T(0));
        std::fill(row + (b - oh0) * W, row + OHW, T(0));
        if (b == a) continue;
        int64_t lo, hi;
        valid_range(kw * g.dw, g, lo, hi);
        if (hi <= lo) {
          std::fill(row + (a - oh0) * W, row + (b - oh0) * W, T(0));
          continue;
        }
        const int64_t col_off = kw * g.dw - g.pw;
        T* out = row + (a - oh0) * W;
        const T* in = x + (c * g.H + a + off_h) * W + col_off;
        // From (first row, lo) to (last row, hi − 1): every read stays inside the input plane.
        std::memcpy(out + lo, in + lo, sizeof(T) * size_t((b - a - 1) * W + hi - lo));
        if (lo > 0 || hi < W)
          for (int64_t r = 0; r < b - a; ++r) {
            T* o = out + r * W;
            for (int64_t ow = 0; ow < lo; ++ow) o[ow] = T(0);
            for (int64_t ow = hi; ow < W; ++ow) o[ow] = T(0);
          }
      }
    }
}

template <typename T>
void im2col(const T* x, const ConvGeometry& g, int64_t oh0, int64_t oh1, T* col) {
  if (g.sh == 1 && g.sw == 1 && g.OW == g.W) return im2col_same_rows(x, g, oh0, oh1, col);
  const int64_t OHW = (oh1 - oh0) * g.OW;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * OHW;
        int64_t lo, hi;
        valid_range(kw * g.dw, g, lo, hi);
        const int64_t col_off = kw * g.dw - g.pw;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* out = row + (oh - oh0) * g.OW;
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(out, out + g.OW, T(0));
            continue;
          }
          const T* in = x + (c * g.H + ih) * g.W;
          std::fill(out, out + lo, T(0));
          if (g.sw == 1) {
            if (hi > lo) std::memcpy(out + lo, in + lo + col_off, sizeof(T) * size_t(hi - lo));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.sw + col_off];
          }
          std::fill(out + hi, out + g.OW, T(0));
        }
      }
}

template <typename T>
void col2im(const T* col, const ConvGeometry& g, int64_t oh0, int64_t oh1, T* dx) {
  const int64_t OHW = (oh1 - oh0) * g.OW;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* row = col + ((c * g.KH + kh) * g.KW + kw) * OHW;
        int64_t lo, hi;
        valid_range(kw * g.dw, g, lo, hi);
        const int64_t col_off = kw * g.dw - g.pw;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* src = row + (oh - oh0) * g.OW;
          T* out = dx + (c * g.H + ih) * g.W + col_off;
          if (g.sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow * g.sw] += src[ow];
          }
        }
      }
}

template void im2col<float>(const float*, const ConvGeometry&, int64_t, int64_t, float*);
template void im2col<double>(const double*, const ConvGeometry&, int64_t, int64_t, double*);
template void col2im<float>(const float*, const ConvGeometry&, int64_t, int64_t, float*);
template void col2im<double>(const double*, const ConvGeometry&, int64_t, int64_t, double*);

}  // namespace finch::ops
