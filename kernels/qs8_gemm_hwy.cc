// Highway micro-kernels of the int8 GEMM (kernels/qs8_gemm.h): u8 activations × i8
// weights, exact int32 sums, then the exact requantization epilogue.
//
// Exactness: vpdpbusd adds four u8·i8 products into an int32 lane without saturation (never the
// saturating vpdpbusds, nor vpmaddubsw, which saturates at i16). The portable path widens both
// operands to i16 (255·128 fits) and sums pairs with ReorderWidenMulAccumulate, whose result is
// defined only after RearrangeToOddPlusEven (NEON keeps the two halves in separate sums).
// The epilogue multiplies in int64 (MulEven on even and shifted odd lanes) and rounds with
// (v + 2^(n−1)) >> n, which cannot overflow: |v| < 2^62 since |acc| <= 2^31, multiplier < 2^31.
// Total shifts 32..52 (every ordinary layer) take a cheaper exact form on int32 high halves
// (RequantRow), which the vnni tile applies to its registers directly (RequantTile8x32).
#include <cstring>

#include "kernels/qs8_gemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_gemm_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif
#undef FINCH_QS8_SDOT  // this file is compiled once per target
#if HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
#include "framework/cpu_features.h"
#include "kernels/qs8_gemm_neon_dot.h"
#define FINCH_QS8_SDOT 1  // the dot-product kernels (qs8_gemm_neon_dot.cc), chosen at run time
#else
#define FINCH_QS8_SDOT 0
#endif

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::qs8::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<int32_t>;
constexpr int64_t kMR = qs8::kMR;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(int32_t);

#if HWY_TARGET == HWY_AVX3_DL
// Vectors of pixels per micro-tile: 8×2 accumulators. Measured against 4×4 (T = 64): 8×2 runs
// the 512³ operator about 8% faster (a 4×64 tile holds 32 KB of activations at K = 512, most
// of L1), 4×4 runs a 16→16 3×3 conv (K = 144) about 15% faster.
constexpr int64_t kNR = 2;
#elif HWY_TARGET == HWY_SCALAR
constexpr int64_t kNR = 4;
#else
constexpr int64_t kNR = 1;  // 8 accumulators (plus NEON's second sums) fit 16 AVX2 registers
#endif

int64_t TilePixels() {
#if FINCH_QS8_SDOT
  if (cpu_has_arm_dotprod()) return neon_dot::kTilePixels;
#endif
  return kNR * int64_t(hn::Lanes(DI()));
}

const char* GemmKernelName() {
#if FINCH_QS8_SDOT
  if (cpu_has_arm_dotprod()) return "sdot";
#endif
#if HWY_TARGET == HWY_AVX3_DL
  return "vnni";
#elif HWY_TARGET == HWY_SCALAR
  return "scalar";
#else
  return "i16";
#endif
}

// The zero points for which RequantRow's n = 32..52 branch folds z_out into the rounding term
// without overflow (every 8-bit code).
HWY_INLINE bool HighShiftZeroPoint(int32_t z) { return z >= -1023 && z <= 1023; }

// acc [MR][T] = w [K4][MR][4] · x [K4][T][4], raw int32 sums.
#if HWY_TARGET == HWY_AVX3_DL
#include "kernels/qs8_gemm_vnni-inl.h"  // Dpbusd, the 8×32 and 16×16 tiles, their epilogues
#elif HWY_TARGET == HWY_SCALAR
// One lane: plain loops (Highway's scalar target has no byte vectors inside an int32 lane).
HWY_INLINE void qu8s8_gemm_8xNc4(const int8_t* w, const uint8_t* x, int64_t K4, int32_t* acc) {
  constexpr int64_t T = kNR;
  for (int64_t i = 0; i < kMR * T; ++i) acc[i] = 0;
  for (int64_t k4 = 0; k4 < K4; ++k4)
    for (int64_t m = 0; m < kMR; ++m)
      for (int64_t t = 0; t < T; ++t) {
        int32_t s = 0;
        for (int64_t j = 0; j < 4; ++j) s += int32_t(x[(k4 * T + t) * 4 + j]) * w[(k4 * kMR + m) * 4 + j];
        acc[m * T + t] = int32_t(uint32_t(acc[m * T + t]) + uint32_t(s));
      }
}
#else
HWY_INLINE void qu8s8_gemm_8xNc4(const int8_t* w, const uint8_t* x, int64_t K4, int32_t* acc) {
  const DI di;
  const hn::Repartition<int16_t, DI> d16;
  const hn::Repartition<uint16_t, DI> du16;
  const size_t L = hn::Lanes(di);
  const int64_t T = kNR * int64_t(L);
  using VI = hn::Vec<DI>;
  VI s0[kMR][kNR], s1[kMR][kNR];
  for (int64_t m = 0; m < kMR; ++m)
    for (int64_t j = 0; j < kNR; ++j) s0[m][j] = s1[m][j] = hn::Zero(di);
  const auto lo_byte = hn::Set(du16, uint16_t{0xFF});
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    const uint8_t* xk = x + k4 * T * 4;
    hn::Vec<decltype(d16)> xe[kNR], xo[kNR];
    for (int64_t j = 0; j < kNR; ++j) {
      // u16 lanes (x0 | x1<<8, x2 | x3<<8) of one pixel -> even bytes (x0, x2), odd (x1, x3).
      const auto xu = hn::BitCast(du16, hn::LoadU(hn::Repartition<uint8_t, DI>(), xk + j * L * 4));
      xe[j] = hn::BitCast(d16, hn::And(xu, lo_byte));
      xo[j] = hn::BitCast(d16, hn::ShiftRight<8>(xu));
    }
    const int8_t* wk = w + k4 * kMR * 4;
    for (int64_t m = 0; m < kMR; ++m) {
      int32_t w4;
      std::memcpy(&w4, wk + m * 4, 4);
      const auto w16 = hn::BitCast(d16, hn::Set(di, w4));
      const auto we = hn::ShiftRight<8>(hn::ShiftLeft<8>(w16)), wo = hn::ShiftRight<8>(w16);  // sign-extended
      for (int64_t j = 0; j < kNR; ++j) {
        s0[m][j] = hn::ReorderWidenMulAccumulate(di, xe[j], we, s0[m][j], s1[m][j]);
        s0[m][j] = hn::ReorderWidenMulAccumulate(di, xo[j], wo, s0[m][j], s1[m][j]);
      }
    }
  }
  for (int64_t m = 0; m < kMR; ++m)
    for (int64_t j = 0; j < kNR; ++j) hn::StoreU(hn::RearrangeToOddPlusEven(s0[m][j], s1[m][j]), di, acc + m * T + j * L);
}
#endif

// The spec's requantization of one element (qs8_gemm.h RowQuant).
HWY_INLINE int32_t RequantOne(int32_t raw, const RowQuant& q, const OutQuant& o) {
  const int32_t acc = int32_t(uint32_t(raw) + uint32_t(q.offset));
  return requantize(acc, q.m, o.z_out, o.qmin, o.qmax);
}

// Codes of count (<= T) raw sums of one row into out[t·col_stride]. z, lo, hi: z_out, qmin,
// qmax broadcast once per tile.

// Stores one vector of output codes at out + i, only the first count − i of them when the row
// ends inside the vector.
template <class DT, class V, typename TOut>
HWY_INLINE void StoreCodes(DT dt, V codes, TOut* out, int64_t i, int64_t count) {
  if (i + int64_t(hn::Lanes(dt)) <= count) {
    hn::StoreU(codes, dt, out + i);
    return;
  }
  HWY_ALIGN TOut buf[kMaxLanes];
  hn::Store(codes, dt, buf);
  std::memcpy(out + i, buf, size_t(count - i) * sizeof(TOut));
}

template <typename TOut, class V64>
HWY_INLINE void RequantRow(const int32_t* raw, int64_t count, const RowQuant& q, const OutQuant& o, V64 z, V64 lo,
                           V64 hi, TOut* out, int64_t col_stride) {
#if HWY_TARGET != HWY_SCALAR
  const int n = q.m.total_shift();
  if (n >= 32 && n <= 52 && HighShiftZeroPoint(o.z_out) && col_stride == 1) {
    // Every real multiplier in [2^-21, 0.5): all ordinary layers. For n >= 32,
    //   (v + 2^(n−1)) >> n = ((v + 2^(n−1)) >> 32) >> (n − 32),
    // and the first shift is the high int32 half of each product, so the rest runs on int32
    // lanes: no 64-bit shifts (which share port 0 with the multiplies on AVX-512), lane swaps
    // move the halves. z_out is folded into the rounding term: (v + 2^(n−1) + z·2^n) >> n =
    // rounded + z exactly, and with |v| < 2^62, 2^(n−1) + |z|·2^n < 2^62 for n <= 52 and
    // |z| <= 1023 (codes are 8-bit), the int64 sum cannot overflow. Then one int32 clamp against qmin, qmax (the
    // value is floor of the same real number, so clamping it equals the int64 rule's clamp), and
    // the narrowing is exact.
    const DI di;
    const hn::Repartition<int64_t, DI> d64;
    const hn::Rebind<TOut, DI> dt;
    const int64_t L = int64_t(hn::Lanes(di));
    const auto off = hn::Set(di, q.offset), mul = hn::Set(di, q.m.multiplier);
    const auto round = hn::Set(d64, (int64_t{1} << (n - 1)) + int64_t{o.z_out} * (int64_t{1} << n));
    const auto qlo = hn::Set(di, o.qmin), qhi = hn::Set(di, o.qmax);
    const int sh = n - 32;
    for (int64_t i = 0; i < count; i += L) {
      const auto a = hn::Add(hn::LoadU(di, raw + i), off);  // wrapping int32 add
      const auto ev = hn::Add(hn::MulEven(a, mul), round);
      const auto od = hn::Add(hn::MulEven(hn::Shuffle2301(a), mul), round);
      // High halves: odd's already sit in the odd lanes; even's move down by the swap.
      const auto h = hn::OddEven(hn::BitCast(di, od), hn::Shuffle2301(hn::BitCast(di, ev)));
      const auto r = hn::Min(hn::Max(hn::ShiftRightSame(h, sh), qlo), qhi);
      const auto codes = hn::DemoteTo(dt, r);
      StoreCodes(dt, codes, out, i, count);
    }
    return;
  }
  if (n >= 1 && col_stride == 1) {
    const DI di;
    const hn::Repartition<int64_t, DI> d64;
    const hn::Rebind<TOut, DI> dt;
    const int64_t L = int64_t(hn::Lanes(di));
    const bool zero = n >= 64;  // rounding_shift gives 0 for any product: use 0 · multiplier
    const int nn = zero ? 31 : n;
    const auto off = hn::Set(di, q.offset), mul = hn::Set(di, zero ? 0 : q.m.multiplier);
    const auto half = hn::Set(d64, int64_t{1} << (nn - 1));
    // n >= 31 (every multiplier below 1): |acc · multiplier| < 2^62, so the shifted value fits
    // int32 and the clamp and + z_out run on one i32 vector; smaller n clamp in int64 first.
    const bool narrow = nn >= 31;
    const auto lo32 = hn::Set(di, o.qmin - o.z_out), hi32 = hn::Set(di, o.qmax - o.z_out), z32 = hn::Set(di, o.z_out);
    auto fix = [&](auto v) {
      const auto r = hn::ShiftRightSame(hn::Add(v, half), nn);
      return narrow ? r : hn::Min(hn::Max(hn::Add(r, z), lo), hi);
    };
    for (int64_t i = 0; i < count; i += L) {
      const auto a = hn::Add(hn::LoadU(di, raw + i), off);  // wrapping int32 add
      const auto ev = fix(hn::MulEven(a, mul));
      const auto od = fix(hn::MulEven(hn::BitCast(di, hn::ShiftRight<32>(hn::BitCast(d64, a))), mul));
      auto r = hn::OddEven(hn::BitCast(di, hn::ShiftLeft<32>(od)), hn::BitCast(di, ev));
      if (narrow) r = hn::Add(hn::Min(hn::Max(r, lo32), hi32), z32);
      const auto codes = hn::DemoteTo(dt, r);  // exact: r is inside [qmin, qmax]
      StoreCodes(dt, codes, out, i, count);
    }
    return;
  }
#else
  (void)z, (void)lo, (void)hi;
#endif
  for (int64_t t = 0; t < count; ++t) out[t * col_stride] = TOut(RequantOne(raw[t], q, o));
}

// RequantRow over `rows` rows of raw sums acc [rows][T].
void RequantRows(const int32_t* acc, int64_t T, int64_t rows, int64_t count, const RowQuant* q, const OutQuant& o,
                 uint8_t* out, int64_t row_stride, int64_t col_stride) {
#if HWY_TARGET != HWY_SCALAR
  const hn::Repartition<int64_t, DI> d64;
  const auto z = hn::Set(d64, o.z_out), lo = hn::Set(d64, o.qmin), hi = hn::Set(d64, o.qmax);
#else
  const int64_t z = 0, lo = 0, hi = 0;  // unused: the scalar target requantizes element by element
#endif
  for (int64_t m = 0; m < rows; ++m) {
    if (o.u8)
      RequantRow(acc + m * T, count, q[m], o, z, lo, hi, out + m * row_stride, col_stride);
    else
      RequantRow(acc + m * T, count, q[m], o, z, lo, hi, reinterpret_cast<int8_t*>(out + m * row_stride), col_stride);
  }
}

bool TileAddInRegisters() { return HWY_TARGET == HWY_AVX3_DL; }

void Qu8s8GemmTile(const int8_t* w, const uint8_t* x, int64_t K4, int64_t T, int64_t rows, int64_t count,
                   const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, int64_t col_stride,
                   const TileAdd* add) {
  HWY_DASSERT(!add || col_stride == 1);
#if FINCH_QS8_SDOT
  // The tile width says which kernel TilePixels() chose when the tile was packed.
  static_assert(neon_dot::kTilePixels != kNR * 4, "NEON: the sdot and portable tiles must differ");
  if (T == neon_dot::kTilePixels) {
    neon_dot::qs8_gemm_8x8c4__neondot(w, x, K4, T, rows, count, q, o, out, row_stride, col_stride);
    if (add) tile_add_rows(*add, o.u8, out, row_stride, rows, count);
    return;
  }
#endif
  HWY_DASSERT(T == kNR * int64_t(hn::Lanes(DI())) && rows <= kMR && count <= T);
  if (col_stride != 1) {
    // Transposed store (linear layers): requantize each row into a contiguous buffer with the
    // vector epilogue, then scatter the bytes.
    HWY_ALIGN uint8_t buf[kMR * kNR * kMaxLanes];
    Qu8s8GemmTile(w, x, K4, T, rows, count, q, o, buf, T, 1, nullptr);
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t t = 0; t < count; ++t) out[m * row_stride + t * col_stride] = buf[m * T + t];
    return;
  }
  HWY_ALIGN int32_t acc[kMR * kNR * kMaxLanes];
#if HWY_TARGET == HWY_AVX3_DL
  if (HighShiftRows(q, rows, o)) {
    if (add) return qu8s8_gemm_8x32c4__avx512vnni(w, x, K4, RequantTile8x32<true>(q, rows, count, o, out, row_stride, nullptr, add));
    return qu8s8_gemm_8x32c4__avx512vnni(w, x, K4, RequantTile8x32<>(q, rows, count, o, out, row_stride));
  }
  qu8s8_gemm_8x32c4__avx512vnni(w, x, K4, [&](int64_t m, __m512i a, __m512i b) HWY_ATTR {
    _mm512_store_si512(acc + m * T, a);
    _mm512_store_si512(acc + m * T + 16, b);
  });
#else
  qu8s8_gemm_8xNc4(w, x, K4, acc);
#endif
  RequantRows(acc, T, rows, count, q, o, out, row_stride, col_stride);
  if (add) tile_add_rows(*add, o.u8, out, row_stride, rows, count);
}

int64_t NarrowTilePixels() {
#if HWY_TARGET == HWY_AVX3_DL
  return 16;
#else
  return 0;
#endif
}

// Stores requantized codes buf [rows][T] as the segments say (qs8_gemm.h TileSegments), or the
// first count of each row at out + m·row_stride where seg is null.
void StoreCodeRows(const uint8_t* buf, int64_t T, int64_t rows, int64_t count, const TileSegments* seg, uint8_t* out,
                   int64_t row_stride) {
  for (int64_t m = 0; m < rows; ++m) {
    if (!seg) {
      std::memcpy(out + m * row_stride, buf + m * T, size_t(count));
      continue;
    }
    for (int s = 0; s < seg->n; ++s)
      std::memcpy(out + m * row_stride + seg->off[s] + seg->lo[s], buf + m * T + seg->lo[s],
                  size_t(seg->hi[s] - seg->lo[s]));
  }
}

// qs8_gemm.h qu8s8_gemm_tile_narrow.
// off: null for a packed tile, else the indirect form (qu8s8_gemm_tile_indirect_narrow).
void NarrowTile(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4, int64_t rows, int64_t count,
                const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride,
                const TileSegments* seg = nullptr, const TileAdd* add = nullptr) {
#if HWY_TARGET == HWY_AVX3_DL
  HWY_DASSERT(rows >= 1 && rows <= 2 * kMR && count >= 1 && count <= 16 && !(seg && add));
  if (HighShiftRows(q, rows, o)) {
    if (add) {
      const RequantTile16<true> epi(q, rows, count, o, out, row_stride, nullptr, add);
      return rows > kMR ? qu8s8_gemm_16x16c4__avx512vnni<2>(w, x, K4, epi, off)
                        : qu8s8_gemm_16x16c4__avx512vnni<1>(w, x, K4, epi, off);
    }
    const RequantTile16<> epi(q, rows, count, o, out, row_stride, seg);
    return rows > kMR ? qu8s8_gemm_16x16c4__avx512vnni<2>(w, x, K4, epi, off)
                      : qu8s8_gemm_16x16c4__avx512vnni<1>(w, x, K4, epi, off);
  }
  // Other shifts: the sums through memory and RequantRow, as Qu8s8GemmTile does.
  HWY_ALIGN int32_t acc[2 * kMR * 16];
  auto keep = [&](int64_t m, __m512i v) HWY_ATTR { _mm512_store_si512(acc + m * 16, v); };
  rows > kMR ? qu8s8_gemm_16x16c4__avx512vnni<2>(w, x, K4, keep, off)
             : qu8s8_gemm_16x16c4__avx512vnni<1>(w, x, K4, keep, off);
  if (!seg) {
    RequantRows(acc, 16, rows, count, q, o, out, row_stride, 1);
    if (add) tile_add_rows(*add, o.u8, out, row_stride, rows, count);
    return;
  }
  uint8_t codes[2 * kMR * 16];
  RequantRows(acc, 16, rows, count, q, o, codes, 16, 1);
  StoreCodeRows(codes, 16, rows, count, seg, out, row_stride);
#else
  (void)w, (void)x, (void)off, (void)K4, (void)rows, (void)count, (void)q, (void)o, (void)out, (void)row_stride;
  (void)seg, (void)add;
  HWY_ASSERT(false);  // callers check narrow_tile_pixels() first
#endif
}

void Qu8s8GemmTileNarrow(const int8_t* w, const uint8_t* x, int64_t K4, int64_t rows, int64_t count,
                         const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, const TileAdd* add) {
  NarrowTile(w, x, nullptr, K4, rows, count, q, o, out, row_stride, nullptr, add);
}

bool IndirectGemm() { return HWY_TARGET == HWY_AVX3_DL; }

// qs8_gemm.h qu8s8_gemm_tile_indirect: the 8×32 tile reading its activations in place.
void Qu8s8GemmTileIndirect(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4, int64_t rows,
                           int64_t count, const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride,
                           const TileSegments* seg, const TileAdd* add) {
#if HWY_TARGET == HWY_AVX3_DL
  HWY_DASSERT(rows >= 1 && rows <= kMR && count >= 1 && count <= 32 && !(seg && add));
  if (HighShiftRows(q, rows, o)) {
    if (add)
      return qu8s8_gemm_8x32c4__avx512vnni<true>(w, x, K4, RequantTile8x32<true>(q, rows, count, o, out, row_stride, nullptr, add), off);
    return qu8s8_gemm_8x32c4__avx512vnni<true>(w, x, K4, RequantTile8x32<>(q, rows, count, o, out, row_stride, seg), off);
  }
  HWY_ALIGN int32_t acc[kMR * 32];
  qu8s8_gemm_8x32c4__avx512vnni<true>(w, x, K4, [&](int64_t m, __m512i a, __m512i b) HWY_ATTR {
    _mm512_store_si512(acc + m * 32, a);
    _mm512_store_si512(acc + m * 32 + 16, b);
  }, off);
  if (!seg) {
    RequantRows(acc, 32, rows, count, q, o, out, row_stride, 1);
    if (add) tile_add_rows(*add, o.u8, out, row_stride, rows, count);
    return;
  }
  uint8_t codes[kMR * 32];
  RequantRows(acc, 32, rows, count, q, o, codes, 32, 1);
  StoreCodeRows(codes, 32, rows, count, seg, out, row_stride);
#else
  (void)w, (void)x, (void)off, (void)K4, (void)rows, (void)count, (void)q, (void)o, (void)out, (void)row_stride;
  (void)seg, (void)add;
  HWY_ASSERT(false);  // callers check indirect_gemm() first
#endif
}

void Qu8s8GemmTileIndirectNarrow(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4, int64_t rows,
                                 int64_t count, const RowQuant* q, const OutQuant& o, uint8_t* out,
                                 int64_t row_stride, const TileSegments* seg, const TileAdd* add) {
  NarrowTile(w, x, off, K4, rows, count, q, o, out, row_stride, seg, add);
}

// One row's dot product Σ x·w over Kp bytes (a multiple of kDotAlign).
#if HWY_TARGET == HWY_AVX3_DL
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) int32_t qu8s8_dot64(const uint8_t* x, const int8_t* w, int64_t Kp) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  int64_t k = 0;
  for (; k + 128 <= Kp; k += 128) {
    s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(x + k), _mm512_loadu_si512(w + k));
    s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(x + k + 64), _mm512_loadu_si512(w + k + 64));
  }
  if (k < Kp) s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(x + k), _mm512_loadu_si512(w + k));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}
#elif HWY_TARGET == HWY_SCALAR
HWY_INLINE int32_t qu8s8_dot64(const uint8_t* x, const int8_t* w, int64_t Kp) {
  uint32_t s = 0;
  for (int64_t k = 0; k < Kp; ++k) s += uint32_t(int32_t(x[k]) * w[k]);
  return int32_t(s);
}
#else
HWY_INLINE int32_t qu8s8_dot64(const uint8_t* x, const int8_t* w, int64_t Kp) {
  const DI di;
  const hn::Repartition<int16_t, DI> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const int64_t L = int64_t(hn::Lanes(d16));
  auto s0 = hn::Zero(di), s1 = hn::Zero(di);
  for (int64_t k = 0; k < Kp; k += L)
    s0 = hn::ReorderWidenMulAccumulate(di, hn::PromoteTo(d16, hn::LoadU(du8, x + k)),
                                       hn::PromoteTo(d16, hn::LoadU(di8, w + k)), s0, s1);
  return hn::GetLane(hn::SumOfLanes(di, hn::RearrangeToOddPlusEven(s0, s1)));
}
#endif

// dst [K4][T][4]: byte j of pixel t's word = r[4·k4 + j][t] ^ flip, t < count (qs8_gemm.h
// interleave4_rows). Whole vectors widen 16 or more bytes of each row to 32-bit lanes (in
// order, unlike the per-block InterleaveLower) and OR them together; the tail goes bytewise.
void Qu8Interleave4(const uint8_t* const* r, int64_t K4, int64_t T, int64_t count, uint8_t flip, uint8_t* dst) {
  for (int64_t c4 = 0; c4 < K4; ++c4) {
    // An absent row (k >= K) reads as 0 without touching memory: count may be a whole plane.
    const uint8_t* const* q = r + c4 * 4;
    uint32_t mask = 0;
    for (int64_t j = 0; j < 4; ++j)
      if (q[j]) mask |= uint32_t(flip) << (8 * j);  // absent rows stay 0
    uint8_t* row = dst + c4 * T * 4;
    int64_t t = 0;
#if HWY_TARGET != HWY_SCALAR
    const hn::ScalableTag<uint32_t> du;
    const hn::Rebind<uint8_t, decltype(du)> d8;
    const int64_t L = int64_t(hn::Lanes(du));
    const auto m = hn::Set(du, mask);
    const auto load = [&](int64_t j, int64_t at) { return q[j] ? hn::PromoteTo(du, hn::LoadU(d8, q[j] + at)) : hn::Zero(du); };
    for (; t + L <= count; t += L) {
      const auto a = load(0, t), b = load(1, t), c = load(2, t), d = load(3, t);
      const auto v = hn::Or(hn::Or(a, hn::ShiftLeft<8>(b)), hn::Or(hn::ShiftLeft<16>(c), hn::ShiftLeft<24>(d)));
      hn::StoreU(hn::Xor(v, m), du, reinterpret_cast<uint32_t*>(row + t * 4));
    }
#endif
    for (; t < count; ++t) {
      uint32_t v = 0;
      for (int64_t j = 0; j < 4; ++j)
        if (q[j]) v |= uint32_t(q[j][t]) << (8 * j);
      v ^= mask;
      std::memcpy(row + t * 4, &v, 4);  // little-endian: byte j is k = 4·c4 + j
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL
// Four rows at once: each x load serves four vpdpbusd, and the four horizontal sums overlap.
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void qu8s8_dot_4x64c64__avx512vnni(const uint8_t* x, const int8_t* w, int64_t Kp,
                                                           int32_t* acc) {
  const __m512i z = _mm512_setzero_si512();
  __m512i s0 = z, s1 = z, s2 = z, s3 = z;
  for (int64_t k = 0; k < Kp; k += 64) {
    const __m512i xv = _mm512_loadu_si512(x + k);
    Dpbusd(s0, xv, _mm512_loadu_si512(w + k));
    Dpbusd(s1, xv, _mm512_loadu_si512(w + Kp + k));
    Dpbusd(s2, xv, _mm512_loadu_si512(w + 2 * Kp + k));
    Dpbusd(s3, xv, _mm512_loadu_si512(w + 3 * Kp + k));
  }
  acc[0] = _mm512_reduce_add_epi32(s0), acc[1] = _mm512_reduce_add_epi32(s1);
  acc[2] = _mm512_reduce_add_epi32(s2), acc[3] = _mm512_reduce_add_epi32(s3);
}
#endif

void Qu8s8DotRows(const uint8_t* x, const int8_t* w, int64_t M, int64_t Kp, int32_t* acc) {
#if FINCH_QS8_SDOT
  if (cpu_has_arm_dotprod()) return neon_dot::qu8s8_dot_rows__neondot(x, w, M, Kp, acc);
#endif
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX3_DL
  for (; i + 4 <= M; i += 4) qu8s8_dot_4x64c64__avx512vnni(x, w + i * Kp, Kp, acc + i);
#endif
  for (; i < M; ++i) acc[i] = qu8s8_dot64(x, w + i * Kp, Kp);
}

}  // namespace finch::quant::kernels::qs8::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels::qs8 {

HWY_EXPORT(TilePixels);
HWY_EXPORT(GemmKernelName);
HWY_EXPORT(Qu8s8GemmTile);
HWY_EXPORT(NarrowTilePixels);
HWY_EXPORT(Qu8s8GemmTileNarrow);
HWY_EXPORT(Qu8s8DotRows);
HWY_EXPORT(IndirectGemm);
HWY_EXPORT(Qu8s8GemmTileIndirect);
HWY_EXPORT(Qu8s8GemmTileIndirectNarrow);
HWY_EXPORT(Qu8Interleave4);
HWY_EXPORT(TileAddInRegisters);

bool tile_add_in_registers() { return FINCH_DISPATCH(TileAddInRegisters)(); }

int64_t tile_pixels() { return FINCH_DISPATCH(TilePixels)(); }
const char* gemm_kernel_name() { return FINCH_DISPATCH(GemmKernelName)(); }
void qu8s8_gemm_tile(const int8_t* w, const uint8_t* x, int64_t K4, int64_t T, int64_t rows, int64_t count,
                     const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, int64_t col_stride,
                     const TileAdd* add) {
  FINCH_DISPATCH(Qu8s8GemmTile)(w, x, K4, T, rows, count, q, o, out, row_stride, col_stride, add);
}
int64_t narrow_tile_pixels() { return FINCH_DISPATCH(NarrowTilePixels)(); }
void qu8s8_gemm_tile_narrow(const int8_t* w, const uint8_t* x, int64_t K4, int64_t rows, int64_t count,
                            const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride,
                            const TileAdd* add) {
  FINCH_DISPATCH(Qu8s8GemmTileNarrow)(w, x, K4, rows, count, q, o, out, row_stride, add);
}
bool indirect_gemm() { return FINCH_DISPATCH(IndirectGemm)(); }
void qu8s8_gemm_tile_indirect(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4, int64_t rows,
                              int64_t count, const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride,
                              const TileSegments* seg, const TileAdd* add) {
  FINCH_DISPATCH(Qu8s8GemmTileIndirect)(w, x, off, K4, rows, count, q, o, out, row_stride, seg, add);
}
void qu8s8_gemm_tile_indirect_narrow(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4,
                                     int64_t rows, int64_t count, const RowQuant* q, const OutQuant& o, uint8_t* out,
                                     int64_t row_stride, const TileSegments* seg, const TileAdd* add) {
  FINCH_DISPATCH(Qu8s8GemmTileIndirectNarrow)(w, x, off, K4, rows, count, q, o, out, row_stride, seg, add);
}
void qu8s8_dot_rows(const uint8_t* x, const int8_t* w, int64_t M, int64_t Kp, int32_t* acc) {
  FINCH_DISPATCH(Qu8s8DotRows)(x, w, M, Kp, acc);
}
void interleave4_rows(const uint8_t* const* rows, int64_t K4, int64_t T, int64_t count, uint8_t flip, uint8_t* dst) {
  FINCH_DISPATCH(Qu8Interleave4)(rows, K4, T, count, flip, dst);
}

}  // namespace finch::quant::kernels::qs8
#endif  // HWY_ONCE
