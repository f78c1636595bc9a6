// QConv2d's indirect conv (kernels/qs8_igemm.h): the input's 4-channel word planes, the
// indirection table of each input shape (built once, then reused), and the tile × block grid.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_conv.h"
#include "kernels/own_rows.h"

namespace finch::quant::kernels {

// The indirection table of one input shape (qs8_igemm.h): it depends only on H, W and the conv's
// geometry, so a network that runs one shape builds it once, on its first run.
struct QConv2d::IgemmShape {
  int64_t H = 0, W = 0, OW = 0, P = 0, tiles = 0, S = 0;  // S: words per input plane
  std::vector<int32_t> table;                     // [tiles][taps][MR]
};
struct QConv2d::IgemmCache {
  std::mutex mu;
  std::shared_ptr<const IgemmShape> last;
};

std::shared_ptr<QConv2d::IgemmCache> QConv2d::new_igemm_cache() { return std::make_shared<IgemmCache>(); }

std::shared_ptr<const QConv2d::IgemmShape> QConv2d::igemm_shape(int64_t H, int64_t W) const {
  {
    std::lock_guard<std::mutex> lock(ig_cache_->mu);
    if (ig_cache_->last && ig_cache_->last->H == H && ig_cache_->last->W == W) return ig_cache_->last;
  }
  constexpr int64_t MR = qs8::kIgemmMR;
  auto s = std::make_shared<IgemmShape>();
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh);
  const int64_t OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  const int64_t taps = KH_ * KW_;
  s->H = H, s->W = W, s->OW = OW, s->P = OH * OW, s->tiles = (s->P + MR - 1) / MR;
  s->S = (H * W + 1 + 15) / 16 * 16;  // the padding word, then whole cache lines per plane
  s->table.resize(size_t(s->tiles * taps * MR));
  const auto pad = int32_t(H * W * 4);
  for (int64_t tile = 0; tile < s->tiles; ++tile)
    for (int64_t i = 0; i < MR; ++i) {
      const int64_t p = std::min(tile * MR + i, s->P - 1);  // a tail tile repeats its last pixel
      const int64_t oh = p / OW, ow = p % OW;
      for (int64_t kh = 0; kh < KH_; ++kh)
        for (int64_t kw = 0; kw < KW_; ++kw) {
          const int64_t ih = oh * p_.sh - p_.ph + kh * p_.dh, iw = ow * p_.sw - p_.pw + kw * p_.dw;
          const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
          s->table[size_t((tile * taps + kh * KW_ + kw) * MR + i)] = inside ? int32_t((ih * W + iw) * 4) : pad;
        }
    }
  std::lock_guard<std::mutex> lock(ig_cache_->mu);
  ig_cache_->last = s;
  return s;
}

void QConv2d::run_igemm(const uint8_t* xb, int64_t N, int64_t H, int64_t W, Tensor& y, const qs8::TileAdd* add) const {
  constexpr int64_t MR = qs8::kIgemmMR;
  const auto shape = igemm_shape(H, W);
  const int64_t C = Cg_ * p_.groups, G = p_.groups, OCg = OC_ / G, taps = KH_ * KW_, Cg4 = (Cg_ + 3) / 4;
  const int64_t S = shape->S, P = shape->P, tiles = shape->tiles, HW = H * W, OW = shape->OW;
  const uint8_t flip = x_dtype_ == DType::i8 ? 0x80 : 0, zx = uint8_t(zx_u8_);
  const uint64_t run = next_rows_call();

  // The planes of (image, group) ng, [Cg4][S][4], in this thread's own buffer, with at least the
  // input rows that output tiles t0 .. t1−1 read (their taps: rows oh·sh − ph + kh·dh, clipped to
  // the input), filled inside the region (kernels/own_rows.h: a thread's tiles never read rows
  // the other core just wrote). Rows already there from this call are not copied again; a copy
  // at memory speed (a 28×28×16 input is about 0.2 µs), the halo rows of a split twice.
  auto planes_for = [&](int64_t ng, int64_t t0, int64_t t1) -> const uint8_t* {
    thread_local OwnRows own;
    thread_local std::vector<uint8_t> buf;
    thread_local std::vector<const uint8_t*> src;
    const int64_t oh0 = t0 * MR / OW, oh1 = (std::min(P, t1 * MR) - 1) / OW;
    const int64_t lo = std::max<int64_t>(0, oh0 * p_.sh - p_.ph);
    const int64_t hi = std::min<int64_t>(H, oh1 * p_.sh - p_.ph + (KH_ - 1) * p_.dh + 1);
    own.cover(
        run, ng, lo, hi,
        [&] {
          buf.resize(size_t(Cg4 * S * 4));
          src.resize(size_t(Cg4 * 4));
          for (int64_t c4 = 0; c4 < Cg4; ++c4)  // the padding word: cancels against the weight sums
            std::memset(buf.data() + (c4 * S + HW) * 4, zx, 4);
        },
        [&](int64_t r0, int64_t r1) {  // rows r0 .. r1−1 of every quad plane
          for (int64_t j = 0; j < Cg4 * 4; ++j)
            src[size_t(j)] = j < Cg_ ? xb + ((ng / G * C + ng % G * Cg_ + j) * H + r0) * W : nullptr;  // absent: 0
          qs8::interleave4_rows(src.data(), Cg4, S, (r1 - r0) * W, flip, buf.data() + r0 * W * 4);
        });
    return buf.data();
  };

  const int64_t NB = 16 * ig_nv_, blocks = (OCg + NB - 1) / NB, K = taps * Cg4 * 4;
  const int64_t block_bytes = taps * Cg4 * NB * 4;
  auto* out = static_cast<uint8_t*>(y.raw_data());
  const int64_t items = N * G * tiles;
  // Each cell: one tile of 7 pixels against one block. The table's and the planes' reads are
  // L1-resident after the first block, so the cell is its multiply-adds (the rows' copy, one
  // pass per block count, is in the noise of it).
  const Work per_cell = Work::macs_i8(double(MR * std::min(NB, OCg) * K)) +
                        Work::bytes(double(MR * Cg4 * 4 * p_.sh * p_.sw) / double(blocks)) +
                        Work::bytes(add ? 2.0 * double(MR * std::min(NB, OCg)) : 0.0);  // the residual read
  // Which side the threads cut first. Every rectangle reads the weights of its blocks and the
  // input rows of its tiles, so the cut goes across the larger of the two: the tiles where the
  // input outweighs the weights (large planes), the blocks where the weights do (7×7 planes with
  // hundreds of channels: cut by tiles, each 7-pixel chunk streamed every block's weights from L2
  // again, and MobileNetV2's 96→576 1×1 conv at 7² ran slower at 2 threads than at 1). With lanes,
  // a thread then meets the same blocks in every run, and they stay in its own L2.
  const bool blocks_first = G * blocks * block_bytes > N * G * Cg4 * HW * 4;
  const auto rect = [&](int64_t i0, int64_t i1, int64_t b0, int64_t b1) {
    qs8::IgemmArgs a;
    a.nv = ig_nv_, a.table = shape->table.data(), a.taps = taps, a.Cg4 = Cg4, a.plane_bytes = S * 4, a.P = P;
    // With the add the tiles requantize to the conv's codes minus z_out (qs8_add_vnni-inl.h).
    a.qmin = add ? qmin_ - z_out_ : qmin_, a.qmax = add ? qmax_ - z_out_ : qmax_, a.add = add;
    const qs8::IgemmQuant16* const quants = (add ? ig_q0_ : ig_q_).data();
    // Per (image, group), its rows first, then blocks outside and tiles inside: a block's weights
    // (at most taps·Cg·32 bytes) stay in L1 while they meet every tile of the rectangle.
    for (int64_t ia = i0; ia < i1;) {
      const int64_t ng = ia / tiles, ib = std::min(i1, (ng + 1) * tiles), g = ng % G;
      a.x = planes_for(ng, ia - ng * tiles, ib - ng * tiles);
      for (int64_t blk = b0; blk < b1; ++blk) {
        a.w = ig_packed_.data() + (g * blocks + blk) * block_bytes;
        a.q = quants + (g * blocks + blk) * ig_nv_;
        a.rows = std::min(NB, OCg - blk * NB);
        a.out = out + (ng / G * OC_ + g * OCg + blk * NB) * P;
        qs8::qu8s8_igemm_tiles(a, ia - ng * tiles, ib - ng * tiles);
      }
      ia = ib;
    }
  };
  if (blocks_first)
    parallel_for_2d(blocks, items, per_cell, [&](int64_t b0, int64_t b1, int64_t i0, int64_t i1) { rect(i0, i1, b0, b1); });
  else
    parallel_for_2d(items, blocks, per_cell, rect);
}

}  // namespace finch::quant::kernels
