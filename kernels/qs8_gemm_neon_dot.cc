// The ARMv8.2 dot-product kernels of the int8 GEMM (qs8_gemm_neon_dot.h), plain arm_neon.h
// intrinsics: Highway 1.0.3 has neither SDOT nor a target for it.
//
// Exactness: SDOT/UDOT add four 8×8-bit products into an int32 lane modulo 2^32, like vpdpbusd
// and like the wrapping int32 accumulator of the spec, so a sum that fits int32 comes out exact
// and one that does not wraps exactly as the portable path's. There is no u8×i8 form before
// ARMv8.6 (USDOT), hence the two rewritings of Σ x_u8·w:
//   GEMM: x_u8 = (x_u8 XOR 0x80) + 128, so Σ x_u8·w = Σ x_s8·w + 128·Σw; the 128·Σw per
//         output channel is folded into RowQuant::offset_s8 when the weights are packed.
//   GEMV: w = (w XOR 0x80) − 128 as u8, so Σ x·w = Σ x·w_u8 − 128·Σx; Σx is one UDOT pass over
//         the shared x per call, and the rows need no extra input.
// GCC 12 accepts vdotq only in functions compiled for arch=armv8.2-a+dotprod (its arm_neon.h
// declares the by-element forms under that pragma, and "+dotprod" alone does not match it); the
// rest of the build, and every function here without the attribute, stays ARMv8.0, so a Pi 4
// never executes one.
#include "kernels/qs8_gemm_neon_dot.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace finch::quant::kernels::qs8::neon_dot {
namespace {

constexpr int64_t kT = kTilePixels;
static_assert(kMR == 8 && kT == 8, "the micro-kernel below is written out for 8×8");

#define FINCH_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

// acc [8][8] (channel-major) = w [K4][8][4] · (x [K4][8][4] XOR 0x80), raw int32 sums. Per k4
// step: two pixel vectors (4 pixels × 4 k bytes each), two weight vectors (4 channels × 4 k
// each), and 16 by-element SDOTs, one per (channel, pixel vector).
FINCH_DOTPROD void sdot_8x8c4(const int8_t* w, const uint8_t* x, int64_t K4, int32_t* acc) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  int32x4_t c0a = vdupq_n_s32(0), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
  int32x4_t c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
  for (int64_t k4 = 0; k4 < K4; ++k4, x += kT * 4, w += kMR * 4) {
    const int8x16_t xa = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x), flip));
    const int8x16_t xb = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + 16), flip));
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);  // channels 0–3, 4–7
    c0a = vdotq_laneq_s32(c0a, xa, w0, 0), c0b = vdotq_laneq_s32(c0b, xb, w0, 0);
    c1a = vdotq_laneq_s32(c1a, xa, w0, 1), c1b = vdotq_laneq_s32(c1b, xb, w0, 1);
    c2a = vdotq_laneq_s32(c2a, xa, w0, 2), c2b = vdotq_laneq_s32(c2b, xb, w0, 2);
    c3a = vdotq_laneq_s32(c3a, xa, w0, 3), c3b = vdotq_laneq_s32(c3b, xb, w0, 3);
    c4a = vdotq_laneq_s32(c4a, xa, w1, 0), c4b = vdotq_laneq_s32(c4b, xb, w1, 0);
    c5a = vdotq_laneq_s32(c5a, xa, w1, 1), c5b = vdotq_laneq_s32(c5b, xb, w1, 1);
    c6a = vdotq_laneq_s32(c6a, xa, w1, 2), c6b = vdotq_laneq_s32(c6b, xb, w1, 2);
    c7a = vdotq_laneq_s32(c7a, xa, w1, 3), c7b = vdotq_laneq_s32(c7b, xb, w1, 3);
  }
  const int32x4_t out[kMR * 2] = {c0a, c0b, c1a, c1b, c2a, c2b, c3a, c3b, c4a, c4b, c5a, c5b, c6a, c6b, c7a, c7b};
  for (int64_t i = 0; i < kMR * 2; ++i) vst1q_s32(acc + i * 4, out[i]);
}

// Codes of count (<= 8) raw sums of one channel into out[0 .. count): the spec's requantization
// (requant.h) with acc = raw + offset_s8. For 1 <= n <= 63 SRSHL by −n is exactly the rounding
// rule, (v + 2^(n−1)) >> n without overflow; the saturating narrow to int32 before the clamp
// changes nothing, since qmin − z_out and qmax − z_out lie far inside int32. n >= 64 gives 0
// for any product (multiplier 0 does the same); n <= 0 (multipliers >= 1, rare) goes scalar.
// Both output types store the low byte of the clamped code.
void requant_row(const int32_t* raw, int64_t count, const RowQuant& q, const OutQuant& o, uint8_t* out) {
  const int n = q.m.total_shift();
  if (n < 1) {
    for (int64_t t = 0; t < count; ++t)
      out[t] = uint8_t(requantize(int32_t(uint32_t(raw[t]) + uint32_t(q.offset_s8)), q.m, o.z_out, o.qmin, o.qmax));
    return;
  }
  const bool zero = n >= 64;
  const int32x4_t off = vdupq_n_s32(q.offset_s8), mul = vdupq_n_s32(zero ? 0 : q.m.multiplier);
  const int64x2_t shift = vdupq_n_s64(-(zero ? 1 : n));
  const int32x4_t lo = vdupq_n_s32(o.qmin - o.z_out), hi = vdupq_n_s32(o.qmax - o.z_out), z = vdupq_n_s32(o.z_out);
  auto fix = [&](const int32_t* r) {
    const int32x4_t a = vaddq_s32(vld1q_s32(r), off);  // wrapping int32 add
    const int64x2_t p0 = vrshlq_s64(vmull_s32(vget_low_s32(a), vget_low_s32(mul)), shift);
    const int64x2_t p1 = vrshlq_s64(vmull_high_s32(a, mul), shift);
    const int32x4_t v = vcombine_s32(vqmovn_s64(p0), vqmovn_s64(p1));
    return vmovn_s32(vaddq_s32(vminq_s32(vmaxq_s32(v, lo), hi), z));
  };
  const uint8x8_t codes = vreinterpret_u8_s8(vmovn_s16(vcombine_s16(fix(raw), fix(raw + 4))));
  if (count == kT) {
    vst1_u8(out, codes);
  } else {
    uint8_t buf[kT];
    vst1_u8(buf, codes);
    std::memcpy(out, buf, size_t(count));
  }
}

FINCH_DOTPROD void udot_rows(const uint8_t* x, const int8_t* w, int64_t M, int64_t Kp, int32_t* acc) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  uint32x4_t sx = vdupq_n_u32(0);
  for (int64_t k = 0; k < Kp; k += 16) sx = vdotq_u32(sx, vld1q_u8(x + k), vdupq_n_u8(1));
  const uint32_t corr = 128u * vaddvq_u32(sx);  // modulo 2^32, like every sum here
  const auto* wu = reinterpret_cast<const uint8_t*>(w);
  int64_t i = 0;
  // Four rows at once: each x load serves four UDOTs.
  for (; i + 4 <= M; i += 4) {
    const uint8_t* r = wu + i * Kp;
    uint32x4_t s0 = vdupq_n_u32(0), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t k = 0; k < Kp; k += 16) {
      const uint8x16_t xv = vld1q_u8(x + k);
      s0 = vdotq_u32(s0, xv, veorq_u8(vld1q_u8(r + k), flip));
      s1 = vdotq_u32(s1, xv, veorq_u8(vld1q_u8(r + Kp + k), flip));
      s2 = vdotq_u32(s2, xv, veorq_u8(vld1q_u8(r + 2 * Kp + k), flip));
      s3 = vdotq_u32(s3, xv, veorq_u8(vld1q_u8(r + 3 * Kp + k), flip));
    }
    acc[i] = int32_t(vaddvq_u32(s0) - corr), acc[i + 1] = int32_t(vaddvq_u32(s1) - corr);
    acc[i + 2] = int32_t(vaddvq_u32(s2) - corr), acc[i + 3] = int32_t(vaddvq_u32(s3) - corr);
  }
  for (; i < M; ++i) {
    const uint8_t* r = wu + i * Kp;
    uint32x4_t s = vdupq_n_u32(0);
    for (int64_t k = 0; k < Kp; k += 16) s = vdotq_u32(s, vld1q_u8(x + k), veorq_u8(vld1q_u8(r + k), flip));
    acc[i] = int32_t(vaddvq_u32(s) - corr);
  }
}

#undef FINCH_DOTPROD

}  // namespace

void qs8_gemm_8x8c4__neondot(const int8_t* w, const uint8_t* x, int64_t K4, int64_t T, int64_t rows, int64_t count,
                         const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, int64_t col_stride) {
  (void)T;  // == kT, checked by the caller
  alignas(16) int32_t acc[kMR * kT];
  sdot_8x8c4(w, x, K4, acc);
  if (col_stride == 1) {
    for (int64_t m = 0; m < rows; ++m) requant_row(acc + m * kT, count, q[m], o, out + m * row_stride);
    return;
  }
  // Transposed store (linear layers): requantize each row contiguously, then scatter the bytes.
  uint8_t buf[kMR * kT];
  for (int64_t m = 0; m < rows; ++m) requant_row(acc + m * kT, count, q[m], o, buf + m * kT);
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t t = 0; t < count; ++t) out[m * row_stride + t * col_stride] = buf[m * kT + t];
}

void qu8s8_dot_rows__neondot(const uint8_t* x, const int8_t* w, int64_t M, int64_t Kp, int32_t* acc) {
  udot_rows(x, w, M, Kp, acc);
}

}  // namespace finch::quant::kernels::qs8::neon_dot
#endif  // __aarch64__
