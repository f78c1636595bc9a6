// QConv2d (kernels/qs8_conv.h): validation, weight packing, and the tiled GEMM driver.
//
// Shapes: N, C, H, W input; OC outputs, G groups of Cg = C/G inputs and OCg = OC/G outputs;
// K = Cg·KH·KW; P = OH·OW output pixels per image; T pixels per activation tile.
#include <algorithm>
#include <cstring>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/own_rows.h"
#include "kernels/qs8_conv.h"
#include "kernels/qs8_eltwise_kernels.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

using namespace reference::detail;

namespace {

std::vector<int32_t> bias_codes(const Tensor& bias, int64_t OC, const char* op) {
  if (!bias.defined()) return {};
  if (bias.dtype() != DType::i32 || bias.dim() != 1 || bias.size(0) != OC)
    fail(op, ": expected the bias as I32 [", OC, "] or absent, got ", describe(bias));
  return bias.to_vector<int32_t>();
}

void check_multipliers(const std::vector<FixedPointMultiplier>& m, int64_t OC, const char* op) {
  if (int64_t(m.size()) != OC) fail(op, ": expected ", OC, " requantization multipliers, got ", m.size());
  for (const auto& v : m)
    if (v.multiplier < 0) fail(op, ": expected multipliers >= 0, got ", v.multiplier);
}

}  // namespace

QConv2d::QConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, const ops::Conv2dParams& p,
                 DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype)
    : p_(p), x_dtype_(x_dtype), out_dtype_(out_dtype), z_out_(z_out), qmin_(qmin), qmax_(qmax) {
  constexpr const char* op = "QConv2d";
  if (p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0 || p.dh < 1 || p.dw < 1 || p.groups < 1)
    fail(op, ": expected stride >= 1, padding >= 0, dilation >= 1 and groups >= 1");
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 4 || w.size(0) < 1 || w.size(0) % p.groups != 0 ||
      w.size(1) < 1 || w.size(2) < 1 || w.size(3) < 1)
    fail(op, ": expected the weight as I8 [OC, C/groups, KH, KW] with OC a multiple of ", p.groups,
         " groups, got ", describe(w));
  if (x_dtype != DType::i8 && x_dtype != DType::u8) fail(op, ": expected an I8 or U8 input type");
  check_zero_point(op, "input zero point", zx, x_dtype);
  check_output(op, z_out, qmin, qmax, out_dtype);
  OC_ = w.size(0), Cg_ = w.size(1), KH_ = w.size(2), KW_ = w.size(3);
  check_multipliers(m, OC_, op);
  zx_u8_ = x_dtype == DType::i8 ? zx + 128 : zx;

  const int64_t OCg = OC_ / p.groups, taps = KH_ * KW_, K = Cg_ * taps, Cg4 = (Cg_ + 3) / 4;
  // Padding channels to quads costs the packed path (targets without the indirect kernel) work
  // on zero weights, so only where the indirect kernel runs or nothing is padded. Not for 1×1
  // stride-1 convs without padding (run() reads their input itself): there the interleaving copy
  // costs what the tile packing did. Measured indirect, bench_qs8_gemm's MobileNetV2 1×1 shapes
  // ran 0.70-1.15× the packed time (large K gains, small K loses), the whole int8 MobileNetV2
  // program (28×28, small K) 1.07-1.11×.
  const bool direct = KH_ == 1 && KW_ == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
  quad_ = !direct && Cg_ >= 4 && (Cg_ % 4 == 0 || qs8::indirect_gemm());
  const int64_t Kq = quad_ ? Cg4 * taps * 4 : K;
  const Tensor wc = w.contiguous();
  const int8_t* wp = wc.data<int8_t>();
  std::vector<int64_t> sums;
  std::vector<int8_t> wq;
  for (int64_t g = 0; g < p.groups; ++g) {
    const int8_t* wg = wp + g * OCg * K;
    if (quad_) {
      wq.assign(size_t(OCg * Kq), 0);
      for (int64_t m = 0; m < OCg; ++m)
        for (int64_t c = 0; c < Cg_; ++c)
          for (int64_t t = 0; t < taps; ++t) wq[size_t(m * Kq + (c / 4 * taps + t) * 4 + c % 4)] = wg[m * K + c * taps + t];
    }
    const auto blk = qs8::pack_weights(quad_ ? wq.data() : wg, OCg, Kq);
    packed_.insert(packed_.end(), blk.begin(), blk.end());
    const auto s = qs8::weight_sums(wg, OCg, K);
    sums.insert(sums.end(), s.begin(), s.end());
  }
  rq_ = qs8::row_quants(sums, bias_codes(bias, OC_, op), m, zx_u8_);
  // The indirect conv: with fewer than 16 outputs per group most of its 16 lanes would idle; a
  // plain 1×1 conv reads its input in place above. With 1 channel 3 bytes of each 4-channel
  // word are zeros, yet ResNet-20's 1→16 stem ran 1.23× faster (bench_qs8_gemm
  // BM_R20_3x3_1x16_28, CPU time); the RGB stem (3 channels, one byte of each word zero) too:
  // MobileNet v1's 3→16 3×3 s2 at 224² (bench_parallel BM_LayerThreadsI8, docs/int8-indirect-conv.md).
  // A plain 1×1 conv is packed for both paths, and run() picks by its plane (direct_igemm_pays).
  igemm_ = qs8::igemm_available() && OCg >= 16 &&
           qs8::igemm_rows_ok(rq_.data(), OC_, z_out_);
  if (igemm_) {
    ig_nv_ = OCg > 16 ? 2 : 1;
    const int64_t vecs = (OCg + 16 * ig_nv_ - 1) / (16 * ig_nv_) * ig_nv_;
    for (int64_t g = 0; g < p.groups; ++g) {
      const auto blk = qs8::igemm_pack_weights(wp + g * OCg * K, OCg, Cg_, taps, ig_nv_);
      ig_packed_.insert(ig_packed_.end(), blk.begin(), blk.end());
      auto q = qs8::igemm_quants(rq_.data() + g * OCg, OCg, z_out_);
      q.resize(size_t(vecs));  // a block's second vector past OCg: never stored
      ig_q_.insert(ig_q_.end(), q.begin(), q.end());
      q = qs8::igemm_quants(rq_.data() + g * OCg, OCg, 0);
      q.resize(size_t(vecs));
      ig_q0_.insert(ig_q0_.end(), q.begin(), q.end());
    }
    ig_cache_ = new_igemm_cache();
  }
}

namespace {

// A plain 1×1 conv (it reads its input in place, no packing) takes the indirect conv only where
// the GEMM's tiles would compute clearly more pixels: T-pixel tiles, a tail of at most Tn pixels
// in the narrow tile, against 7-pixel tiles. Measured (bench_qs8_gemm BM_MN2_1x1_*, CPU time,
// indirect ÷ GEMM): the 7² planes (64 against 49 pixels) 0.77-0.80 for K 96..960; 14² (208
// against 196) 0.98-1.06; 28² (784 both) 1.03-1.06, the word copy; 4² (16 against 21) 1.26.
bool direct_igemm_pays(int64_t P) {
  const int64_t T = qs8::tile_pixels(), Tn = qs8::narrow_tile_pixels(), tail = P % T;
  const int64_t gemm = P / T * T + (tail == 0 ? 0 : tail <= Tn ? Tn : T);
  const int64_t igemm = (P + qs8::kIgemmMR - 1) / qs8::kIgemmMR * qs8::kIgemmMR;
  return gemm * 100 >= igemm * 115;
}

}  // namespace

bool QConv2d::uses_igemm(int64_t H, int64_t W) const {
  if (!igemm_ || !qs8::igemm_enabled() || !qs8::igemm_available()) return false;
  const bool direct = KH_ == 1 && KW_ == 1 && p_.sh == 1 && p_.sw == 1 && p_.ph == 0 && p_.pw == 0;
  return !direct || direct_igemm_pays(H * W);
}

Tensor QConv2d::run(const Tensor& x) const { return run_impl(x, nullptr, nullptr); }

Tensor QConv2d::run_add(const Tensor& x, const Tensor& r, const QAddEpilogue& e) const {
  constexpr const char* op = "QConv2d (fused add)";
  // The conv's codes are the add's operand as stored: their quantization must be the conv's own.
  if (e.z_conv != z_out_)
    fail(op, ": expected the add's conv operand at the conv's zero point ", z_out_, ", got ", e.z_conv);
  check_scale(op, "conv output scale", e.s_conv);
  check_scale(op, "residual scale", e.s_r);
  check_scale(op, "output scale", e.s_out);
  if (e.r_dtype != DType::i8 && e.r_dtype != DType::u8) fail(op, ": expected I8 or U8 residual codes");
  check_zero_point(op, "residual zero point", e.z_r, e.r_dtype);
  check_output(op, e.z_out, e.qmin, e.qmax, e.out_dtype);
  return run_impl(x, &r, &e);
}

Tensor QConv2d::run_impl(const Tensor& x, const Tensor* r, const QAddEpilogue* e) const {
  constexpr const char* op = "QConv2d";
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() != 4 || x.size(1) != Cg_ * p_.groups)
    fail(op, ": expected input x as ", x_dtype_ == DType::i8 ? "I8" : "U8", " [N, ", Cg_ * p_.groups,
         ", H, W], got ", describe(x));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = p_.groups;
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1) fail(op, ": the input ", describe(x), " is smaller than the dilated kernel");
  Tensor y = empty({N, OC_, OH, OW}, e ? e->out_dtype : out_dtype_);
  // The fused add (run_add): in place over y, which holds the conv's codes (out_dtype_ bytes)
  // where a tile has just been stored; every element is added exactly once, by the thread that
  // stored it.
  Tensor rc;
  AddArgs add{};
  qs8::TileAdd tadd;  // the same add for the tiles' register epilogues
  if (e) {
    if (!r->defined() || r->dtype() != e->r_dtype || r->shape() != y.shape())
      fail(op, ": expected the residual as ", e->r_dtype == DType::u8 ? "U8 " : "I8 ", shape_str(y.shape()), ", got ",
           describe(*r));
    rc = r->contiguous();
    const bool conv_u8 = out_dtype_ == DType::u8, r_u8 = e->r_dtype == DType::u8;
    add = e->conv_first ? AddArgs{y.raw_data(), conv_u8, e->s_conv, e->z_conv, rc.raw_data(), r_u8, e->s_r, e->z_r,
                                  e->s_out, e->z_out, e->qmin, e->qmax, y.raw_data(), e->out_dtype == DType::u8}
                        : AddArgs{rc.raw_data(), r_u8, e->s_r, e->z_r, y.raw_data(), conv_u8, e->s_conv, e->z_conv,
                                  e->s_out, e->z_out, e->qmin, e->qmax, y.raw_data(), e->out_dtype == DType::u8};
    tadd.r_delta = intptr_t(reinterpret_cast<uintptr_t>(rc.raw_data()) - reinterpret_cast<uintptr_t>(y.raw_data()));
    tadd.r_u8 = r_u8, tadd.y_u8 = e->out_dtype == DType::u8;
    tadd.s_conv = e->s_conv, tadd.s_r = e->s_r, tadd.s_out = e->s_out;
    tadd.z_conv = e->z_conv, tadd.z_r = e->z_r, tadd.z_out = e->z_out, tadd.qmin = e->qmin, tadd.qmax = e->qmax;
  }
  if (N == 0) return y;

  const Tensor xc = x.contiguous();
  const auto* xb = static_cast<const uint8_t*>(xc.raw_data());  // raw code bytes
  // The indirection table holds int32 byte offsets into a plane of H·W + 1 words, 4 bytes per
  // output pixel and tap: a shape whose table would pass 64 MiB (a huge kernel on a huge plane)
  // keeps the phase-plane GEMM rather than hold that much per conv.
  if (uses_igemm(H, W) && H * W < (int64_t{1} << 28) && OH * OW <= (int64_t{16} << 20) / (KH_ * KW_)) {
    run_igemm(xb, N, H, W, y, e ? &tadd : nullptr);
    return y;
  }
  uint8_t flip = x_dtype_ == DType::i8 ? 0x80 : 0;            // i8 -> u8
  // The GEMM runs over the virtual pixel grid [OH][Wq] of the phase planes (qs8_gemm.h); a 1×1
  // stride-1 conv without padding reads the input itself (its grid is [H][W]).
  const bool direct = KH_ == 1 && KW_ == 1 && p_.sh == 1 && p_.sw == 1 && p_.ph == 0 && p_.pw == 0;
  const qs8::PhaseGeom pg = direct ? qs8::PhaseGeom{H, W, 0, 0, 1, 1, H, W}
                                   : qs8::phase_geom(H, W, p_.ph, p_.pw, p_.sh, p_.sw);
  const int64_t plane = pg.sh * pg.sw * pg.Hq * pg.Wq;  // bytes per input channel
  const int64_t taps = KH_ * KW_, Cg4 = (Cg_ + 3) / 4, T = qs8::tile_pixels();
  const uint32_t used = qs8::conv_used_phases(pg, KH_, KW_, p_.dh, p_.dw);
  // Indirect: the planes in 4-channel words, [Cg4][plane][4] per (image, group), flipped to u8 in
  // the copy, and the kernel reads each tile's words in place: no per-tile packing (with 16 to 64
  // output channels a tile serves only 2 to 8 weight blocks, so packing was a large share of a
  // layer). Otherwise raw codes [Cg][plane], padded with the raw zero point: the tile packing
  // applies the flip to both. Either copy is made inside the GEMM's region below, each thread
  // filling the phase rows its own tiles read (planes_for).
  const bool indirect = quad_ && qs8::indirect_gemm();
  thread_local std::vector<uint8_t> wide;  // per-call scratch, kept between calls
  thread_local std::vector<int64_t> off;
  const std::vector<int64_t> tap_off = qs8::conv_tap_offsets(pg, Cg_, KH_, KW_, p_.dh, p_.dw);
  if (indirect) {
    off.resize(size_t(Cg4 * taps));
    for (int64_t c4 = 0; c4 < Cg4; ++c4)
      for (int64_t t = 0; t < taps; ++t) off[size_t(c4 * taps + t)] = 4 * (c4 * plane + tap_off[size_t(t)]);
  } else {
    if (quad_) {
      // The packed tiles in the quad order; padding channels read channel 0 (zero weights).
      off.assign(size_t(Cg4 * taps * 4), 0);
      for (int64_t c = 0; c < Cg4 * 4; ++c)
        for (int64_t t = 0; t < taps; ++t)
          off[size_t((c / 4 * taps + t) * 4 + c % 4)] = tap_off[size_t((c < Cg_ ? c : 0) * taps + t)];
    } else {
      off = tap_off;
    }
  }

  const int64_t OCg = OC_ / G, K = quad_ ? Cg4 * taps * 4 : Cg_ * taps, K4 = (K + 3) / 4, P = OH * OW;
  const int64_t Wq = pg.Wq, Pv = (OH - 1) * Wq + OW;  // virtual pixels computed per image
  const int64_t tiles = (Pv + T - 1) / T;
  const int64_t blocks = (OCg + qs8::kMR - 1) / qs8::kMR, group_bytes = blocks * K4 * qs8::kMR * 4;
  const qs8::OutQuant oq{z_out_, qmin_, qmax_, out_dtype_ == DType::u8};
  auto* out = static_cast<uint8_t*>(y.raw_data());
  // Where the GEMM writes: the output itself when the grid has no extra columns or the indirect
  // tiles store around them (segments, qs8_gemm.h TileSegments: a tile spans at most 5 rows of
  // a grid with Wq >= 8), else rows of Pv virtual pixels per (image, channel), compacted below.
  const bool segmented = indirect && Wq != OW && Wq >= 8;
  const bool compact = Wq != OW && !segmented;
  uint8_t* dst = out;
  int64_t dst_plane = P;
  if (compact) {
    wide.resize(size_t(N * OC_ * Pv));
    dst = wide.data(), dst_plane = Pv;
  }
  // A tile of at most Tn pixels (a 4×4 plane, a tail) takes the narrow kernel where the target
  // has one, two weight blocks at a time.
  const int64_t Tn = qs8::narrow_tile_pixels();
  // The grid: rows are pixel tiles of one (image, group), columns the group's weight blocks of
  // kMR channels. A rectangle packs each of its tiles once and multiplies it by its blocks while
  // it sits in L1; the cost model splits the tiles first and the blocks only when there are too
  // few tiles for the threads (batch 1, small planes). Each output is computed the same way in
  // any split, so the codes do not depend on the thread count.
  const int64_t items = N * G * tiles;
  const double cell_macs = double(std::min(T, Pv)) * double(std::min(qs8::kMR, OCg)) * double(K);
  const int64_t* const offs = off.data();  // a local: in the lambda `off` is the worker's own
  const double cell_add_bytes = e ? 3.0 * double(std::min(T, Pv)) * double(std::min(qs8::kMR, OCg)) : 0.0;
  // The planes of (image, group) ng that this thread's tiles of virtual pixels q0 .. q1−1 read:
  // phase rows q0 / Wq .. (q1 − 1) / Wq + the taps' reach (KH − 1)·dh / sh, filled inside the
  // region into the thread's own buffer (kernels/own_rows.h: a copy made before the region, split
  // by channel quads, wrote lines the other core read last and had each thread read about half
  // of its tiles' rows from the other core). Slack after the last plane: a tail tile reads all
  // T pixels' words (qs8_gemm.h); what lands past a valid row is in lanes never stored.
  const uint64_t call = direct ? 0 : next_rows_call();
  const int64_t reach = (KH_ - 1) * p_.dh / pg.sh;
  const size_t need = size_t((indirect ? Cg4 * 4 : Cg_) * plane + T * 4 + 64);
  auto planes_for = [&](int64_t ng, int64_t q0, int64_t q1) -> const uint8_t* {
    const uint8_t* xs = xb + (ng / G * C + ng % G * Cg_) * H * W;
    if (direct) return xs;
    thread_local OwnRows own;
    thread_local std::vector<uint8_t> buf;
    own.cover(
        call, ng, q0 / Wq, std::min(pg.Hq, (q1 - 1) / Wq + reach + 1),
        [&] {
          if (buf.size() < need) buf.resize(need);
        },
        [&](int64_t r0, int64_t r1) {
          if (!indirect) return qs8::phase_planes(xs, Cg_, pg, used, uint8_t(zx_u8_ ^ flip), 0, buf.data(), r0, r1);
          for (int64_t c4 = 0; c4 < Cg4; ++c4)
            qs8::phase_planes4(xs + c4 * 4 * H * W, std::min<int64_t>(4, Cg_ - c4 * 4), pg, used, uint8_t(zx_u8_),
                               flip, buf.data() + c4 * plane * 4, r0, r1);
        });
    return buf.data();
  };
  // Per cell: its multiply-adds, the tile's packing, the add, and its share of the planes' copy
  // (each plane once at one thread: read and written).
  const double copy_bytes = direct ? 0.0 : double((indirect ? Cg4 * 4 : Cg_) * (H * W + plane));
  const Work per_cell = Work::macs_i8(cell_macs) + Work::bytes(double(K * T) / double(blocks)) +
                        Work::bytes(cell_add_bytes) + Work::bytes(copy_bytes / double(tiles * blocks));
  // The add runs inside the region only where every rectangle holds whole planes (the pixel
  // tiles are not split): split tiles leave each channel two short runs, a vector tail each,
  // and at 2 threads under load (the caller then runs both rectangles) that cost 8 % of
  // ResNet-20. Otherwise it is one pass after the region, split as the unfused qadd splits it.
  // On AVX-512 VNNI, tiles that store plain rows (no virtual columns to skip) add in their
  // register epilogue (qs8_gemm.h TileAdd): no second pass over the codes.
  const qs8::TileAdd* const tile_add = e && !compact && !segmented && qs8::tile_add_in_registers() ? &tadd : nullptr;
  const bool add_inside =
      e && !tile_add && !compact && plan_2d(items, blocks, per_cell, get_num_threads()).m_parts == 1;
  parallel_for_2d(items, blocks, per_cell,
                  [&](int64_t i0, int64_t i1, int64_t blk_begin, int64_t blk_end) {
    thread_local std::vector<uint8_t> tile_store;
    uint8_t* const tile = indirect ? nullptr : qs8::aligned_tile(tile_store, K4 * T * 4);
    int64_t cur = -1;  // the (image, group) whose planes x holds
    const uint8_t* x = nullptr;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / (G * tiles), g = i / tiles % G, q0 = i % tiles * T;
      const int64_t count = std::min(T, Pv - q0);
      const bool narrow = count <= Tn;
      if (i / tiles != cur) {  // this rectangle's tiles of (n, g): from here to its end or the last
        cur = i / tiles;
        x = planes_for(cur, q0, std::min(Pv, (std::min(i1, (cur + 1) * tiles) - cur * tiles) * T));
      }
      // Indirect: the tile's words sit at x + offs[k4] (the offsets include the quad's plane).
      const uint8_t* const xt = indirect ? x + q0 * 4 : tile;
      if (!indirect) qs8::pack_offset_tile(x, offs, K, q0, narrow ? Tn : T, count, flip, tile);
      qs8::TileSegments segs;
      if (segmented && !qs8::tile_segments(q0, count, Wq, OW, &segs))
        fail(op, ": expected a pixel tile to span at most ", qs8::TileSegments::kMax, " rows of ", Wq);
      const qs8::TileSegments* const seg = segmented ? &segs : nullptr;
      for (int64_t blk = blk_begin; blk < blk_end; blk += narrow ? 2 : 1) {
        const int64_t oc0 = g * OCg + blk * qs8::kMR;
        const int8_t* wb = packed_.data() + g * group_bytes + blk * K4 * qs8::kMR * 4;
        uint8_t* o = dst + (n * OC_ + oc0) * dst_plane + (segmented ? 0 : q0);  // segments hold q0
        if (narrow) {
          const int64_t rows = std::min(blk + 2 <= blk_end ? 2 * qs8::kMR : qs8::kMR, OCg - blk * qs8::kMR);
          if (indirect)
            qs8::qu8s8_gemm_tile_indirect_narrow(wb, xt, offs, K4, rows, count, rq_.data() + oc0, oq, o, dst_plane,
                                                 seg, tile_add);
          else
            qs8::qu8s8_gemm_tile_narrow(wb, xt, K4, rows, count, rq_.data() + oc0, oq, o, dst_plane, tile_add);
        } else {
          const int64_t rows = std::min(qs8::kMR, OCg - blk * qs8::kMR);
          if (indirect)
            qs8::qu8s8_gemm_tile_indirect(wb, xt, offs, K4, rows, count, rq_.data() + oc0, oq, o, dst_plane, seg,
                                          tile_add);
          else
            qs8::qu8s8_gemm_tile(wb, xt, K4, T, rows, count, rq_.data() + oc0, oq, o, dst_plane, 1, tile_add);
        }
      }
    }
    // The fused add over the codes this rectangle stored: per (image, group), the rectangle's
    // output pixels of each channel are contiguous in the output (the virtual columns the tiles
    // skip are not in it), and whole planes of consecutive channels are one call. (Per tile and
    // channel, 28-pixel rows with a vector tail each, ResNet-20 int8 ran 1.5× slower.)
    if (add_inside) {
      auto first_out = [&](int64_t q) { return q / Wq * OW + std::min(q % Wq, OW); };  // virtual -> output
      const int64_t oc_b = blk_begin * qs8::kMR, oc_e = std::min(OCg, blk_end * qs8::kMR);
      for (int64_t ia = i0; ia < i1;) {
        const int64_t ng = ia / tiles, ib = std::min(i1, (ng + 1) * tiles);
        const int64_t lo = first_out(ia % tiles * T), hi = first_out(std::min(Pv, ((ib - 1) % tiles + 1) * T));
        const int64_t base = (ng / G * OC_ + ng % G * OCg) * P;
        if (lo == 0 && hi == P) {
          qs8_add_range(add, base + oc_b * P, base + oc_e * P);
        } else {
          for (int64_t oc = oc_b; oc < oc_e; ++oc) qs8_add_range(add, base + oc * P + lo, base + oc * P + hi);
        }
        ia = ib;
      }
    }
  });
  if (e && !compact && !add_inside && !tile_add)
    parallel_for(0, y.numel(), Work::bytes(3), [&](int64_t lo, int64_t hi) { qs8_add_range(add, lo, hi); });
  if (compact)
    parallel_for(0, N * OC_, Work::bytes(double(Pv + P) + (e ? 3.0 * double(P) : 0.0)), [&](int64_t b, int64_t end) {
      for (int64_t row = b; row < end; ++row) {
        for (int64_t oh = 0; oh < OH; ++oh) std::memcpy(out + row * P + oh * OW, dst + row * Pv + oh * Wq, size_t(OW));
        if (e) qs8_add_range(add, row * P, row * P + P);
      }
    });
  return y;
}

}  // namespace finch::quant::kernels
