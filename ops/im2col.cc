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

template <typename T>
void im2col(const T* x, const ConvGeometry& g, int64_t oh0, int64_t oh1, T* col) {
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
