// QConv2d's indirect conv (kernels/qs8_igemm.h): the input's 4-channel word planes, the
// indirection table of each input shape (built once, then reused), and the tile × block grid.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_conv.h"
#include "kernels/qs8_eltwise_kernels.h"

namespace finch::quant::kernels {

// The indirection table of one input shape (qs8_igemm.h): it depends only on H, W and the conv's
// geometry, so a network that runs one shape builds it once, on its first run.
struct QConv2d::IgemmShape {
  int64_t H = 0, W = 0, P = 0, tiles = 0, S = 0;  // S: words per input plane
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
  s->H = H, s->W = W, s->P = OH * OW, s->tiles = (s->P + MR - 1) / MR;
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

void QConv2d::run_igemm(const uint8_t* xb, int64_t N, int64_t H, int64_t W, Tensor& y, const AddArgs* add) const {
  constexpr int64_t MR = qs8::kIgemmMR;
  const auto shape = igemm_shape(H, W);
  const int64_t C = Cg_ * p_.groups, G = p_.groups, OCg = OC_ / G, taps = KH_ * KW_, Cg4 = (Cg_ + 3) / 4;
  const int64_t S = shape->S, P = shape->P, tiles = shape->tiles, HW = H * W;
  const uint8_t flip = x_dtype_ == DType::i8 ? 0x80 : 0, zx = uint8_t(zx_u8_);

  // The 4-channel word planes, [N][G][Cg4][S][4], reused from run to run by each thread.
  thread_local std::vector<uint8_t> planes_store;
  const int64_t quads = N * G * Cg4;
  planes_store.resize(size_t(quads * S * 4));
  uint8_t* const planes = planes_store.data();  // a local: in the lambda the name is the worker's own
  // A copy at memory speed: a 28×28×16 input is about 0.2 µs, less than a fork/join.
  parallel_for(0, quads, Work::bytes_stream(double(5 * HW)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t ng = i / Cg4, c = i % Cg4 * 4;  // ng = n·G + g
      const uint8_t* rows[4];
      for (int64_t j = 0; j < 4; ++j)
        rows[j] = c + j < Cg_ ? xb + (ng / G * C + ng % G * Cg_ + c + j) * HW : nullptr;  // absent: 0
      uint8_t* plane = planes + i * S * 4;
      qs8::interleave4_rows(rows, 1, S, HW, flip, plane);
      std::memset(plane + HW * 4, zx, 4);  // the padding word: cancels against the weight sums
    }
  });

  const int64_t NB = 16 * ig_nv_, blocks = (OCg + NB - 1) / NB, K = taps * Cg4 * 4;
  const int64_t block_bytes = taps * Cg4 * NB * 4;
  auto* out = static_cast<uint8_t*>(y.raw_data());
  const int64_t items = N * G * tiles;
  // Each cell: one tile of 7 pixels against one block. The table's and the planes' reads are
  // L1-resident after the first block, so the cell is its multiply-adds.
  const Work per_cell = Work::macs_i8(double(MR * std::min(NB, OCg) * K)) +
                        Work::bytes(add ? 3.0 * double(MR * std::min(NB, OCg)) : 0.0);
  // The add runs inside the region where each rectangle holds whole planes (as in run_impl:
  // rectangles of a few tiles would leave every channel a short run with a vector tail),
  // otherwise as one pass after it.
  const bool add_inside = add && plan_2d(items, blocks, per_cell, get_num_threads()).m_parts == 1;
  parallel_for_2d(items, blocks, per_cell, [&](int64_t i0, int64_t i1, int64_t b0, int64_t b1) {
    qs8::IgemmArgs a;
    a.nv = ig_nv_, a.table = shape->table.data(), a.taps = taps, a.Cg4 = Cg4, a.plane_bytes = S * 4, a.P = P;
    a.qmin = qmin_, a.qmax = qmax_;
    // Blocks outside, tiles inside: a block's weights (at most taps·Cg·32 bytes) stay in L1
    // while they meet every tile of the rectangle.
    for (int64_t blk = b0; blk < b1; ++blk)
      for (int64_t ia = i0; ia < i1;) {
        const int64_t ng = ia / tiles, ib = std::min(i1, (ng + 1) * tiles), g = ng % G;
        a.w = ig_packed_.data() + (g * blocks + blk) * block_bytes;
        a.q = ig_q_.data() + (g * blocks + blk) * ig_nv_;
        a.rows = std::min(NB, OCg - blk * NB);
        a.x = planes + ng * Cg4 * S * 4;
        a.out = out + (ng / G * OC_ + g * OCg + blk * NB) * P;
        qs8::qu8s8_igemm_tiles(a, ia - ng * tiles, ib - ng * tiles);
        ia = ib;
      }
    if (!add_inside) return;
    // The fused add over the codes this rectangle stored, while they are in cache: whole planes
    // of consecutive channels are one range.
    const int64_t oc_b = b0 * NB, oc_e = std::min(OCg, b1 * NB);
    for (int64_t ia = i0; ia < i1;) {
      const int64_t ng = ia / tiles, ib = std::min(i1, (ng + 1) * tiles);
      const int64_t lo = (ia - ng * tiles) * MR, hi = std::min(P, (ib - ng * tiles) * MR);
      const int64_t base = (ng / G * OC_ + ng % G * OCg) * P;
      if (lo == 0 && hi == P)
        qs8_add_range(*add, base + oc_b * P, base + oc_e * P);
      else
        for (int64_t oc = oc_b; oc < oc_e; ++oc) qs8_add_range(*add, base + oc * P + lo, base + oc * P + hi);
      ia = ib;
    }
  });
  if (add && !add_inside)
    parallel_for(0, y.numel(), Work::bytes(3), [&](int64_t lo, int64_t hi) { qs8_add_range(*add, lo, hi); });
}

}  // namespace finch::quant::kernels
