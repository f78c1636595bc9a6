// The int8 indirect-GEMM conv micro-kernel of kernels/qs8_igemm.h: 7 pixels × 16 or 32 output
// channels per tile on AVX-512 VNNI (other targets run QConv2d's phase-plane GEMM), and the
// packing of its weights and requantization constants.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "framework/error.h"
#include "kernels/qs8_igemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_igemm_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::qs8::HWY_NAMESPACE {

constexpr int64_t MR = kIgemmMR;

#if HWY_TARGET == HWY_AVX3_DL
#include "kernels/qs8_add_vnni-inl.h"  // AddConsts16, AddCodes16: the fused residual add

// One pixel's broadcast word and its vpdpbusd against the block's 1 or 2 weight vectors
// (zmm30, zmm31). Inline assembly, as qs8_gemm_vnni-inl.h's tiles: GCC 12 keeps the
// _mm512_dpbusd_epi32 operands in zmm0–15, which does not hold 14 accumulators.
#define FINCH_IG_PIX1(i, r, z)                \
  "vpbroadcastd (%%rax,%%" r "), %%" z "\n\t" \
  "vpdpbusd %%zmm30, %%" z ", %[c" #i "a]\n\t"
#define FINCH_IG_PIX2(i, r, z) FINCH_IG_PIX1(i, r, z) "vpdpbusd %%zmm31, %%" z ", %[c" #i "b]\n\t"
// One pixel against two consecutive channel quads (planes at rax and r15; weights zmm30, zmm31)
// into two accumulators.
#define FINCH_IG_PAIR(i, r)                      \
  "vpbroadcastd (%%rax,%%" r "), %%zmm28\n\t" \
  "vpbroadcastd (%%r15,%%" r "), %%zmm29\n\t" \
  "vpdpbusd %%zmm30, %%zmm28, %[c" #i "a]\n\t" \
  "vpdpbusd %%zmm31, %%zmm29, %[c" #i "b]\n\t"
// The tap loop: the 7 pixels' offsets of the tap into r8..r14, the plane pointer into rax, the
// channel-quad count into rdx (fixed registers, clobbered: as operands, 14 accumulators and
// these would pass GCC's 30-operand limit).
#define FINCH_IG_TAP_HEAD               \
  "2:\n\t"                              \
  "movslq 0(%[tab]), %%r8\n\t"          \
  "movslq 4(%[tab]), %%r9\n\t"          \
  "movslq 8(%[tab]), %%r10\n\t"         \
  "movslq 12(%[tab]), %%r11\n\t"        \
  "movslq 16(%[tab]), %%r12\n\t"        \
  "movslq 20(%[tab]), %%r13\n\t"        \
  "movslq 24(%[tab]), %%r14\n\t"        \
  "mov %[xb], %%rax\n\t"                \
  "mov %[cg4], %%rdx\n\t"               \
  "1:\n\t"
#define FINCH_IG_TAP_TAIL               \
  "add %[s], %%rax\n\t"                 \
  "dec %%rdx\n\t"                       \
  "jnz 1b\n\t"                          \
  "add $28, %[tab]\n\t"                 \
  "dec %[t]\n\t"                        \
  "jnz 2b\n\t"
#define FINCH_IG_ZERO(i) "vpxord %[c" #i "a], %[c" #i "a], %[c" #i "a]\n\t"
#define FINCH_IG_ZERO2(i) FINCH_IG_ZERO(i) "vpxord %[c" #i "b], %[c" #i "b], %[c" #i "b]\n\t"

// Per-lane RequantHigh16: the clamped int32 codes of 16 channels of one pixel.
HWY_INLINE __m512i IgemmFix(const IgemmQuant16& q, __m512i v, __m512i qlo, __m512i qhi) {
  v = _mm512_add_epi32(v, _mm512_load_si512(q.off));  // wrapping int32 add
  const __m512i ev =
      _mm512_add_epi64(_mm512_mul_epi32(v, _mm512_load_si512(q.mul)), _mm512_load_si512(q.rnd_even));
  const __m512i od = _mm512_add_epi64(
      _mm512_mul_epi32(_mm512_shuffle_epi32(v, _MM_PERM_CDAB), _mm512_load_si512(q.mul_odd)),
      _mm512_load_si512(q.rnd_odd));
  const __m512i h = _mm512_mask_shuffle_epi32(od, __mmask16{0x5555}, ev, _MM_PERM_CDAB);
  return _mm512_min_epi32(_mm512_max_epi32(_mm512_srav_epi32(h, _mm512_load_si512(q.sh)), qlo), qhi);
}

// Stores the codes of 7 pixels (x[i]: 16 channels of pixel i) as channel rows: two vpermt2b
// turn the pixel-major bytes into 8-byte channel runs, and each channel's run is one masked
// store, addressed so that its bytes land at out + c·P (masked-off bytes are never accessed).
// With `wide` (a whole tile whose next tile the same call computes later) each run is stored as
// 8 plain bytes instead: the eighth lands on the next tile's first pixel, which overwrites it,
// and plain stores cost less than masked ones (about 2× on the 16-channel layers on Zen 4).
HWY_INLINE void IgemmStore7(const __m128i* x, int64_t rows, int64_t count, uint8_t* out, int64_t P, bool wide) {
  alignas(64) static constexpr uint8_t kIdx[2][64] = {
      {0, 16, 32, 48, 64, 80, 96, 0, 1, 17, 33, 49, 65, 81, 97, 0, 2, 18, 34, 50, 66, 82, 98, 0,
       3, 19, 35, 51, 67, 83, 99, 0, 4, 20, 36, 52, 68, 84, 100, 0, 5, 21, 37, 53, 69, 85, 101, 0,
       6, 22, 38, 54, 70, 86, 102, 0, 7, 23, 39, 55, 71, 87, 103, 0},
      {8, 24, 40, 56, 72, 88, 104, 0, 9, 25, 41, 57, 73, 89, 105, 0, 10, 26, 42, 58, 74, 90, 106, 0,
       11, 27, 43, 59, 75, 91, 107, 0, 12, 28, 44, 60, 76, 92, 108, 0, 13, 29, 45, 61, 77, 93, 109, 0,
       14, 30, 46, 62, 78, 94, 110, 0, 15, 31, 47, 63, 79, 95, 111, 0}};
  __m512i lo = _mm512_castsi128_si512(x[0]);
  lo = _mm512_inserti32x4(lo, x[1], 1), lo = _mm512_inserti32x4(lo, x[2], 2), lo = _mm512_inserti32x4(lo, x[3], 3);
  __m512i hi = _mm512_castsi128_si512(x[4]);
  hi = _mm512_inserti32x4(hi, x[5], 1), hi = _mm512_inserti32x4(hi, x[6], 2);
  const __m512i runs[2] = {_mm512_permutex2var_epi8(lo, _mm512_load_si512(kIdx[0]), hi),
                           _mm512_permutex2var_epi8(lo, _mm512_load_si512(kIdx[1]), hi)};
  if (wide && rows == 16) {
    auto store4 = [&](const __m512i v, int64_t c0) {
      const __m128i l0 = _mm512_castsi512_si128(v), l1 = _mm512_extracti32x4_epi32(v, 1);
      const __m128i l2 = _mm512_extracti32x4_epi32(v, 2), l3 = _mm512_extracti32x4_epi32(v, 3);
      uint8_t* o = out + c0 * P;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o), l0);
      _mm_storeh_pd(reinterpret_cast<double*>(o + P), _mm_castsi128_pd(l0));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 2 * P), l1);
      _mm_storeh_pd(reinterpret_cast<double*>(o + 3 * P), _mm_castsi128_pd(l1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 4 * P), l2);
      _mm_storeh_pd(reinterpret_cast<double*>(o + 5 * P), _mm_castsi128_pd(l2));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 6 * P), l3);
      _mm_storeh_pd(reinterpret_cast<double*>(o + 7 * P), _mm_castsi128_pd(l3));
    };
    store4(runs[0], 0), store4(runs[1], 8);
    return;
  }
  const uint64_t keep = (uint64_t{1} << count) - 1;
  const auto base = reinterpret_cast<uintptr_t>(out);
  for (int64_t c = 0; c < rows; ++c) {
    const int64_t s = 8 * (c % 8);
    _mm512_mask_storeu_epi8(reinterpret_cast<void*>(base + uintptr_t(c * P - s)), __mmask64(keep << s),
                            runs[c / 8]);
  }
}

// The residual codes of a tile's 7 pixels × 16 channels, channel c's at r + c·P + i, turned
// around into IgemmTile's layout: pixel i's 16 channel bytes at px + 16·i (128 bytes, aligned)
// (flipped to i8 where they are u8). Each channel's run is one 8-byte load (the eighth byte is
// the next tile's first pixel, read and not used) where the tile is whole and the next tile's
// pixels follow it (`wide`); otherwise masked loads of count bytes of the rows < `rows` (masked-
// off bytes are never accessed). Then the inverse of IgemmStore7's vpermt2b.
HWY_INLINE void IgemmLoadR7(const AddConsts16& k, const uint8_t* r, int64_t rows, int64_t count, int64_t P, bool wide,
                            uint8_t* px) {
  alignas(64) static constexpr uint8_t kIdx[2][64] = {
      {0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120,
       1, 9, 17, 25, 33, 41, 49, 57, 65, 73, 81, 89, 97, 105, 113, 121,
       2, 10, 18, 26, 34, 42, 50, 58, 66, 74, 82, 90, 98, 106, 114, 122,
       3, 11, 19, 27, 35, 43, 51, 59, 67, 75, 83, 91, 99, 107, 115, 123},
      {4, 12, 20, 28, 36, 44, 52, 60, 68, 76, 84, 92, 100, 108, 116, 124,
       5, 13, 21, 29, 37, 45, 53, 61, 69, 77, 85, 93, 101, 109, 117, 125,
       6, 14, 22, 30, 38, 46, 54, 62, 70, 78, 86, 94, 102, 110, 118, 126,
       7, 15, 23, 31, 39, 47, 55, 63, 71, 79, 87, 95, 103, 111, 119, 127}};
  __m128i pair[8];  // channels 2j, 2j + 1
  if (wide && rows == 16) {
    for (int j = 0; j < 8; ++j) {
      const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + 2 * j * P));
      pair[j] = _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(lo), reinterpret_cast<const double*>(r + (2 * j + 1) * P)));
    }
  } else {
    const __mmask16 keep = __mmask16((1u << count) - 1);
    auto run = [&](int64_t c) { return c < rows ? _mm_maskz_loadu_epi8(keep, r + c * P) : _mm_setzero_si128(); };
    for (int j = 0; j < 8; ++j) pair[j] = _mm_unpacklo_epi64(run(2 * j), run(2 * j + 1));
  }
  __m512i runs0 = _mm512_castsi128_si512(pair[0]), runs1 = _mm512_castsi128_si512(pair[4]);
  runs0 = _mm512_inserti32x4(runs0, pair[1], 1), runs0 = _mm512_inserti32x4(runs0, pair[2], 2);
  runs0 = _mm512_inserti32x4(runs0, pair[3], 3);
  runs1 = _mm512_inserti32x4(runs1, pair[5], 1), runs1 = _mm512_inserti32x4(runs1, pair[6], 2);
  runs1 = _mm512_inserti32x4(runs1, pair[7], 3);
  _mm512_store_si512(px, _mm512_xor_si512(_mm512_permutex2var_epi8(runs0, _mm512_load_si512(kIdx[0]), runs1), k.flip));
  _mm512_store_si512(px + 64, _mm512_xor_si512(_mm512_permutex2var_epi8(runs0, _mm512_load_si512(kIdx[1]), runs1), k.flip));
}

// The 16 residual codes of pixel I of IgemmLoadR7's layout, as int32: through memory, so that
// the sign extension reads its operand (one instruction, where an extract from the register
// and the extension were two).
template <int I>
HWY_INLINE __m512i IgemmR(const uint8_t* px) {
  return _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(px + 16 * I)));
}

// One vector's 7 pixels of codes: requantized (IgemmFix) and, with an add, added to the
// residual's codes in registers (the constants q then have z_out 0: AddCodes16 takes the conv's
// codes minus z_conv), then narrowed to bytes.
HWY_INLINE void IgemmCodes7(const IgemmQuant16& q, const __m512i c[MR], __m512i qlo, __m512i qhi, const TileAdd* add,
                            const AddConsts16& k, const uint8_t* r, int64_t rows, int64_t count, int64_t P, bool wide,
                            __m128i x[MR]) {
  if (!add) {
    for (int i = 0; i < MR; ++i) x[i] = _mm512_cvtepi32_epi8(IgemmFix(q, c[i], qlo, qhi));
    return;
  }
  alignas(64) uint8_t px[128];
  IgemmLoadR7(k, r, rows, count, P, wide, px);
  x[0] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[0], qlo, qhi), IgemmR<0>(px)));
  x[1] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[1], qlo, qhi), IgemmR<1>(px)));
  x[2] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[2], qlo, qhi), IgemmR<2>(px)));
  x[3] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[3], qlo, qhi), IgemmR<3>(px)));
  x[4] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[4], qlo, qhi), IgemmR<4>(px)));
  x[5] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[5], qlo, qhi), IgemmR<5>(px)));
  x[6] = _mm512_cvtepi32_epi8(AddCodes16(k, IgemmFix(q, c[6], qlo, qhi), IgemmR<6>(px)));
}

template <int NV>
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void IgemmTile(const IgemmArgs& a, int64_t tile, bool wide) {
  const int32_t* tab = a.table + tile * a.taps * MR;
  __m512i c0a, c1a, c2a, c3a, c4a, c5a, c6a, c0b, c1b, c2b, c3b, c4b, c5b, c6b;
  const int8_t* wp = a.w;
  const uint8_t* const xb = a.x;
  int64_t t = a.taps;  // >= 1
  const int64_t cg4 = a.Cg4, s = a.plane_bytes;  // >= 1; locals, addressed off the stack
  if constexpr (NV == 2) {
    asm volatile(
        FINCH_IG_ZERO2(0) FINCH_IG_ZERO2(1) FINCH_IG_ZERO2(2) FINCH_IG_ZERO2(3) FINCH_IG_ZERO2(4) FINCH_IG_ZERO2(5)
        FINCH_IG_ZERO2(6)
        FINCH_IG_TAP_HEAD
        "vmovdqu64 (%[w]), %%zmm30\n\t"
        "vmovdqu64 64(%[w]), %%zmm31\n\t"
        FINCH_IG_PIX2(0, "r8", "zmm28") FINCH_IG_PIX2(1, "r9", "zmm29") FINCH_IG_PIX2(2, "r10", "zmm28")
        FINCH_IG_PIX2(3, "r11", "zmm29") FINCH_IG_PIX2(4, "r12", "zmm28") FINCH_IG_PIX2(5, "r13", "zmm29")
        FINCH_IG_PIX2(6, "r14", "zmm28")
        "add $128, %[w]\n\t"
        FINCH_IG_TAP_TAIL
        : [c0a] "=v"(c0a), [c1a] "=v"(c1a), [c2a] "=v"(c2a), [c3a] "=v"(c3a), [c4a] "=v"(c4a), [c5a] "=v"(c5a),
          [c6a] "=v"(c6a), [c0b] "=v"(c0b), [c1b] "=v"(c1b), [c2b] "=v"(c2b), [c3b] "=v"(c3b), [c4b] "=v"(c4b),
          [c5b] "=v"(c5b), [c6b] "=v"(c6b), [w] "+r"(wp), [tab] "+r"(tab), [t] "+r"(t)
        : [xb] "r"(xb), [cg4] "m"(cg4), [s] "m"(s)
        : "rax", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "zmm28", "zmm29", "zmm30", "zmm31",
          "memory", "cc");
  } else if (cg4 % 2 == 0) {
    // 16 channels, an even number of channel quads (16-channel layers: Cg4 = 4): the quads go in
    // pairs, the even one into c*a and the odd one into c*b, summed after the loop. 7 chains of
    // vpdpbusd (latency 5) keep at most 1.4 in flight per cycle, and a core with two VNNI ports
    // (Intel's AVX-512 servers) can start 2; 14 chains can. The int32 sums wrap, so adding the two
    // halves gives exactly the one-chain sum.
    asm volatile(
        FINCH_IG_ZERO2(0) FINCH_IG_ZERO2(1) FINCH_IG_ZERO2(2) FINCH_IG_ZERO2(3) FINCH_IG_ZERO2(4) FINCH_IG_ZERO2(5)
        FINCH_IG_ZERO2(6)
        FINCH_IG_TAP_HEAD
        "mov %%rax, %%r15\n\t"
        "add %[s], %%r15\n\t"  // the odd quad's plane
        "vmovdqu64 (%[w]), %%zmm30\n\t"
        "vmovdqu64 64(%[w]), %%zmm31\n\t"
        FINCH_IG_PAIR(0, "r8") FINCH_IG_PAIR(1, "r9") FINCH_IG_PAIR(2, "r10") FINCH_IG_PAIR(3, "r11")
        FINCH_IG_PAIR(4, "r12") FINCH_IG_PAIR(5, "r13") FINCH_IG_PAIR(6, "r14")
        "add $128, %[w]\n\t"
        "mov %%r15, %%rax\n\t"
        "add %[s], %%rax\n\t"
        "sub $2, %%rdx\n\t"
        "jnz 1b\n\t"
        "add $28, %[tab]\n\t"
        "dec %[t]\n\t"
        "jnz 2b\n\t"
        : [c0a] "=v"(c0a), [c1a] "=v"(c1a), [c2a] "=v"(c2a), [c3a] "=v"(c3a), [c4a] "=v"(c4a), [c5a] "=v"(c5a),
          [c6a] "=v"(c6a), [c0b] "=v"(c0b), [c1b] "=v"(c1b), [c2b] "=v"(c2b), [c3b] "=v"(c3b), [c4b] "=v"(c4b),
          [c5b] "=v"(c5b), [c6b] "=v"(c6b), [w] "+r"(wp), [tab] "+r"(tab), [t] "+r"(t)
        : [xb] "r"(xb), [cg4] "m"(cg4), [s] "m"(s)
        : "rax", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "zmm28", "zmm29", "zmm30", "zmm31",
          "memory", "cc");
    c0a = _mm512_add_epi32(c0a, c0b), c1a = _mm512_add_epi32(c1a, c1b), c2a = _mm512_add_epi32(c2a, c2b);
    c3a = _mm512_add_epi32(c3a, c3b), c4a = _mm512_add_epi32(c4a, c4b), c5a = _mm512_add_epi32(c5a, c5b);
    c6a = _mm512_add_epi32(c6a, c6b);
    c0b = c1b = c2b = c3b = c4b = c5b = c6b = _mm512_setzero_si512();
  } else {
    asm volatile(
        FINCH_IG_ZERO(0) FINCH_IG_ZERO(1) FINCH_IG_ZERO(2) FINCH_IG_ZERO(3) FINCH_IG_ZERO(4) FINCH_IG_ZERO(5)
        FINCH_IG_ZERO(6)
        FINCH_IG_TAP_HEAD
        "vmovdqu64 (%[w]), %%zmm30\n\t"
        FINCH_IG_PIX1(0, "r8", "zmm28") FINCH_IG_PIX1(1, "r9", "zmm29") FINCH_IG_PIX1(2, "r10", "zmm28")
        FINCH_IG_PIX1(3, "r11", "zmm29") FINCH_IG_PIX1(4, "r12", "zmm28") FINCH_IG_PIX1(5, "r13", "zmm29")
        FINCH_IG_PIX1(6, "r14", "zmm28")
        "add $64, %[w]\n\t"
        FINCH_IG_TAP_TAIL
        : [c0a] "=v"(c0a), [c1a] "=v"(c1a), [c2a] "=v"(c2a), [c3a] "=v"(c3a), [c4a] "=v"(c4a), [c5a] "=v"(c5a),
          [c6a] "=v"(c6a), [w] "+r"(wp), [tab] "+r"(tab), [t] "+r"(t)
        : [xb] "r"(xb), [cg4] "m"(cg4), [s] "m"(s)
        : "rax", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "zmm28", "zmm29", "zmm30", "zmm31",
          "memory", "cc");
    c0b = c1b = c2b = c3b = c4b = c5b = c6b = _mm512_setzero_si512();
  }
  const int64_t p0 = tile * MR, count = std::min(MR, a.P - p0);
  const __m512i qlo = _mm512_set1_epi32(a.qmin), qhi = _mm512_set1_epi32(a.qmax);
  const AddConsts16 k = a.add ? AddConsts16(*a.add) : AddConsts16();
  const uint8_t* const r = a.add ? a.add->r_at(a.out + p0) : nullptr;
  {
    const __m512i c[MR] = {c0a, c1a, c2a, c3a, c4a, c5a, c6a};
    const int64_t rows = std::min<int64_t>(16, a.rows);
    __m128i x[MR];
    IgemmCodes7(a.q[0], c, qlo, qhi, a.add, k, r, rows, count, a.P, wide, x);
    IgemmStore7(x, rows, count, a.out + p0, a.P, wide);
  }
  if (NV == 2 && a.rows > 16) {
    const __m512i c[MR] = {c0b, c1b, c2b, c3b, c4b, c5b, c6b};
    __m128i x[MR];
    IgemmCodes7(a.q[1], c, qlo, qhi, a.add, k, r ? r + 16 * a.P : nullptr, a.rows - 16, count, a.P, wide, x);
    IgemmStore7(x, a.rows - 16, count, a.out + 16 * a.P + p0, a.P, wide);
  }
}
#undef FINCH_IG_PIX1
#undef FINCH_IG_PIX2
#undef FINCH_IG_PAIR
#undef FINCH_IG_TAP_HEAD
#undef FINCH_IG_TAP_TAIL
#undef FINCH_IG_ZERO
#undef FINCH_IG_ZERO2
#endif  // HWY_TARGET == HWY_AVX3_DL

bool IgemmAvailable() { return HWY_TARGET == HWY_AVX3_DL; }

void IgemmTiles(const IgemmArgs& a, int64_t tile0, int64_t tile1) {
#if HWY_TARGET == HWY_AVX3_DL
  // Tiles in increasing order: a wide store's eighth byte is overwritten by the next tile.
  for (int64_t t = tile0; t < tile1; ++t) {
    if (a.nv == 2)
      IgemmTile<2>(a, t, t + 1 < tile1);
    else
      IgemmTile<1>(a, t, t + 1 < tile1);
  }
#else
  (void)a, (void)tile0, (void)tile1;
  HWY_ASSERT(false);  // callers check igemm_available() first
#endif
}

}  // namespace finch::quant::kernels::qs8::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels::qs8 {

HWY_EXPORT(IgemmAvailable);
HWY_EXPORT(IgemmTiles);

bool igemm_available() { return FINCH_DISPATCH(IgemmAvailable)(); }
namespace {
std::atomic<bool> g_igemm_enabled{true};
}  // namespace
void set_igemm_enabled(bool on) { g_igemm_enabled.store(on, std::memory_order_relaxed); }
bool igemm_enabled() { return g_igemm_enabled.load(std::memory_order_relaxed); }
void qu8s8_igemm_tiles(const IgemmArgs& a, int64_t tile0, int64_t tile1) {
  FINCH_DISPATCH(IgemmTiles)(a, tile0, tile1);
}

bool igemm_rows_ok(const RowQuant* q, int64_t rows, int32_t z_out) {
  if (z_out < -1023 || z_out > 1023) return false;
  for (int64_t m = 0; m < rows; ++m)
    if (q[m].m.total_shift() < 32 || q[m].m.total_shift() > 52) return false;
  return true;
}

std::vector<IgemmQuant16> igemm_quants(const RowQuant* q, int64_t rows, int32_t z_out) {
  if (!igemm_rows_ok(q, rows, z_out)) fail("igemm_quants: expected total shifts in 32..52 and |z_out| <= 1023");
  std::vector<IgemmQuant16> out(size_t((rows + 15) / 16));
  auto rnd = [&](int n) { return (int64_t{1} << (n - 1)) + int64_t{z_out} * (int64_t{1} << n); };
  for (size_t v = 0; v < out.size(); ++v) {
    IgemmQuant16& d = out[v];
    for (int l = 0; l < 16; ++l) {
      const int64_t m = int64_t(v) * 16 + l;
      const bool real = m < rows;
      const int n = real ? q[m].m.total_shift() : 32;
      d.off[l] = real ? q[m].offset : 0;
      d.mul[l] = real ? q[m].m.multiplier : 0;
      d.sh[l] = n - 32;
      (l % 2 ? d.rnd_odd : d.rnd_even)[l / 2] = rnd(n);
    }
    for (int l = 0; l < 16; ++l) d.mul_odd[l] = l % 2 ? 0 : d.mul[l + 1];
  }
  return out;
}

std::vector<int8_t> igemm_pack_weights(const int8_t* w, int64_t M, int64_t Cg, int64_t taps, int64_t nv) {
  const int64_t NB = 16 * nv, Cg4 = (Cg + 3) / 4, blocks = (M + NB - 1) / NB, K4 = taps * Cg4;
  std::vector<int8_t> out(size_t(blocks * K4 * NB * 4), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t t = 0; t < taps; ++t)
        out[size_t(((m / NB * K4 + t * Cg4 + c / 4) * NB + m % NB) * 4 + c % 4)] = w[(m * Cg + c) * taps + t];
  return out;
}

}  // namespace finch::quant::kernels::qs8
#endif  // HWY_ONCE
