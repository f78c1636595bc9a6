// The AVX-512 VNNI micro-kernels of the int8 GEMM (the 8×32 tile, the narrow 16×16 tile) and
// their register epilogues. Included by qs8_gemm_hwy.cc inside its per-target namespace, for the
// AVX3_DL target only (after HighShiftZeroPoint; RequantRow there states the rule they apply).
#if HWY_TARGET == HWY_AVX3_DL

#include "kernels/qs8_add_vnni-inl.h"  // AddConsts16, AddCodes16: the fused residual add

// c += dot4(x u8, w i8) per int32 lane. Inline asm rather than _mm512_dpbusd_epi32: GCC 12
// allocates that builtin's operands in zmm0–15 only (the pattern it shares with the VEX
// AVX-VNNI form), which made the 8×2 tile copy its 16 accumulators between registers on every
// step; "v" allows all 32.
HWY_INLINE void Dpbusd(__m512i& c, __m512i x, __m512i w) { asm("vpdpbusd %2, %1, %0" : "+v"(c) : "v"(x), "v"(w)); }

// The k loop's shared assembly: zeroing the 16 accumulators, and one step's 8 weight broadcasts
// and 16 vpdpbusd against the pixel vectors in zmm16, zmm17.
#define FINCH_QS8_ZERO_8X2 \
  "vpxord %[c0a], %[c0a], %[c0a]\n\t" \
  "vpxord %[c0b], %[c0b], %[c0b]\n\t" \
  "vpxord %[c1a], %[c1a], %[c1a]\n\t" \
  "vpxord %[c1b], %[c1b], %[c1b]\n\t" \
  "vpxord %[c2a], %[c2a], %[c2a]\n\t" \
  "vpxord %[c2b], %[c2b], %[c2b]\n\t" \
  "vpxord %[c3a], %[c3a], %[c3a]\n\t" \
  "vpxord %[c3b], %[c3b], %[c3b]\n\t" \
  "vpxord %[c4a], %[c4a], %[c4a]\n\t" \
  "vpxord %[c4b], %[c4b], %[c4b]\n\t" \
  "vpxord %[c5a], %[c5a], %[c5a]\n\t" \
  "vpxord %[c5b], %[c5b], %[c5b]\n\t" \
  "vpxord %[c6a], %[c6a], %[c6a]\n\t" \
  "vpxord %[c6b], %[c6b], %[c6b]\n\t" \
  "vpxord %[c7a], %[c7a], %[c7a]\n\t" \
  "vpxord %[c7b], %[c7b], %[c7b]\n\t"
#define FINCH_QS8_STEP_8X2 \
  "vpbroadcastd 0(%[w]), %%zmm18\n\t" \
  "vpdpbusd %%zmm18, %%zmm16, %[c0a]\n\t" \
  "vpdpbusd %%zmm18, %%zmm17, %[c0b]\n\t" \
  "vpbroadcastd 4(%[w]), %%zmm19\n\t" \
  "vpdpbusd %%zmm19, %%zmm16, %[c1a]\n\t" \
  "vpdpbusd %%zmm19, %%zmm17, %[c1b]\n\t" \
  "vpbroadcastd 8(%[w]), %%zmm18\n\t" \
  "vpdpbusd %%zmm18, %%zmm16, %[c2a]\n\t" \
  "vpdpbusd %%zmm18, %%zmm17, %[c2b]\n\t" \
  "vpbroadcastd 12(%[w]), %%zmm19\n\t" \
  "vpdpbusd %%zmm19, %%zmm16, %[c3a]\n\t" \
  "vpdpbusd %%zmm19, %%zmm17, %[c3b]\n\t" \
  "vpbroadcastd 16(%[w]), %%zmm18\n\t" \
  "vpdpbusd %%zmm18, %%zmm16, %[c4a]\n\t" \
  "vpdpbusd %%zmm18, %%zmm17, %[c4b]\n\t" \
  "vpbroadcastd 20(%[w]), %%zmm19\n\t" \
  "vpdpbusd %%zmm19, %%zmm16, %[c5a]\n\t" \
  "vpdpbusd %%zmm19, %%zmm17, %[c5b]\n\t" \
  "vpbroadcastd 24(%[w]), %%zmm18\n\t" \
  "vpdpbusd %%zmm18, %%zmm16, %[c6a]\n\t" \
  "vpdpbusd %%zmm18, %%zmm17, %[c6b]\n\t" \
  "vpbroadcastd 28(%[w]), %%zmm19\n\t" \
  "vpdpbusd %%zmm19, %%zmm16, %[c7a]\n\t" \
  "vpdpbusd %%zmm19, %%zmm17, %[c7b]\n\t"

// Highway's AVX3_DL target string lacks "avx512vnni" (its CPU check does require VNNI). The
// attribute repeats HWY_TARGET_STR: clang (scripts/sanitize.sh) replaces the pragma's target list
// with a function's own, and would then refuse to inline Dpbusd and the HWY_ATTR epilogues.
// The 16 accumulators are named variables, not an array: GCC keeps an array of vectors that
// inline asm updates in memory.
// The sums go to epi(m, row m pixels 0..15, pixels 16..31): stored raw, or requantized from the
// registers (RequantTile8x32).
// kIndirect: the activations are read in place at x + off[k4] (no packed tile).
template <bool kIndirect = false, class Epi>
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void qu8s8_gemm_8x32c4__avx512vnni(const int8_t* w, const uint8_t* x, int64_t K4,
                                                               const Epi& epi, const int64_t* off = nullptr) {
  static_assert(kMR == 8 && kNR == 2, "the tile below is written out for 8×2 vectors");
  constexpr int64_t T = kNR * 16;
  // The k loop as one assembly block (zeroing included, so the accumulators are plain outputs:
  // GCC allows 30 operands). Written with intrinsics, GCC 12 copied one accumulator through a
  // second register twice per step: two extra vector uops on the ports the 16 vpdpbusd need.
  __m512i c0a, c0b, c1a, c1b, c2a, c2b, c3a, c3b, c4a, c4b, c5a, c5b, c6a, c6b, c7a, c7b;
  const uint8_t* xp = x;
  const int8_t* wp = w;
  int64_t k = K4;
  if constexpr (!kIndirect) {
    asm volatile(
        FINCH_QS8_ZERO_8X2
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovdqu64 (%[x]), %%zmm16\n\t"
        "vmovdqu64 64(%[x]), %%zmm17\n\t"
        FINCH_QS8_STEP_8X2
        "add $128, %[x]\n\t"
        "add $32, %[w]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        : [c0a] "=v"(c0a), [c0b] "=v"(c0b), [c1a] "=v"(c1a), [c1b] "=v"(c1b), [c2a] "=v"(c2a), [c2b] "=v"(c2b), [c3a] "=v"(c3a), [c3b] "=v"(c3b), [c4a] "=v"(c4a), [c4b] "=v"(c4b), [c5a] "=v"(c5a), [c5b] "=v"(c5b), [c6a] "=v"(c6a), [c6b] "=v"(c6b), [c7a] "=v"(c7a), [c7b] "=v"(c7b),
          [x] "+r"(xp), [w] "+r"(wp), [k] "+r"(k)
        :
        : "zmm16", "zmm17", "zmm18", "zmm19", "memory", "cc");
  } else {
    // Step k4 reads the 32 pixels' words at x + off[k4] (qs8_gemm.h qu8s8_gemm_tile_indirect).
    const int64_t* op = off;
    int64_t at;
    asm volatile(
        FINCH_QS8_ZERO_8X2
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "mov (%[o]), %[at]\n\t"
        "vmovdqu64 (%[x],%[at]), %%zmm16\n\t"
        "vmovdqu64 64(%[x],%[at]), %%zmm17\n\t"
        FINCH_QS8_STEP_8X2
        "add $8, %[o]\n\t"
        "add $32, %[w]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        : [c0a] "=v"(c0a), [c0b] "=v"(c0b), [c1a] "=v"(c1a), [c1b] "=v"(c1b), [c2a] "=v"(c2a), [c2b] "=v"(c2b), [c3a] "=v"(c3a), [c3b] "=v"(c3b), [c4a] "=v"(c4a), [c4b] "=v"(c4b), [c5a] "=v"(c5a), [c5b] "=v"(c5b), [c6a] "=v"(c6a), [c6b] "=v"(c6b), [c7a] "=v"(c7a), [c7b] "=v"(c7b),
          [o] "+r"(op), [at] "=&r"(at), [w] "+r"(wp), [k] "+r"(k)
        : [x] "r"(xp)
        : "zmm16", "zmm17", "zmm18", "zmm19", "memory", "cc");
  }
  static_assert(T * 4 == 128 && kMR * 4 == 32, "the assembly steps 128 activation and 32 weight bytes");
  epi(0, c0a, c0b), epi(1, c1a, c1b), epi(2, c2a, c2b), epi(3, c3a, c3b);
  epi(4, c4a, c4b), epi(5, c5a, c5b), epi(6, c6a, c6b), epi(7, c7a, c7b);
}

// True when every row of the tile has a total shift in 32..52 (all ordinary layers) and z_out
// is small enough for RequantRow's folded rounding term, which RequantTile8x32 handles.
HWY_INLINE bool HighShiftRows(const RowQuant* q, int64_t rows, const OutQuant& o) {
  bool ok = HighShiftZeroPoint(o.z_out);
  for (int64_t m = 0; m < rows; ++m) ok &= unsigned(q[m].m.total_shift() - 32) <= 20u;
  return ok;
}

// RequantRow's n = 32..52 rule (the exactness argument is there) for one row, applied to vectors
// of 16 raw sums in registers: the clamped int32 codes, in lane order. The row's constants are
// broadcast once at construction.
struct RequantHigh16 {
  __m512i off, mul, round, qlo, qhi;
  __m128i sh;
  HWY_INLINE RequantHigh16(const RowQuant& r, int32_t z_out, __m512i lo, __m512i hi) : qlo(lo), qhi(hi) {
    const int n = r.m.total_shift();
    off = _mm512_set1_epi32(r.offset), mul = _mm512_set1_epi32(r.m.multiplier);
    round = _mm512_set1_epi64((int64_t{1} << (n - 1)) + int64_t{z_out} * (int64_t{1} << n));
    sh = _mm_cvtsi32_si128(n - 32);
  }
  HWY_INLINE __m512i operator()(__m512i v) const {
    v = _mm512_add_epi32(v, off);  // wrapping int32 add
    const __m512i ev = _mm512_add_epi64(_mm512_mul_epi32(v, mul), round);
    const __m512i od = _mm512_add_epi64(_mm512_mul_epi32(_mm512_shuffle_epi32(v, _MM_PERM_CDAB), mul), round);
    // Odd lanes: od's high halves in place; even lanes: ev's high halves swapped down.
    const __m512i h = _mm512_mask_shuffle_epi32(od, __mmask16{0x5555}, ev, _MM_PERM_CDAB);
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_sra_epi32(h, sh), qlo), qhi);
  }
};

// The requantization of RequantRow's n = 32..52 branch (the exactness argument is there), on the
// tile's registers: no round trip of the sums through memory. The clamped int32 codes' low
// bytes are gathered by one vpermt2b per row (both vectors, 32 codes), and stored as 32 bytes
// (masked for a partial tile); rows >= `rows` are neither read nor stored.
// kAdd: with the fused residual add (a separate instantiation: the plain epilogue stays as small
// as it was; with the add's code in it the 16→96 1×1 conv at 28² ran 5 % slower).
template <bool kAdd = false>
struct RequantTile8x32 {
  const RowQuant* q;
  int64_t rows;
  __m512i qlo, qhi, low_bytes;
  __mmask32 keep;
  uint8_t* out;
  int64_t row_stride;
  int32_t z_out;

  const TileSegments* seg = nullptr;  // qs8_gemm.h: stores skipping the virtual columns
  __mmask32 seg_keep[TileSegments::kMax];
  const TileAdd* add = nullptr;  // the fused residual add (never with seg)
  AddConsts16 ak;

  RequantTile8x32(const RowQuant* q_, int64_t rows_, int64_t count, const OutQuant& o, uint8_t* out_, int64_t rs,
                  const TileSegments* sg = nullptr, const TileAdd* ad = nullptr)
      : q(q_), rows(rows_), out(out_), row_stride(rs), z_out(o.z_out), seg(sg), add(ad) {
    if (seg)
      for (int s = 0; s < seg->n; ++s)
        seg_keep[s] = __mmask32(((uint64_t{1} << seg->hi[s]) - 1) & ~((uint64_t{1} << seg->lo[s]) - 1));
    // Byte 4i of the pair (a, b): the low byte of code i.
    alignas(64) static constexpr uint8_t kLowBytes[64] = {
        0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60,
        64, 68, 72, 76, 80, 84, 88, 92, 96, 100, 104, 108, 112, 116, 120, 124};
    qlo = _mm512_set1_epi32(o.qmin), qhi = _mm512_set1_epi32(o.qmax);
    if (add) {  // the conv's codes minus z_conv for AddCodes16: z_out 0, the clamp moved by it
      ak = AddConsts16(*add);
      z_out = 0, qlo = _mm512_set1_epi32(o.qmin - o.z_out), qhi = _mm512_set1_epi32(o.qmax - o.z_out);
    }
    low_bytes = _mm512_load_si512(kLowBytes);
    keep = count >= 32 ? ~__mmask32{0} : __mmask32((uint32_t{1} << count) - 1);
  }

  HWY_INLINE void operator()(int64_t m, __m512i a, __m512i b) const {
    if (m >= rows) return;
    const RequantHigh16 fix(q[m], z_out, qlo, qhi);
    uint8_t* dst = out + m * row_stride;
    __m512i ca = fix(a), cb = fix(b);
    if constexpr (kAdd) {  // the residual's 32 codes of this row, where the codes would be stored
      const uint8_t* rp = add->r_at(dst);
      ca = AddCodes16(ak, ca, _mm512_cvtepi8_epi32(AddLoad16(ak, rp, __mmask16(keep))));
      cb = AddCodes16(ak, cb, _mm512_cvtepi8_epi32(AddLoad16(ak, rp + 16, __mmask16(keep >> 16))));
    }
    const __m256i codes = _mm512_castsi512_si256(_mm512_permutex2var_epi8(ca, low_bytes, cb));
    if (seg) {
      // Masked-off lanes neither store nor fault, whatever address they would have had.
      for (int s = 0; s < seg->n; ++s) _mm256_mask_storeu_epi8(dst + seg->off[s], seg_keep[s], codes);
      return;
    }
    if (keep == ~__mmask32{0})
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), codes);
    else
      _mm256_mask_storeu_epi8(dst, keep, codes);
  }
};

// The narrow tile: 16 pixels (one vector) against NB = 1 or 2 consecutive weight blocks (8 or
// 16 rows), for pixel tiles of at most 16 (a 4×4 plane, a tail), where the 8×32 tile would
// multiply 16 padding pixels: here every vpdpbusd does useful work, and two blocks keep 16
// independent accumulators in flight as the 8×32 tile does. The sums go to epi(m, row m).
// off: null for a packed tile x [K4][16][4], else step k4 reads x + off[k4] in place.
template <int NB, class Epi>
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void qu8s8_gemm_16x16c4__avx512vnni(const int8_t* w, const uint8_t* x, int64_t K4,
                                                                const Epi& epi, const int64_t* off = nullptr) {
  constexpr int64_t T = 16;
  const int64_t wb = K4 * kMR * 4;  // bytes per weight block
  const __m512i z = _mm512_setzero_si512();
  __m512i c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z;
  __m512i c8 = z, c9 = z, c10 = z, c11 = z, c12 = z, c13 = z, c14 = z, c15 = z;
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    const __m512i xv = _mm512_loadu_si512(x + (off ? off[k4] : k4 * T * 4));
    auto row = [&](__m512i& a, const int8_t* wk) {
      int32_t w4;
      std::memcpy(&w4, wk, 4);
      Dpbusd(a, xv, _mm512_set1_epi32(w4));
    };
    const int8_t* w0 = w + k4 * kMR * 4;
    row(c0, w0), row(c1, w0 + 4), row(c2, w0 + 8), row(c3, w0 + 12);
    row(c4, w0 + 16), row(c5, w0 + 20), row(c6, w0 + 24), row(c7, w0 + 28);
    if constexpr (NB == 2) {
      const int8_t* w1 = w0 + wb;
      row(c8, w1), row(c9, w1 + 4), row(c10, w1 + 8), row(c11, w1 + 12);
      row(c12, w1 + 16), row(c13, w1 + 20), row(c14, w1 + 24), row(c15, w1 + 28);
    }
  }
  epi(0, c0), epi(1, c1), epi(2, c2), epi(3, c3), epi(4, c4), epi(5, c5), epi(6, c6), epi(7, c7);
  if constexpr (NB == 2) {
    epi(8, c8), epi(9, c9), epi(10, c10), epi(11, c11), epi(12, c12), epi(13, c13), epi(14, c14), epi(15, c15);
  }
}

// RequantTile8x32's register epilogue for one vector of 16 codes per row (vpmovdb keeps the low
// bytes of the clamped codes).
template <bool kAdd = false>  // as RequantTile8x32's
struct RequantTile16 {
  const RowQuant* q;
  int64_t rows;
  __m512i qlo, qhi;
  __mmask16 keep;
  uint8_t* out;
  int64_t row_stride;
  int32_t z_out;

  const TileSegments* seg = nullptr;
  __mmask16 seg_keep[TileSegments::kMax];
  const TileAdd* add = nullptr;  // the fused residual add (never with seg)
  AddConsts16 ak;

  RequantTile16(const RowQuant* q_, int64_t rows_, int64_t count, const OutQuant& o, uint8_t* out_, int64_t rs,
                const TileSegments* sg = nullptr, const TileAdd* ad = nullptr)
      : q(q_), rows(rows_), out(out_), row_stride(rs), z_out(o.z_out), seg(sg), add(ad) {
    if (seg)
      for (int s = 0; s < seg->n; ++s)
        seg_keep[s] = __mmask16(((uint32_t{1} << seg->hi[s]) - 1) & ~((uint32_t{1} << seg->lo[s]) - 1));
    qlo = _mm512_set1_epi32(o.qmin), qhi = _mm512_set1_epi32(o.qmax);
    if (add) {  // as RequantTile8x32
      ak = AddConsts16(*add);
      z_out = 0, qlo = _mm512_set1_epi32(o.qmin - o.z_out), qhi = _mm512_set1_epi32(o.qmax - o.z_out);
    }
    keep = count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1);
  }

  HWY_INLINE void operator()(int64_t m, __m512i v) const {
    if (m >= rows) return;
    const RequantHigh16 fix(q[m], z_out, qlo, qhi);
    __m512i c = fix(v);
    if constexpr (kAdd) c = AddCodes16(ak, c, _mm512_cvtepi8_epi32(AddLoad16(ak, add->r_at(out + m * row_stride), keep)));
    const __m128i codes = _mm512_cvtepi32_epi8(c);
    if (seg) {
      for (int s = 0; s < seg->n; ++s) _mm_mask_storeu_epi8(out + m * row_stride + seg->off[s], seg_keep[s], codes);
      return;
    }
    _mm_mask_storeu_epi8(out + m * row_stride, keep, codes);
  }
};

#undef FINCH_QS8_ZERO_8X2
#undef FINCH_QS8_STEP_8X2

#endif  // HWY_TARGET == HWY_AVX3_DL
