// Packing for the int8 GEMM (kernels/qs8_gemm.h): weights once per layer, activation
// tiles (im2col or linear rows) per call, and the per-channel requantization table.
#include <algorithm>
#include <cstring>

#include "kernels/qs8_gemm.h"

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

PhaseGeom phase_geom(int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t sh, int64_t sw) {
  return {H, W, ph, pw, sh, sw, (H + 2 * ph + sh - 1) / sh, (W + 2 * pw + sw - 1) / sw};
}

void phase_planes(const uint8_t* x, int64_t planes, const PhaseGeom& g, uint32_t used, uint8_t pad, uint8_t flip,
                  uint8_t* dst, int64_t r0, int64_t r1) {
  // Locals, not g's fields: the byte stores may alias anything, which would reload g per byte.
  const int64_t H = g.H, W = g.W, ph = g.ph, pw = g.pw, sh = g.sh, sw = g.sw, Hq = g.Hq, Wq = g.Wq, HWq = Hq * Wq;
  if (r1 < 0 || r1 > Hq) r1 = Hq;
  if (r0 >= r1) return;
  for (int64_t q = 0; q < planes; ++q)
    for (int64_t a = 0; a < sh; ++a)
      for (int64_t b = 0; b < sw; ++b) {
        if (a * sw + b < 32 && !(used >> (a * sw + b) & 1)) continue;
        uint8_t* d = dst + ((q * sh + a) * sw + b) * HWq;
        std::memset(d + r0 * Wq, pad, size_t((r1 - r0) * Wq));
        // Phase column j holds padded column j·sw + b, i.e. input column j·sw + b − pw.
        const int64_t j0 = b >= pw ? 0 : (pw - b + sw - 1) / sw, w0 = j0 * sw + b - pw;
        const int64_t n = w0 < W ? (W - 1 - w0) / sw + 1 : 0;
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t h = r * sh + a - ph;
          if (h < 0 || h >= H) continue;
          const uint8_t* s = x + (q * H + h) * W + w0;
          uint8_t* o = d + r * Wq + j0;
          if (sw == 1 && flip == 0) {
            std::memcpy(o, s, size_t(n));  // rows of 7 to 28 bytes: far faster than a byte loop
          } else if (sw == 1) {
            for (int64_t j = 0; j < n; ++j) o[j] = uint8_t(s[j] ^ flip);
          } else {
            for (int64_t j = 0; j < n; ++j) o[j] = uint8_t(s[j * sw] ^ flip);
          }
        }
      }
}

void phase_planes4(const uint8_t* x, int64_t channels, const PhaseGeom& g, uint32_t used, uint8_t pad,
                   uint8_t flip, uint8_t* dst, int64_t r0, int64_t r1) {
  const int64_t H = g.H, W = g.W, ph = g.ph, pw = g.pw, sh = g.sh, sw = g.sw, Hq = g.Hq, Wq = g.Wq, HWq = Hq * Wq;
  if (r1 < 0 || r1 > Hq) r1 = Hq;
  if (r0 >= r1) return;
  // First the input rows these phase rows hold (h = r·sh + a − ph) in words (one vectorized pass:
  // per row of 7 to 28 words, half of the words went through the scalar tail), then rows of words
  // into the padded phase planes.
  const int64_t h0 = std::clamp<int64_t>(r0 * sh - ph, 0, H), h1 = std::clamp<int64_t>(r1 * sh - ph, h0, H);
  thread_local std::vector<uint32_t> words;
  words.resize(size_t(std::max<int64_t>(1, (h1 - h0) * W)));
  const uint8_t* rows[4];
  for (int64_t j = 0; j < 4; ++j) rows[j] = j < channels ? x + (j * H + h0) * W : nullptr;
  interleave4_rows(rows, 1, (h1 - h0) * W, (h1 - h0) * W, flip, reinterpret_cast<uint8_t*>(words.data()));
  // Without padding or strides every word is written below: no fill first (1×1 convs).
  const bool full = ph == 0 && pw == 0 && sh == 1 && sw == 1 && Hq == H && Wq == W;
  for (int64_t a = 0; a < sh; ++a)
    for (int64_t b = 0; b < sw; ++b) {
      if (a * sw + b < 32 && !(used >> (a * sw + b) & 1)) continue;
      uint8_t* d = dst + (a * sw + b) * HWq * 4;
      if (!full) std::memset(d + r0 * Wq * 4, pad, size_t((r1 - r0) * Wq * 4));
      const int64_t j0 = b >= pw ? 0 : (pw - b + sw - 1) / sw, w0 = j0 * sw + b - pw;
      const int64_t n = w0 < W ? (W - 1 - w0) / sw + 1 : 0;
      if (n == 0) continue;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t h = r * sh + a - ph;
        if (h < 0 || h >= H) continue;
        const uint32_t* s = words.data() + (h - h0) * W + w0;
        uint8_t* o = d + (r * Wq + j0) * 4;
        if (sw == 1) {
          std::memcpy(o, s, size_t(n * 4));
        } else {
          for (int64_t t = 0; t < n; ++t) std::memcpy(o + t * 4, s + t * sw, 4);
        }
      }
    }
}

bool tile_segments(int64_t q0, int64_t count, int64_t Wq, int64_t OW, TileSegments* seg) {
  seg->n = 0;
  for (int64_t oh = q0 / Wq; oh * Wq < q0 + count; ++oh) {
    const int64_t lo = std::max<int64_t>(0, oh * Wq - q0), hi = std::min(count, oh * Wq + OW - q0);
    if (hi <= lo) continue;
    if (seg->n == TileSegments::kMax) return false;
    // Pixel t = q0 + t − oh·Wq of row oh sits at oh·OW + (q0 + t − oh·Wq).
    seg->off[seg->n] = q0 - oh * (Wq - OW), seg->lo[seg->n] = int32_t(lo), seg->hi[seg->n] = int32_t(hi);
    ++seg->n;
  }
  return true;
}

std::vector<int64_t> conv_tap_offsets(const PhaseGeom& g, int64_t Cg, int64_t KH, int64_t KW, int64_t dh, int64_t dw) {
  // The divisions once per (kh, kw), not per tap: at K = 192 they were a quarter of a 1×1 conv.
  const int64_t taps = KH * KW, plane = g.sh * g.sw * g.Hq * g.Wq;
  std::vector<int64_t> off(size_t(Cg * taps));
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t a = kh * dh % g.sh, b = kw * dw % g.sw;
      off[size_t(kh * KW + kw)] = (a * g.sw + b) * g.Hq * g.Wq + kh * dh / g.sh * g.Wq + kw * dw / g.sw;
    }
  for (int64_t c = 1; c < Cg; ++c)
    for (int64_t t = 0; t < taps; ++t) off[size_t(c * taps + t)] = off[size_t(t)] + c * plane;
  return off;
}

uint32_t conv_used_phases(const PhaseGeom& g, int64_t KH, int64_t KW, int64_t dh, int64_t dw) {
  if (g.sh * g.sw > 32) return ~0u;  // phase_planes writes every phase past the 32nd anyway
  uint32_t used = 0;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) used |= 1u << (kh * dh % g.sh * g.sw + kw * dw % g.sw);
  return used;
}

void pack_offset_tile(const uint8_t* base, const int64_t* off, int64_t K, int64_t q0, int64_t T, int64_t count,
                      uint8_t flip, uint8_t* dst) {
  const int64_t K4 = (K + 3) / 4;
  const uint8_t* rows[1024];
  for (int64_t k0 = 0; k0 < K4 * 4; k0 += 1024) {
    // Chunks of 256 words keep the pointer table on the stack for any K.
    const int64_t n = std::min<int64_t>(1024, K4 * 4 - k0);
    for (int64_t k = 0; k < n; ++k) rows[k] = k0 + k < K ? base + off[k0 + k] + q0 : nullptr;
    interleave4_rows(rows, n / 4, T, count, flip, dst + k0 * T);
  }
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
