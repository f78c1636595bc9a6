// Packing for the int8 GEMM (quant/kernels/qs8_gemm.h): weights once per layer, activation
// tiles (im2col or linear rows) per call, and the per-channel requantization table.
#include <algorithm>
#include <cstring>

#include "quant/kernels/qs8_gemm.h"

namespace finch::quant::kernels::qs8 {

std::vector<int8_t> pack_weights(const int8_t* w, int64_t M, int64_t K) {
  const int64_t K4 = (K + 3) / 4, blocks = (M + kMR - 1) / kMR;
  std::vector<int8_t> out(size_t(blocks * K4 * kMR * 4), 0);  // zero rows/taps add nothing
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k)
      out[size_t(((m / kMR * K4 + k / 4) * kMR + m % kMR) * 4 + k % 4)] = w[m * K + k];
  return out;
}

std::vector<int64_t> weight_sums(const int8_t* w, int64_t M, int64_t K) {
  std::vector<int64_t> s(size_t(M), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) s[size_t(m)] += w[m * K + k];
  return s;
}

std::vector<RowQuant> row_quants(const std::vector<int64_t>& sums, const std::vector<int32_t>& bias,
                                 const std::vector<FixedPointMultiplier>& m, int32_t zx_u8) {
  std::vector<RowQuant> q(sums.size());
  for (size_t i = 0; i < sums.size(); ++i) {
    // Wrapped to int32 on purpose: raw + offset wraps back to the true accumulator whenever that
    // fits int32 (the reference's precondition), even if offset alone does not.
    const int64_t off = (bias.empty() ? 0 : int64_t(bias[i])) - int64_t(zx_u8) * sums[i];
    q[i].offset = int32_t(uint32_t(uint64_t(off)));
    q[i].m = m[i];
  }
  return q;
}

void pack_conv_tile(const uint8_t* xg, const ConvGeom& g, int64_t p0, int64_t T, uint8_t pad, uint8_t flip,
                    uint8_t* dst) {
  const int64_t K = g.Cg * g.KH * g.KW, K4 = (K + 3) / 4, P = g.OH * g.OW;
  const int64_t count = std::min(T, P - p0);
  std::memset(dst, 0, size_t(K4 * T * 4));
  const int64_t HW = g.H * g.W;
  if (g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0) {
    // 1×1 stride 1: pixel p reads x[c][p], a 4-row byte interleave, one 32-bit word per pixel
    // (a loop the compiler vectorizes). Channels past Cg read as 0 (their weights are 0).
    const uint32_t flip4 = flip * 0x01010101u;
    for (int64_t c4 = 0; c4 < K4; ++c4) {
      const uint8_t* r[4];
      static const uint8_t zeros[256] = {};
      uint32_t mask = flip4;
      for (int64_t j = 0; j < 4; ++j) {
        const bool in = c4 * 4 + j < g.Cg;
        r[j] = in ? xg + (c4 * 4 + j) * HW + p0 : zeros;
        if (!in) mask &= ~(0xFFu << (8 * j));
      }
      uint8_t* row = dst + c4 * T * 4;
      for (int64_t t = 0; t < count; ++t) {
        const uint32_t v =
            (uint32_t(r[0][t]) | uint32_t(r[1][t]) << 8 | uint32_t(r[2][t]) << 16 | uint32_t(r[3][t]) << 24) ^ mask;
        std::memcpy(row + t * 4, &v, 4);  // little-endian: byte j is channel c4·4 + j
      }
    }
    return;
  }
  int64_t ih0[256], iw0[256];  // window origin of each pixel (T <= 256)
  for (int64_t t = 0; t < count; ++t) {
    const int64_t p = p0 + t;
    ih0[t] = p / g.OW * g.sh - g.ph;
    iw0[t] = p % g.OW * g.sw - g.pw;
  }
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t k = (c * g.KH + kh) * g.KW + kw;
        uint8_t* row = dst + (k >> 2) * T * 4 + (k & 3);
        const uint8_t* plane = xg + c * HW;
        for (int64_t t = 0; t < count; ++t) {
          const int64_t ih = ih0[t] + kh * g.dh, iw = iw0[t] + kw * g.dw;
          row[t * 4] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? uint8_t(plane[ih * g.W + iw] ^ flip) : pad;
        }
      }
}

void pack_rows_tile(const uint8_t* x, int64_t rows, int64_t K, int64_t r0, int64_t T, uint8_t* dst) {
  const int64_t K4 = (K + 3) / 4, count = std::min(T, rows - r0);
  std::memset(dst, 0, size_t(K4 * T * 4));
  for (int64_t t = 0; t < count; ++t) {
    const uint8_t* src = x + (r0 + t) * K;
    for (int64_t k4 = 0; k4 < K4; ++k4) std::memcpy(dst + (k4 * T + t) * 4, src + k4 * 4, size_t(std::min<int64_t>(4, K - k4 * 4)));
  }
}

void to_u8(const void* src, bool is_i8, int64_t n, uint8_t* dst) {
  const auto* s = static_cast<const uint8_t*>(src);
  if (!is_i8) {
    std::memcpy(dst, s, size_t(n));
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = uint8_t(s[i] ^ 0x80);  // i8 code c -> c + 128
}

}  // namespace finch::quant::kernels::qs8
