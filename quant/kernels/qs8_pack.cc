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
    q[i].offset_s8 = int32_t(uint32_t(uint64_t(off + 128 * sums[i])));
    q[i].m = m[i];
  }
  return q;
}

void pad_planes(const uint8_t* x, int64_t planes, int64_t H, int64_t W, int64_t ph, int64_t pw, uint8_t pad,
                uint8_t flip, uint8_t* dst) {
  const int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
  std::memset(dst, pad, size_t(planes * Hp * Wp + kPadSlack));
  for (int64_t q = 0; q < planes; ++q)
    for (int64_t h = 0; h < H; ++h) {
      const uint8_t* s = x + (q * H + h) * W;
      uint8_t* d = dst + (q * Hp + h + ph) * Wp + pw;
      for (int64_t w = 0; w < W; ++w) d[w] = uint8_t(s[w] ^ flip);
    }
}

void pack_conv_tile(const uint8_t* xg, const ConvGeom& g, int64_t p0, int64_t T, uint8_t flip, uint8_t* dst) {
  const int64_t K = g.Cg * g.KH * g.KW, K4 = (K + 3) / 4, P = g.OH * g.OW;
  const int64_t count = std::min(T, P - p0);
  std::memset(dst, 0, size_t(K4 * T * 4));
  thread_local std::vector<const uint8_t*> rows;
  rows.assign(size_t(K4 * 4), nullptr);
  if (g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1) {
    // 1×1 stride 1: pixel p reads x[c][p] directly.
    for (int64_t c = 0; c < g.Cg; ++c) rows[size_t(c)] = xg + c * g.H * g.W + p0;
    interleave4_rows(rows.data(), K4, T, count, flip, dst);
    return;
  }
  // General case: first the im2col rows (one per tap, `count` pixels), by runs of pixels on one
  // output row (at most T/OW + 2 per tile). The input is padded, so a run is one contiguous
  // copy at stride 1, done in fixed 32-byte pieces (they may run past the run's end into bytes
  // the next run or row rewrites, and past the input into its kPadSlack).
  thread_local std::vector<uint8_t> cols;
  cols.resize(size_t(K * T + 32));
  struct Run {
    int64_t t0, len, oh, ow0;
  };
  Run runs[258];
  int64_t nruns = 0;
  for (int64_t t = 0; t < count;) {
    const int64_t p = p0 + t, ow0 = p % g.OW, len = std::min(count - t, g.OW - ow0);
    runs[nruns++] = {t, len, p / g.OW, ow0};
    t += len;
  }
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t k = (c * g.KH + kh) * g.KW + kw;
        uint8_t* row = cols.data() + k * T;
        rows[size_t(k)] = row;
        for (int64_t r = 0; r < nruns; ++r) {
          const Run& u = runs[r];
          const uint8_t* src = xg + (c * g.H + u.oh * g.sh + kh * g.dh) * g.W + u.ow0 * g.sw + kw * g.dw;
          uint8_t* o = row + u.t0;
          if (g.sw == 1) {
            for (int64_t i = 0; i < u.len; i += 32) std::memcpy(o + i, src + i, 32);
          } else {
            for (int64_t i = 0; i < u.len; ++i) o[i] = src[i * g.sw];
          }
        }
      }
  interleave4_rows(rows.data(), K4, T, count, flip, dst);
}

void pack_rows_tile(const uint8_t* x, int64_t rows, int64_t K, int64_t r0, int64_t T, uint8_t* dst) {
  const int64_t K4 = (K + 3) / 4, count = std::min(T, rows - r0);
  std::memset(dst, 0, size_t(K4 * T * 4));
  for (int64_t t = 0; t < count; ++t) {
    const uint8_t* src = x + (r0 + t) * K;
    const int64_t full = K / 4;  // whole words as fixed 4-byte copies (one mov each), then the tail
    for (int64_t k4 = 0; k4 < full; ++k4) std::memcpy(dst + (k4 * T + t) * 4, src + k4 * 4, 4);
    if (full < K4) std::memcpy(dst + (full * T + t) * 4, src + full * 4, size_t(K - full * 4));
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
