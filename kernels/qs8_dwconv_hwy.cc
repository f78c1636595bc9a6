// Int8 depthwise convolution micro-kernel (Highway): vectors across the output width, products
// in int16 summed pairwise into exact int32 (vpmaddwd on x86), the vectorized requantization of
// requant_hwy-inl.h.
//
// Shapes: x [N, C, H, W], w [C, KH·KW], y [N, C, OH, OW]; one (n, c) plane at a time.
// Two families: the flat paths further down (column dilation 1 with stride 1 or column stride 2:
// every MobileNet layer) and this general path for any stride and dilation.
// General-path scratch: as in ops/depthwise_hwy.cc the padded plane is stride-phase split (padded column pc
// lands in phase pc % sw at column pc / sw, so output ow at tap kw reads phase (kw·dw) % sw,
// column ow + (kw·dw) / sw: each tap is one unaligned load with no bounds test), and in addition
// every scratch cell is a pair of int16 centered codes: row r holds (x − zx) of padded row r in its
// low half and of padded row r + dh in its high half. Tap rows (kh, kh + 1) then form one int16
// pair with the weights (w[kh][kw], w[kh + 1][kw]) (an odd last row pairs with weight 0), and one
// widening pairwise multiply-add gives Σ of both taps per int32 lane, in output order. A 3×3 is 6
// such products per vector instead of 9 int32 multiplies (vpmulld: 2 uops, 10-cycle latency).
// Exact: |x − zx| <= 255 and |w| <= 128, so each product (<= 32640) and the pair sum are exact,
// and the operator has proved the running int32 sum cannot overflow, so the order of the
// additions does not matter. Padding holds 0, which is exactly what a padded tap adds in the
// reference (it skips them; x = zx would add (zx − zx)·w = 0).
#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <vector>

#include "kernels/qs8_dwconv_kernels.h"
#include "kernels/requant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_dwconv_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "kernels/requant_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<int32_t>;
using VI = hn::Vec<DI>;

// Scratch geometry at this target's width: R rows of sw phases of Lp int16 pairs each.
struct DwLayout {
  int64_t L, OWr, R, Lp, row;  // lanes, OW rounded up to L, rows, phase length, row stride
};

DwLayout dw_layout(const DwConvArgs& a) {
  DwLayout s;
  s.L = int64_t(hn::Lanes(DI()));
  s.OWr = (a.OW + s.L - 1) / s.L * s.L;
  s.R = (a.OH - 1) * a.sh + (a.KH - 1) * a.dh + 1;
  s.Lp = std::max(s.OWr + (a.KW - 1) * a.dw / a.sw, (a.W + 2 * a.pw + a.sw - 1) / a.sw);
  s.row = a.sw * s.Lp;
  return s;
}

// Where the input columns of one stride phase go: columns iw0, iw0 + sw, ... (count of them) land
// at consecutive scratch columns from dst (relative to the row). Computed once per call: the
// divisions would otherwise dominate a 14×14 plane.
struct Phase {
  int64_t iw0, count, dst;
};

std::vector<Phase> phases(const DwConvArgs& a, const DwLayout& s) {
  std::vector<Phase> ph;
  for (int64_t q = 0; q < a.sw; ++q) {
    const int64_t pc0 = a.pw + ((q - a.pw) % a.sw + a.sw) % a.sw;  // first padded column in phase q
    const int64_t iw0 = pc0 - a.pw;
    if (iw0 < a.W) ph.push_back({iw0, (a.W - 1 - iw0) / a.sw + 1, q * s.Lp + pc0 / a.sw});
  }
  return ph;
}

// The int16 pair cell: lo in the low half, hi in the high half (both in [-255, 255]).
inline int32_t pair_cell(int32_t lo, int32_t hi) {
  return int32_t(uint32_t(lo) & 0xFFFFu) | int32_t(uint32_t(hi) << 16);
}

// Codes in[j·sw], j = 0..Lanes−1, as int32 lanes minus zx (sw 1 or 2; reads in[0, sw·Lanes)).
template <typename TX>
HWY_INLINE VI centered(DI d, const TX* in, int64_t sw, VI vzx) {
  const hn::Rebind<TX, DI> dx;
  const VI a = hn::PromoteTo(d, hn::LoadU(dx, in));
#if HWY_TARGET != HWY_SCALAR
  if (sw == 2) return hn::Sub(hn::ConcatEven(d, hn::PromoteTo(d, hn::LoadU(dx, in + hn::Lanes(d))), a), vzx);
#else
  (void)sw;
#endif
  return hn::Sub(a, vzx);
}

// Writes plane x [H, W] into the pair scratch (zeros elsewhere: xs starts zeroed and every plane
// writes the same cells, so the padding stays 0 from plane to plane). Scratch row r pairs padded
// rows r and r + dh; a padded row that is padding contributes 0 to its half.
// Strides 1 and 2 go a full vector of cells at a time: the loads may run past the row (into the
// next row or plane, never past x_end, the end of the input: there the cells are gathered one at a
// time), the lanes past the row's count are zeroed, and the whole vector is stored: its extra
// zeros land on padding or on cells that a later (higher) row or phase writes again, and xs has a
// vector of slack at its end. Larger strides gather one code at a time.
template <typename TX>
void fill(const TX* x, const TX* x_end, const DwConvArgs& a, const DwLayout& s, const std::vector<Phase>& ph,
          int32_t* xs) {
  const DI d;
  const int32_t zx = a.zx;
  const VI vzx = hn::Set(d, zx), lo16 = hn::Set(d, 0xFFFF);
  const int64_t L = s.L, sw = a.sw;
  const bool vec = sw == 1 || (sw == 2 && L > 1);
  // Scratch rows touching data: r in [ph − dh, ph + H).
  const int64_t r_begin = std::max<int64_t>(0, a.ph - a.dh), r_end = std::min(s.R, a.H + a.ph);
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t ilo = r - a.ph, ihi = r + a.dh - a.ph;  // input rows of the two halves
    const TX* src_lo = ilo >= 0 && ilo < a.H ? x + ilo * a.W : nullptr;
    const TX* src_hi = ihi >= 0 && ihi < a.H ? x + ihi * a.W : nullptr;
    const TX* last = src_hi ? src_hi : src_lo;  // the later of the two rows read
    for (const Phase& q : ph) {
      int32_t* dst = xs + r * s.row + q.dst;
      const TX* in_lo = src_lo ? src_lo + q.iw0 : nullptr;
      const TX* in_hi = src_hi ? src_hi + q.iw0 : nullptr;
      int64_t j = 0;
      if (vec) {
        // With neither row in the input (row dilation past the plane) nothing is read: zeros are
        // stored, and no offset is formed from the null row (that would be undefined).
        for (; j < q.count && (!last || last + q.iw0 + sw * (j + L) <= x_end); j += L) {
          const VI lo = in_lo ? hn::And(centered(d, in_lo + sw * j, sw, vzx), lo16) : hn::Zero(d);
          const VI hi = in_hi ? hn::ShiftLeft<16>(centered(d, in_hi + sw * j, sw, vzx)) : hn::Zero(d);
          hn::StoreU(hn::IfThenElseZero(hn::FirstN(d, size_t(q.count - j)), hn::Or(lo, hi)), d, dst + j);
        }
      }
      for (; j < q.count; ++j)
        dst[j] = pair_cell(in_lo ? int32_t(in_lo[j * sw]) - zx : 0, in_hi ? int32_t(in_hi[j * sw]) - zx : 0);
    }
  }
}

// acc += the pairwise products of the int16 pairs z and w (lane i: z.lo·w.lo + z.hi·w.hi). The
// scalar target has one int32 lane and no int16 view of it: split by hand.
HWY_INLINE VI pair_mul_acc(DI d, VI z, VI w, VI acc, VI& acc1) {
#if HWY_TARGET == HWY_AVX3_DL
  // AVX-512 VNNI: the multiply-add and the accumulation in one instruction (vpdpwssd, not
  // saturating), where vpmaddwd + vpaddd take two: the vector ports are this loop's limit. Inline
  // assembly because Highway 1.0.3 compiles AVX3_DL without "avx512vnni" (it names "avxvnni"),
  // so the intrinsic does not compile there.
  (void)d;
  (void)acc1;
  __m512i r = acc.raw;
  asm("vpdpwssd %2, %1, %0" : "+v"(r) : "v"(z.raw), "v"(w.raw));
  return VI{r};
#elif HWY_TARGET == HWY_SCALAR
  (void)d;
  (void)acc1;
  const int32_t zv = hn::GetLane(z), wv = hn::GetLane(w);
  return hn::Add(acc, VI(int32_t(int16_t(zv)) * int16_t(wv) + (zv >> 16) * (wv >> 16)));
#else
  const hn::Repartition<int16_t, DI> d16;
  return hn::ReorderWidenMulAccumulate(d, hn::BitCast(d16, z), hn::BitCast(d16, w), acc, acc1);
#endif
}

// One output row's accumulators. toff[t] is the scratch offset of pair tap t = (kh / 2)·KW + kw
// from the row's base (precomputed: a division per tap per vector would cost more than the
// multiply), wp[t] its weight pair. PAIRS > 0 fixes the count at compile time (3×3: 6, fully
// unrolled), 0 leaves it to run time.
template <int PAIRS>
HWY_INLINE void conv_row(const DwLayout& s, const int32_t* base, const int64_t* toff, int64_t pairs,
                         const int32_t* wp, int32_t bias, int32_t* acc_row) {
  const DI d;
  const int64_t T = PAIRS ? PAIRS : pairs;
  const VI vb = hn::Set(d, bias);
  for (int64_t ow = 0; ow < s.OWr; ow += s.L) {
    // ReorderWidenMulAccumulate may spread the products over two sums in its own lane order
    // (NEON): RearrangeToOddPlusEven restores the output order, then the bias is added once.
    VI acc0 = hn::Zero(d), acc1 = hn::Zero(d);
    for (int64_t t = 0; t < T; ++t)
      acc0 = pair_mul_acc(d, hn::LoadU(d, base + toff[t] + ow), hn::Set(d, wp[t]), acc0, acc1);
    hn::StoreU(hn::Add(hn::RearrangeToOddPlusEven(acc0, acc1), vb), d, acc_row + ow);
  }
}

// Requantizes n accumulators of channel c into codes (the whole plane at once: rows are
// contiguous in acc, so only the plane's last vector is partial).
template <typename TY>
void requantize_plane(const DwConvArgs& a, const DwLayout& s, const int32_t* acc_row, int64_t n_out, int64_t c,
                      TY* out_row) {
  const DI d;
  const hn::Rebind<TY, DI> dy;
  const int n = a.shift[c];
  if (!RequantVectorApplies(n)) {  // a real multiplier >= 2^30: the scalar rule saturates
    const FixedPointMultiplier m{a.mult[c], n - 31};
    requantize(acc_row, n_out, m, a.z_out, a.qmin, a.qmax, out_row);
    return;
  }
  const RequantParams q(a.mult[c], n, a.z_out, a.qmin, a.qmax);
  HWY_ALIGN TY tail[HWY_MAX_BYTES / sizeof(int32_t)];
  const bool high = RequantHighApplies(q);
  for (int64_t i = 0; i < n_out; i += s.L) {
    const VI v = hn::LoadU(d, acc_row + i);
    const auto codes = hn::DemoteTo(dy, high ? RequantizeHigh(d, v, q, a.qmin, a.qmax) : Requantize(d, v, q));
    if (i + s.L <= n_out) {
      hn::StoreU(codes, dy, out_row + i);
    } else {
      hn::Store(codes, dy, tail);
      std::memcpy(out_row + i, tail, size_t(n_out - i) * sizeof(TY));
    }
  }
}

// ---- Flat paths: the common geometries without per-row loops in the convolution ----
// The padded plane Xp (int16 x − zx, padding 0) is stored row after row, and the outputs are
// computed as one flat run i = oh·Wo + ow over [0, OH·Wo) into codes at pitch Wo: every tap is a
// constant offset from i, so a 14×14 plane is a handful of full vectors with no row bookkeeping;
// the Wo − OW columns past each row are computed and dropped when the rows are compacted into y.
// Xp read as int32 cells at any int16 offset o holds the pair (Xp[o], Xp[o + 1]): the adjacent
// taps (kw, kw + 1) (dilation 1), so no pair scratch is needed. Two layouts:
//  * stride 1 (kEvenOdd), Wo = W + 2·pw: output i reads Xp[i + kh·dh·Wo + kw]. Cells at offset
//    2j give the even outputs i = 2j, cells at 2j + 1 the odd ones; both are requantized and
//    merged as int16 pairs (e, o), which is output order.
//  * column stride 2 (kCols): output ow at tap kw (even) reads cell ow + kw / 2 of its row.
//    Padded rows are split by r % sh into sh blocks, so output row oh reads block row
//    oh + (kh·dh) / sh and outputs i = oh·Wo + ow are again a constant offset apart.
// An odd KW pairs its last tap with weight 0 (the cell's other half is read, times 0).
enum class Flat { kNone, kEvenOdd, kCols };

struct FlatPlan {
  Flat kind = Flat::kNone;
  int64_t Wo = 0, n_acc = 0;       // output pitch, OH·Wo rounded up to the outputs per step
  int64_t xp_size = 0;             // int16 cells of Xp (with read slack)
  std::vector<int64_t> row_dst;    // per input row: int16 offset in Xp, or −1 when unused
  std::vector<int64_t> toff;       // per pair tap: int16 offset from output 0
  std::vector<int64_t> kh, kw;     // the first tap of each pair; kw + 1 < KW: the second one
};

FlatPlan flat_plan(const DwConvArgs& a, int64_t L) {
  FlatPlan f;
  if (a.dw != 1) return f;
  auto pairs = [&](auto offset) {
    for (int64_t kh = 0; kh < a.KH; ++kh)
      for (int64_t kw = 0; kw < a.KW; kw += 2) {
        f.toff.push_back(offset(kh, kw));
        f.kh.push_back(kh), f.kw.push_back(kw);
      }
  };
#if HWY_TARGET != HWY_SCALAR  // the even/odd merge needs an int16 view of int32 lanes
  if (a.sh == 1 && a.sw == 1) {
    f.kind = Flat::kEvenOdd;
    f.Wo = a.W + 2 * a.pw;  // == OW + KW − 1
    f.n_acc = (a.OH * f.Wo + 2 * L - 1) / (2 * L) * (2 * L);
    pairs([&](int64_t kh, int64_t kw) { return kh * a.dh * f.Wo + kw; });
    f.xp_size = std::max(a.H + 2 * a.ph, a.OH + (a.KH - 1) * a.dh + 1) * f.Wo + f.n_acc + 4 * L + a.KW;
    for (int64_t ih = 0; ih < a.H; ++ih) f.row_dst.push_back((ih + a.ph) * f.Wo + a.pw);
    return f;
  }
#endif
  if (a.sw == 2) {
    f.kind = Flat::kCols;
    f.Wo = std::max(a.OW + (a.KW - 1) / 2, (a.pw + a.W + 1) / 2);
    f.n_acc = (a.OH * f.Wo + L - 1) / L * L;
    const int64_t Rb = a.OH + (a.KH - 1) * a.dh / a.sh;  // rows per block
    const int64_t BS = Rb * f.Wo + 2 * L + a.KW;         // block pitch in cells, with read slack
    pairs([&](int64_t kh, int64_t kw) { return 2 * ((kh * a.dh % a.sh) * BS + (kh * a.dh / a.sh) * f.Wo + kw / 2); });
    f.xp_size = 2 * a.sh * BS + 4 * L;
    for (int64_t ih = 0; ih < a.H; ++ih) {
      const int64_t r = ih + a.ph;
      f.row_dst.push_back(r / a.sh < Rb ? 2 * ((r % a.sh) * BS + (r / a.sh) * f.Wo) + a.pw : -1);
    }
  }
  return f;
}

// Writes the rows of plane x into Xp as int16 x − zx, a vector of codes at a time. Loads may read
// past a row, never past x_end; the lanes past the row are zeroed and stored too: they land on
// padding (which must stay 0) or on a later row's cells, which are written after them (xp has a
// vector of slack at its end).
template <typename TX>
void fill_rows(const TX* x, const TX* x_end, const DwConvArgs& a, const FlatPlan& f, int16_t* xp) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Rebind<TX, decltype(d16)> dx;
  const int64_t L16 = int64_t(hn::Lanes(d16)), W = a.W;
  const int16_t zx = int16_t(a.zx);
  const auto vzx = hn::Set(d16, zx);
  for (int64_t ih = 0; ih < a.H; ++ih) {
    const int64_t o = f.row_dst[size_t(ih)];
    if (o < 0) continue;
    const TX* src = x + ih * W;
    int16_t* dst = xp + o;
    int64_t j = 0;
    for (; j < W && src + j + L16 <= x_end; j += L16) {
      const auto v = hn::Sub(hn::PromoteTo(d16, hn::LoadU(dx, src + j)), vzx);
      hn::StoreU(hn::IfThenElseZero(hn::FirstN(d16, size_t(W - j)), v), d16, dst + j);
    }
    for (; j < W; ++j) dst[j] = int16_t(src[j] - zx);
  }
}

// The accumulators of the outputs whose cells start at xp + o: Σ over pair taps + bias.
template <int PAIRS>
HWY_INLINE VI conv_cells(DI d, const int16_t* xp, int64_t o, const int64_t* toff, int64_t pairs, const int32_t* wp,
                         VI vb) {
  const int64_t T = PAIRS ? PAIRS : pairs;
  VI acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  for (int64_t t = 0; t < T; ++t)
    acc0 = pair_mul_acc(d, hn::LoadU(d, reinterpret_cast<const int32_t*>(xp + toff[t] + o)), hn::Set(d, wp[t]), acc0,
                        acc1);
  // ReorderWidenMulAccumulate may spread the products over two sums in its own lane order
  // (NEON): RearrangeToOddPlusEven restores the output order, then the bias is added once.
  return hn::Add(hn::RearrangeToOddPlusEven(acc0, acc1), vb);
}

// One channel's requantization: the vector rules (high: 32 <= n <= 52) or, for a real multiplier
// >= 2^30 (never in a model), the scalar rule through a buffer.
struct ChannelRequant {
  RequantParams q;
  FixedPointMultiplier m;
  bool vec, high;
  int32_t z_out, qmin, qmax;
  ChannelRequant(const DwConvArgs& a, int64_t c)
      : q(a.mult[c], a.shift[c], a.z_out, a.qmin, a.qmax),
        m{a.mult[c], a.shift[c] - 31},
        vec(RequantVectorApplies(a.shift[c])),
        high(RequantHighApplies(q)),
        z_out(a.z_out),
        qmin(a.qmin),
        qmax(a.qmax) {}

  HWY_INLINE VI operator()(DI d, VI acc) const {
    if (HWY_LIKELY(high)) return RequantizeHigh(d, acc, q, qmin, qmax);
    if (vec) return Requantize(d, acc, q);
    HWY_ALIGN int32_t buf[HWY_MAX_BYTES / sizeof(int32_t)];
    hn::Store(acc, d, buf);
    for (size_t k = 0; k < hn::Lanes(d); ++k) buf[k] = requantize(buf[k], m, z_out, qmin, qmax);
    return hn::Load(d, buf);
  }
};

// Codes of the flat outputs [0, n_acc) of one plane into yf (pitch Wo). HIGH: the channel's
// total shift is in [32, 52] (every ordinary layer), requantized with constants broadcast once here.
template <int PAIRS, bool HIGH, typename TY>
void conv_plane(const DwConvArgs& a, const FlatPlan& f, const int16_t* xp, const int32_t* wp, int64_t c, TY* yf) {
  const DI d;
  const int64_t L = int64_t(hn::Lanes(d)), pairs = int64_t(f.toff.size());
  const int64_t* toff = f.toff.data();
  const VI vb = hn::Set(d, a.bias[c]);
  const ChannelRequant rq(a, c);
  const int64_t n_acc = f.n_acc;
#if HWY_TARGET != HWY_SCALAR
  const hn::RepartitionToWide<DI> d64;
  const VI vm = hn::Set(d, rq.q.multiplier), vlo = hn::Set(d, rq.qmin), vhi = hn::Set(d, rq.qmax);
  const auto vround = hn::Set(d64, HIGH ? RequantHighRound(rq.q) : 0);
  const int shift = rq.q.n - 32;
#define FINCH_DW_RQ(v) (HIGH ? RequantizeHighV(d, v, vm, vround, shift, vlo, vhi) : rq(d, v))
  if (f.kind == Flat::kEvenOdd) {
    const hn::Repartition<int16_t, DI> d16;
    const hn::Rebind<TY, decltype(d16)> dy16;
    // Byte shuffle moving each int32 lane's low int16 into its high half (a port-5 shuffle where
    // a shift would compete with the multiplies).
    const hn::Repartition<uint8_t, DI> d8;
    alignas(16) static constexpr uint8_t kUp[16] = {0x80, 0x80, 0, 1, 0x80, 0x80, 4,  5,
                                                    0x80, 0x80, 8, 9, 0x80, 0x80, 12, 13};
    const auto up = hn::LoadDup128(d8, kUp);
    for (int64_t i = 0; i < n_acc; i += 2 * L) {
      const VI e = FINCH_DW_RQ(conv_cells<PAIRS>(d, xp, i, toff, pairs, wp, vb));
      const VI o = FINCH_DW_RQ(conv_cells<PAIRS>(d, xp, i + 1, toff, pairs, wp, vb));
      // Codes fit int16: lane j = (e_j, o_j) is outputs i + 2j, i + 2j + 1 as int16 lanes.
      const auto o_up = hn::BitCast(d16, hn::TableLookupBytesOr0(hn::BitCast(d8, o), up));
      const auto eo = hn::OddEven(o_up, hn::BitCast(d16, e));
      hn::StoreU(hn::DemoteTo(dy16, eo), dy16, yf + i);
    }
    return;
  }
#else
#define FINCH_DW_RQ(v) rq(d, v)
#endif
  const hn::Rebind<TY, DI> dy;
  for (int64_t i = 0; i < n_acc; i += L)
    hn::StoreU(hn::DemoteTo(dy, FINCH_DW_RQ(conv_cells<PAIRS>(d, xp, 2 * i, toff, pairs, wp, vb))), dy, yf + i);
#undef FINCH_DW_RQ
}

// Copies n < 16 codes without a library call (a call per row cost more than the row).
template <typename TY>
HWY_INLINE void copy_short(TY* dst, const TY* src, int64_t n) {
  if (n & 8) std::memcpy(dst, src, 8), dst += 8, src += 8;
  if (n & 4) std::memcpy(dst, src, 4), dst += 4, src += 4;
  if (n & 2) std::memcpy(dst, src, 2), dst += 2, src += 2;
  if (n & 1) *dst = *src;
}

// Copies rows of OW codes at pitch Wo into the contiguous plane y [OH, OW], 16 codes at a time:
// a chunk is stored whole even where it runs past its row (the next rows overwrite it), never
// past the plane.
template <typename TY>
void compact(const DwConvArgs& a, int64_t Wo, const TY* yf, TY* y) {
  const hn::CappedTag<TY, 16> d8;
  const int64_t L8 = int64_t(hn::Lanes(d8)), n_out = a.OH * a.OW;
  for (int64_t oh = 0; oh < a.OH; ++oh)
    for (int64_t ow = 0; ow < a.OW; ow += L8) {
      const int64_t o = oh * a.OW + ow;
      if (o + L8 <= n_out) {
        hn::StoreU(hn::LoadU(d8, yf + oh * Wo + ow), d8, y + o);
      } else {
        copy_short(y + o, yf + oh * Wo + ow, a.OW - ow);  // < 16 left: this row's last chunk
      }
    }
}

// Whether this target runs planes_quad for the geometry (qs8_dwconv_quad_path).
bool DwQuadPath(int64_t sw, int64_t dw) {
#if HWY_TARGET == HWY_AVX3_DL
  return dw == 1 && (sw == 1 || sw == 2 || sw == 4);
#else
  (void)sw;
  (void)dw;
  return false;
#endif
}

#include "kernels/qs8_dwconv_quad-inl.h"  // planes_quad (AVX3_DL only)

template <typename TX, typename TY>
void planes_flat(const DwConvArgs& a, const FlatPlan& f, int64_t p_begin, int64_t p_end) {
  std::vector<int16_t> xp(size_t(f.xp_size));  // zero: the padding
  std::vector<TY> yf(size_t(f.n_acc + HWY_MAX_BYTES));
  const TX* x_end = static_cast<const TX*>(a.x_end);
  const int64_t taps = a.KH * a.KW, pairs = int64_t(f.toff.size());
  std::vector<int32_t> wp(static_cast<size_t>(pairs));
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t c = p % a.C;
    fill_rows(static_cast<const TX*>(a.x) + p * a.x_plane, x_end, a, f, xp.data());
    const int32_t* w = a.w + c * taps;
    for (int64_t t = 0; t < pairs; ++t) {
      const int64_t k = f.kh[size_t(t)] * a.KW + f.kw[size_t(t)];
      wp[size_t(t)] = pair_cell(w[k], f.kw[size_t(t)] + 1 < a.KW ? w[k + 1] : 0);
    }
    const bool high = RequantHighApplies(RequantParams(a.mult[c], a.shift[c], a.z_out, a.qmin, a.qmax));
    if (pairs == 6 && high)
      conv_plane<6, true>(a, f, xp.data(), wp.data(), c, yf.data());
    else if (high)
      conv_plane<0, true>(a, f, xp.data(), wp.data(), c, yf.data());
    else
      conv_plane<0, false>(a, f, xp.data(), wp.data(), c, yf.data());
    compact(a, f.Wo, yf.data(), static_cast<TY*>(a.y) + p * a.y_plane);
  }
}

template <typename TX, typename TY>
void planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
#if HWY_TARGET == HWY_AVX3_DL
  if (DwQuadPath(a.sw, a.dw)) return planes_quad<TX, TY>(a, p_begin, p_end);
#endif
  const DwLayout s = dw_layout(a);
  const FlatPlan f = flat_plan(a, s.L);
  if (f.kind != Flat::kNone) return planes_flat<TX, TY>(a, f, p_begin, p_end);
  // acc holds the plane's accumulators [OH, OW]: row oh is stored (OWr wide) at oh·OW, and the
  // next row overwrites the columns past OW, so the plane ends up contiguous.
  std::vector<int32_t> xs(size_t(s.R * s.row + s.L)), acc(size_t(a.OH * a.OW + s.OWr));
  const int64_t taps = a.KH * a.KW, KH2 = (a.KH + 1) / 2, pairs = KH2 * a.KW;
  std::vector<int64_t> toff(static_cast<size_t>(pairs));
  std::vector<int32_t> wp(static_cast<size_t>(pairs));
  for (int64_t kh2 = 0; kh2 < KH2; ++kh2)
    for (int64_t kw = 0; kw < a.KW; ++kw) {
      const int64_t t = kw * a.dw;
      toff[size_t(kh2 * a.KW + kw)] = 2 * kh2 * a.dh * s.row + (t % a.sw) * s.Lp + t / a.sw;
    }
  const std::vector<Phase> ph = phases(a, s);
  const TX* x_end = static_cast<const TX*>(a.x_end);
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t c = p % a.C;
    fill(static_cast<const TX*>(a.x) + p * a.x_plane, x_end, a, s, ph, xs.data());
    TY* y = static_cast<TY*>(a.y) + p * a.y_plane;
    const int32_t* w = a.w + c * taps;
    for (int64_t kh2 = 0; kh2 < KH2; ++kh2)
      for (int64_t kw = 0; kw < a.KW; ++kw) {
        const int64_t kh = 2 * kh2;
        wp[size_t(kh2 * a.KW + kw)] = pair_cell(w[kh * a.KW + kw], kh + 1 < a.KH ? w[(kh + 1) * a.KW + kw] : 0);
      }
    for (int64_t oh = 0; oh < a.OH; ++oh) {
      const int32_t* base = xs.data() + oh * a.sh * s.row;
      if (pairs == 6)
        conv_row<6>(s, base, toff.data(), pairs, wp.data(), a.bias[c], acc.data() + oh * a.OW);
      else
        conv_row<0>(s, base, toff.data(), pairs, wp.data(), a.bias[c], acc.data() + oh * a.OW);
    }
    requantize_plane(a, s, acc.data(), a.OH * a.OW, c, y);
  }
}

void DwConvPlanes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  if (a.x_u8)
    a.y_u8 ? planes<uint8_t, uint8_t>(a, p_begin, p_end) : planes<uint8_t, int8_t>(a, p_begin, p_end);
  else
    a.y_u8 ? planes<int8_t, uint8_t>(a, p_begin, p_end) : planes<int8_t, int8_t>(a, p_begin, p_end);
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(DwConvPlanes);
HWY_EXPORT(DwQuadPath);

bool qs8_dwconv_quad_path(int64_t sw, int64_t dw) { return FINCH_DISPATCH(DwQuadPath)(sw, dw); }

void qs8_dwconv_planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  FINCH_DISPATCH(DwConvPlanes)(a, p_begin, p_end);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
