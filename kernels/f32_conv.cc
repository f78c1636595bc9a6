// fp32 conv2d and linear operators (f32_conv.h): validation and packing at construction, the
// padded phase-split input and its im2col runs, and the split of the GEMM over threads.
#include "kernels/f32_conv.h"

#include <algorithm>
#include <cstring>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/own_rows.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

namespace {

using f32k::Act;
using f32k::kMR;


using reference::detail::describe;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::vector<float> bias_of(const Tensor& b, int64_t n, const char* op) {
  if (!b.defined()) return std::vector<float>(size_t(n), 0.0f);
  if (b.dtype() != DType::f32 || b.dim() != 1 || b.size(0) != n)
    fail(op, ": expected the bias as F32 [", n, "] or absent, got ", describe(b));
  return b.contiguous().to_vector<float>();
}

// From this many rows a linear runs as a GEMM over tiles of rows rather than one GEMV per row
// (which reads every weight once per row).
constexpr int64_t kLinearGemmRows = 4;

// Floats of B a task of the 1×1 path covers (f32_gemm_8xNR_block): 16 KiB, half the L1.
constexpr int64_t kBlockFloats = 4096;

// The per-thread im2col tile (K × NR floats), grown on first use and reused by every later run.
float* tile_buffer(int64_t floats) {
  thread_local std::vector<float> buf;
  if (int64_t(buf.size()) < floats) buf.resize(size_t(floats));
  return buf.data();
}

}  // namespace

// ---- conv2d ----

F32Conv2d::F32Conv2d(const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p, Act act, int64_t H,
                     int64_t W)
    : p_(p), act_(act) {
  if (weight.dtype() != DType::f32 || weight.dim() != 4)
    fail("conv2d (fp32): expected an F32 weight [OC, C/groups, KH, KW], got ", describe(weight));
  if (p.groups < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0)
    fail("conv2d (fp32): expected groups, stride and dilation >= 1 and padding >= 0, got groups ", p.groups,
         ", stride (", p.sh, ", ", p.sw, "), padding (", p.ph, ", ", p.pw, "), dilation (", p.dh, ", ", p.dw, ")");
  const Tensor w = weight.contiguous();
  OC_ = w.size(0), Cg_ = w.size(1), KH_ = w.size(2), KW_ = w.size(3);
  if (OC_ % p.groups != 0)
    fail("conv2d (fp32): expected output channels (", OC_, ") divisible by groups (", p.groups, ")");
  const int64_t G = p.groups, OCg = OC_ / G, K = Cg_ * KH_ * KW_, panels = ceil_div(OCg, kMR);
  NR_ = f32k::f32_gemm_tile_cols();
  direct_ = KH_ == 1 && KW_ == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
  strided1x1_ = KH_ == 1 && KW_ == 1 && p.ph == 0 && p.pw == 0 && !direct_;
  wino_ = KH_ == 3 && KW_ == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1 && G == 1 &&
          Cg_ >= kWinogradMinChannels && OC_ >= kWinogradMinChannels;
  if (!wino_) wp_.assign(size_t(G * panels * K * kMR), 0.0f);  // Winograd keeps only wu_
  bias_.assign(size_t(G * panels * kMR), 0.0f);
  const std::vector<float> b = bias_of(bias, OC_, "conv2d (fp32)");
  for (int64_t g = 0; g < G; ++g) {
    if (!wino_) f32k::f32_pack_panels(w.data<float>() + g * OCg * K, K, OCg, K, wp_.data() + g * panels * K * kMR);
    std::copy(b.begin() + g * OCg, b.begin() + (g + 1) * OCg, bias_.begin() + g * panels * kMR);
  }
  if (wino_) {
    std::vector<float> u(size_t(16 * OC_ * Cg_));
    f32k::f32_wino_weights(w.data<float>(), OC_, Cg_, u.data());
    wu_.assign(size_t(16 * panels * Cg_ * kMR), 0.0f);
    for (int64_t xi = 0; xi < 16; ++xi)
      f32k::f32_pack_panels(u.data() + xi * OC_ * Cg_, Cg_, OC_, Cg_, wu_.data() + xi * panels * Cg_ * kMR);
  }
  if (!direct_ && !strided1x1_ && ops::conv_out_size(H, KH_, p.sh, p.ph, p.dh) >= 1 &&
      ops::conv_out_size(W, KW_, p.sw, p.pw, p.dw) >= 1)
    geo_ = wino_ ? wino_geometry(H, W) : geometry(H, W);
}

// The padded input: row r of channel c at xp + c·plane + r·row, padded column pc at phase
// pc % sw, position pc / sw (phase length Lp); output pixel (oy, ox) then reads tap (kh, kw) at
// row oy·sh + kh·dh, phase (kw·dw) % sw, position ox + (kw·dw) / sw — consecutive in ox.
F32Conv2d::Geometry F32Conv2d::geometry(int64_t H, int64_t W) const {
  Geometry g;
  g.H = H, g.W = W, g.phases = p_.sw;
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  const int64_t P = OH * OW, tiles = ceil_div(P, NR_), sw = p_.sw;
  g.Lp = std::max(ceil_div(W + 2 * p_.pw, sw), OW + (KW_ - 1) * p_.dw / sw);
  g.row = sw * g.Lp;
  g.plane = (H + 2 * p_.ph) * g.row;
  for (int64_t kh = 0; kh < KH_; ++kh)
    for (int64_t kw = 0; kw < KW_; ++kw) g.taps.push_back(kh * p_.dh * g.row + kw * p_.dw % sw * g.Lp + kw * p_.dw / sw);
  if (OW >= NR_) {
    // Rows at least a tile wide: tiles of one output row each, read in place by the indirect
    // GEMM (B row c·T + t at c·plane + taps[t] past the tile's first pixel), with no im2col copy;
    // a row's last tile is partial (OW = 112 on AVX-512: 32, 32, 32, 16). Narrower rows keep the
    // copied tiles across rows: a 28-pixel row in one 32-pixel tile cost more in idle lanes than
    // the copy it saves (MobileNetV2's and ResNet-20's 28² stems, K = 9).
    g.per_row = ceil_div(OW, NR_);
    for (int64_t c = 0; c < Cg_; ++c)
      for (int64_t t : g.taps) g.offs.push_back(c * g.plane + t);
    return g;
  }
  for (int64_t tile = 0; tile < tiles; ++tile) {
    g.first.push_back(int64_t(g.segs.size()));
    for (int64_t j = 0; j < NR_ && tile * NR_ + j < P;) {
      const int64_t oy = (tile * NR_ + j) / OW, ox = (tile * NR_ + j) % OW;
      const int64_t len = std::min(NR_ - j, std::min(OW - ox, P - tile * NR_ - j));
      g.segs.push_back({oy * p_.sh * g.row + ox, int32_t(j), int32_t(len)});
      j += len;
    }
  }
  g.first.push_back(int64_t(g.segs.size()));
  return g;
}

// Winograd (f32_winograd.h): tile j = ty·TW + tx reads its 4×4 patch at padded rows 2ty … 2ty + 3,
// columns 2tx … 2tx + 3, from four sub-planes (columns from 0 or from 2, by row parity; stride Lp,
// row pitch R = 2TW); chunks of NR consecutive tiles, each with its runs of one tile row.
F32Conv2d::Geometry F32Conv2d::wino_geometry(int64_t H, int64_t W) const {
  Geometry g;
  g.H = H, g.W = W, g.phases = 4;
  const int64_t OH = H + 2 * p_.ph - 2, OW = W + 2 * p_.pw - 2, TH = ceil_div(OH, 2), TW = ceil_div(OW, 2);
  g.row = 2 * TW;
  // A sub-plane holds TH + 1 rows (padded rows 0 … 2TH + 1 >= H + 2·ph − 1); past them the slack
  // that the input transform's lanes past the last tile read: up to two vectors (<= 2·NR floats).
  g.rows = TH + 1;
  g.Lp = ceil_div(g.rows * g.row + 2 * NR_ + 4, 16) * 16;
  g.plane = 4 * g.Lp;
  g.tiles = TH * TW;
  for (int64_t j0 = 0; j0 < g.tiles; j0 += NR_) {
    g.first.push_back(int64_t(g.wruns.size()));
    const int64_t j1 = std::min(g.tiles, j0 + NR_);
    for (int64_t j = j0; j < j1;) {
      const int64_t ty = j / TW, tx = j % TW;
      const int64_t len = std::min(TW - tx, j1 - j), last = tx + len - 1;
      g.wruns.push_back({2 * ty * OW + 2 * tx, int32_t(j - j0), int32_t(len),
                         int32_t(std::min<int64_t>(2, OH - 2 * ty)), int32_t(std::min<int64_t>(2, OW - 2 * last))});
      j += len;
    }
  }
  g.first.push_back(int64_t(g.wruns.size()));
  return g;
}

// Padded rows [r0, r1) of the Cg channels of one (image, group) x [Cg][H][W] into xp [Cg][plane]
// (geometry(): columns by stride phase): each row zeroed, then its input row copied in. Nothing
// outside those rows is written (OwnRows: the rows after may be valid already).
void F32Conv2d::pad_rows(const float* x, int64_t H, int64_t W, const Geometry& geo, int64_t r0, int64_t r1,
                         float* xp) const {
  const int64_t sw = geo.phases;
  for (int64_t c = 0; c < Cg_; ++c) {
    // The rows are contiguous: one fill for all of them (a call per 15-30-float row cost more).
    std::fill(xp + c * geo.plane + r0 * geo.row, xp + c * geo.plane + r1 * geo.row, 0.0f);
    for (int64_t pr = std::max(r0, p_.ph); pr < std::min(r1, H + p_.ph); ++pr) {
      float* row = xp + c * geo.plane + pr * geo.row;
      const int64_t iy = pr - p_.ph;  // the input row
      const float* src = x + (c * H + iy) * W;
      if (sw == 1) {
        std::memcpy(row + p_.pw, src, size_t(W) * sizeof(float));
      } else if (sw == 2) {  // input column 2j lands at padded column 2j + pw, 2j + 1 at 2j + 1 + pw
        f32k::f32_split_pairs(src, W, row + p_.pw % 2 * geo.Lp + p_.pw / 2,
                              row + (p_.pw + 1) % 2 * geo.Lp + (p_.pw + 1) / 2);
      } else {
        for (int64_t q = 0; q < sw; ++q) {  // phase q holds input columns ix ≡ q − pw (mod sw)
          const int64_t ix0 = ((q - p_.pw) % sw + sw) % sw;
          float* out = row + q * geo.Lp + (ix0 + p_.pw) / sw;
          for (int64_t ix = ix0; ix < W; ix += sw) *out++ = src[ix];
        }
      }
    }
  }
}

namespace {

// Rows r0 .. r1−1 of the C planes [C][OH][OW] of a strided 1×1 conv's input x [C][H][W]: output
// row oy is input row oy·sh, every sw-th column.
void subsample_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t sh, int64_t sw, int64_t OH, int64_t OW,
                    int64_t r0, int64_t r1, float* dst) {
  for (int64_t c = 0; c < C; ++c) {
    float* d = dst + (c * OH + r0) * OW;
    for (int64_t oy = r0; oy < r1; ++oy) {
      const float* src = x + (c * H + oy * sh) * W;
      for (int64_t ox = 0; ox < OW; ++ox) *d++ = src[ox * sw];
    }
  }
}

}  // namespace

Tensor F32Conv2d::run(const Tensor& x, const Tensor& residual, Act act) const {
  const int64_t G = p_.groups;
  if (x.dtype() != DType::f32 || x.dim() != 4 || x.size(1) != Cg_ * G)
    fail("conv2d (fp32): expected an F32 input [N, ", Cg_ * G, ", H, W] for ", G, " groups of weight [", OC_, ", ",
         Cg_, ", ", KH_, ", ", KW_, "], got ", describe(x));
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1)
    fail("conv2d (fp32): expected an input at least as large as the dilated kernel ", KH_, "x", KW_,
         " with padding (", p_.ph, ", ", p_.pw, "), got ", describe(x));
  if (residual.defined() &&
      (residual.dtype() != DType::f32 || residual.shape() != Shape{N, OC_, OH, OW}))
    fail("conv2d (fp32): expected the residual as F32 [", N, ", ", OC_, ", ", OH, ", ", OW, "], got ",
         describe(residual));
  if (f32k::f32_gemm_tile_cols() != NR_)
    fail("conv2d (fp32): the kernel was prepared for ", NR_, "-pixel tiles, but the CPU target now dispatched uses ",
         f32k::f32_gemm_tile_cols());
  Geometry local;
  const Geometry& geo = direct_ || strided1x1_ || (H == geo_.H && W == geo_.W) ? geo_
                        : (local = wino_ ? wino_geometry(H, W) : geometry(H, W));

  const int64_t OCg = OC_ / G, K = Cg_ * KH_ * KW_, T = KH_ * KW_, P = OH * OW, HW = H * W, NR = NR_;
  // A strided 1×1 conv without padding reads its input subsampled into planes of OH×OW, then
  // runs as the direct one: one pass over the pixels it uses, where the padded, phase-split
  // planes and im2col tiles made two over all of them and a third over the tiles (ResNet-20's
  // downsampling convs: 16 and 32 channels, 28² and 14² in, stride 2).
  const bool planes = direct_ || strided1x1_;
  const int64_t plane = direct_ ? HW : strided1x1_ ? P : geo.plane;
  // The input planes as B: a task takes nt tiles, each panel over all of them before the next
  // (f32_gemm_8xNR_block), nt·NR columns of B about 16 KiB (K = 16: 8 tiles, K >= 128: one).
  const int64_t nt = planes && !geo.per_row ? std::max<int64_t>(1, kBlockFloats / (K * NR)) : 1;
  const int64_t panels = ceil_div(OCg, kMR), tiles = geo.per_row ? OH * geo.per_row : ceil_div(P, NR * nt);
  const int64_t base = N * G * tiles;
  // Channel panels are split across threads only when pixel tiles are too few to go round: each
  // block of panels re-gathers its tile.
  const int64_t threads = get_num_threads();
  int64_t per_block = panels;
  if (threads > 1 && base < 4 * threads) per_block = ceil_div(panels, std::min(panels, ceil_div(4 * threads, base)));
  const int64_t blocks = ceil_div(panels, per_block), tasks = base * blocks;

  Tensor y = empty({N, OC_, OH, OW}, DType::f32);
  const Tensor xc = x.contiguous(), rc = residual.defined() ? residual.contiguous() : Tensor();
  const float* px = xc.data<float>();
  if (wino_) {  // each thread pads what its chunks read, inside the region (run_winograd)
    run_winograd(px, N, H, W, geo, OH, OW, rc.defined() ? rc.data<float>() : nullptr, y.data<float>(), act);
    return y;
  }
  // The padded (or subsampled) planes: each thread copies, inside the region, the rows its own
  // tiles read (halo rows included) into its own buffer, one (image, group) at a time
  // (kernels/own_rows.h). A copy made before the region, by the caller for both threads, wrote
  // in every call lines the other core had read in the call before, and each store waited for
  // its line to come back (docs/threads.md).
  const uint64_t call = direct_ ? 0 : next_rows_call();
  const size_t need = size_t(Cg_ * plane + 2 * NR);
  // The plane rows output tiles ta .. tb read: padded rows oy·sh .. oy·sh + (KH − 1)·dh of their
  // output rows oy, or (subsampled planes) the output rows themselves.
  auto rows_of = [&](int64_t ta, int64_t tb) {
    const int64_t oy0 = geo.per_row ? ta / geo.per_row : ta * NR * nt / OW;  // a tile is nt·NR columns
    const int64_t oy1 = geo.per_row ? tb / geo.per_row : (std::min(P, (tb + 1) * NR * nt) - 1) / OW;
    return strided1x1_ ? std::pair<int64_t, int64_t>{oy0, oy1 + 1}
                       : std::pair<int64_t, int64_t>{oy0 * p_.sh, oy1 * p_.sh + (KH_ - 1) * p_.dh + 1};
  };
  // The planes of (image, group) ng as the tiles ta .. tb read them.
  auto planes_for = [&](int64_t ng, int64_t ta, int64_t tb) -> const float* {
    const float* xs = px + ng * Cg_ * HW;  // n·C + g·Cg = (n·G + g)·Cg
    if (direct_) return xs;
    thread_local OwnRows own;
    thread_local std::vector<float> buf;
    const auto [lo, hi] = rows_of(ta, tb);
    own.cover(
        call, ng, lo, hi,
        [&] {
          if (buf.size() < need) buf.resize(need);
        },
        [&](int64_t r0, int64_t r1) {
          if (strided1x1_)
            subsample_rows(xs, Cg_, H, W, p_.sh, p_.sw, OH, OW, r0, r1, buf.data());
          else
            pad_rows(xs, H, W, geo, r0, r1, buf.data());
        });
    return buf.data();
  };
  const float* pr = rc.defined() ? rc.data<float>() : nullptr;
  float* py = y.data<float>();
  // Per task its multiply-adds and its share of the copy (each plane once at one thread: the
  // fill and the copy of the padded plane, or the subsampled pixels read and written).
  const double copy_bytes = direct_ ? 0.0 : double(Cg_ * (strided1x1_ ? 2 * P : plane + HW)) * sizeof(float);
  const Work per_task = Work::macs_f32(double(per_block * kMR * K * NR * nt)) +
                        Work::bytes_stream(copy_bytes / double(tiles * blocks));
  parallel_for(0, tasks, per_task, [&](int64_t t0, int64_t t1) {
    int64_t held = -1;  // the (image, group, tile) whose B tile buf holds
    int64_t cur = -1;   // the (image, group) whose planes xg holds
    const float* xg = nullptr;
    float* buf = nullptr;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t blk = t % blocks, key = t / blocks, tile = key % tiles, g = key / tiles % G, n = key / tiles / G;
      if (key / tiles != cur) {  // this chunk's tiles of (n, g): from here to the chunk's end or the last
        cur = key / tiles;
        xg = planes_for(cur, tile, std::min((t1 - 1) / blocks, (cur + 1) * tiles - 1) - cur * tiles);
        // The tile buffer after the planes, in the order the caller's pad allocated them: the
        // strided 1×1 convs' CPU time in bench_f32_conv moved by 15 % with where the two buffers
        // first landed on the heap relative to the output (measured, not understood further).
        if (!buf) buf = tile_buffer((K + 1) * NR);
      }
      const int64_t m0 = blk * per_block * kMR, rows = std::min(per_block * kMR, OCg - m0);
      const float* wg = wp_.data() + g * panels * K * kMR + m0 * K;
      const float* bg = bias_.data() + g * panels * kMR + m0;
      if (geo.per_row) {  // one output row's tile, B read in place
        const int64_t oy = tile / geo.per_row, ox = tile % geo.per_row * NR, cols = std::min(NR, OW - ox);
        const int64_t out = (n * OC_ + g * OCg + m0) * P + oy * OW + ox;
        f32k::f32_igemm_8xNR(wg, rows, K, xg + oy * p_.sh * geo.row + ox, geo.offs.data(), cols, bg,
                             pr ? pr + out : nullptr, P, py + out, P, act);
        continue;
      }
      int64_t p0 = tile * NR * nt, cols = std::min(NR * nt, P - p0);
      if (planes && cols >= NR) {  // whole tiles: the input planes are B
        const int64_t whole = cols / NR * NR, out = (n * OC_ + g * OCg + m0) * P + p0;
        f32k::f32_gemm_8xNR_block(wg, rows, K, xg + p0, plane, whole, bg, pr ? pr + out : nullptr, P, py + out, P,
                                  act);
        if (whole == cols) continue;
        p0 += whole, cols -= whole;  // the plane's last, partial tile
      }
      const float* b = buf;
      const int64_t ldb = NR;
      if (key != held) {
        if (planes) {  // a partial tile, copied so every row is readable for NR columns
          for (int64_t k = 0; k < K; ++k) {
            std::memcpy(buf + k * NR, xg + k * plane + p0, size_t(cols) * sizeof(float));
            std::fill(buf + k * NR + cols, buf + (k + 1) * NR, 0.0f);
          }
        } else {
          const f32k::Segment* segs = geo.segs.data() + geo.first[size_t(tile)];
          const int64_t nsegs = geo.first[size_t(tile) + 1] - geo.first[size_t(tile)];
          f32k::f32_im2col_tile(xg, plane, Cg_, geo.taps.data(), T, segs, nsegs, cols, buf);
        }
        held = key;
      }
      const int64_t out = (n * OC_ + g * OCg + m0) * P + p0;
      f32k::f32_gemm_8xNR(wg, rows, K, b, ldb, cols, bg, pr ? pr + out : nullptr, P, py + out, P, act);
    }
  });
  return y;
}

// Chunks of NR tiles over threads; per chunk the input transform into v [16][C][NR], the
// 16 GEMMs into m [16][OC][NR], the output transform with the epilogue. Each thread pads the
// image its chunks read into its own buffer, once per call and image (one image at a time: a
// thread meets its images in order, and pads again one it comes back to by stealing): when the
// caller padded for both, it
// wrote, every call, lines the worker had read in the last one, and each store waited for its
// line to come back from the other core (perf, ResNet-20's 32→32 at 14²: the pad took 3.9 µs at
// one thread, ~19 µs on the caller at two, and the split conv was slower than one thread;
// docs/threads.md). Padding an image twice costs less than that.
void F32Conv2d::run_winograd(const float* x, int64_t N, int64_t H, int64_t W, const Geometry& geo, int64_t OH,
                             int64_t OW, const float* res, float* y, Act act) const {
  const int64_t C = Cg_, OC = OC_, NR = NR_, P = OH * OW, panels = ceil_div(OC, kMR), L = f32k::f32_gemm_vector_cols();
  const int64_t chunks = int64_t(geo.first.size()) - 1, ld = NR;
  // One cache line more than the 16 blocks' size between them (see f32_wino_input).
  const int64_t xv = C * ld + 16, xm = OC * ld + 16;
  // Per chunk: 16 GEMMs of OC × C × NR plus the two transforms (about as much again at these sizes).
  const uint64_t call = next_rows_call();
  const size_t need = size_t(C * geo.plane + 2 * NR);
  parallel_for(0, N * chunks, Work::macs_f32(2.0 * 16 * OC * C * NR), [&](int64_t t0, int64_t t1) {
    // The image's padded planes in this thread's buffer, whole (kernels/own_rows.h with one "row"
    // per image: a chunk's 4×4 patches run across tile rows, and f32_wino_pad writes past a row).
    thread_local OwnRows own;
    thread_local std::vector<float> buf;
    float* v = tile_buffer(16 * (xv + xm) + 2 * NR);
    float* m = v + 16 * xv;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / chunks, chunk = t % chunks;
      own.cover(
          call, n, 0, 1,
          [&] {
            if (buf.size() < need) buf.resize(need);
          },
          [&](int64_t, int64_t) {
            for (int64_t c = 0; c < C; ++c)
              f32k::f32_wino_pad(x + (n * C + c) * H * W, H, W, p_.ph, p_.pw, geo.row, geo.rows, geo.Lp,
                                 buf.data() + c * geo.plane);
          });
      const float* xp = buf.data();
      const f32k::WinoRun* runs = geo.wruns.data() + geo.first[size_t(chunk)];
      const int64_t nruns = geo.first[size_t(chunk) + 1] - geo.first[size_t(chunk)];
      const int64_t j0 = chunk * NR, cols = std::min(NR, geo.tiles - j0);
      f32k::f32_wino_input(xp, geo.plane, geo.Lp, geo.row, C, j0, cols, v, ld, xv);
      // A last chunk under one vector (28²: 196 = 6·32 + 4 tiles) runs as that vector, which the
      // input transform wrote whole, not column by column (6 % of the layer's time in perf); the
      // lanes past cols are dropped by the output transform. (A longer one keeps its columns:
      // 49 = 32 + 16 + 1 was slower as two vectors.)
      const int64_t gcols = cols < L ? L : cols;
      for (int64_t xi = 0; xi < 16; ++xi)
        f32k::f32_gemm_8xNR(wu_.data() + xi * panels * C * kMR, OC, C, v + xi * xv, ld, gcols, nullptr, nullptr, 0,
                            m + xi * xm, ld, Act::none);
      f32k::f32_wino_output(m, OC, ld, xm, cols, runs, nruns, bias_.data(), res ? res + n * OC * P : nullptr,
                            y + n * OC * P, P, OW, act);
    }
  });
}

// ---- linear ----

F32Linear::F32Linear(const Tensor& weight, const Tensor& bias, Act act) : act_(act) {
  if (weight.dtype() != DType::f32 || weight.dim() != 2)
    fail("linear (fp32): expected an F32 weight [OUT, IN], got ", describe(weight));
  const Tensor w = weight.contiguous();
  OUT_ = w.size(0), IN_ = w.size(1);
  const int64_t panels = ceil_div(OUT_, kMR);
  wp_.assign(size_t(panels * IN_ * kMR), 0.0f);
  f32k::f32_pack_panels(w.data<float>(), IN_, OUT_, IN_, wp_.data());
  bias_.assign(size_t(panels * kMR), 0.0f);
  const std::vector<float> b = bias_of(bias, OUT_, "linear (fp32)");
  std::copy(b.begin(), b.end(), bias_.begin());
}

Tensor F32Linear::run(const Tensor& x) const {
  if (x.dtype() != DType::f32 || x.dim() < 1 || x.size(-1) != IN_)
    fail("linear (fp32): expected an F32 input [..., ", IN_, "] for weight [", OUT_, ", ", IN_, "], got ",
         describe(x));
  const int64_t R = x.numel() / std::max<int64_t>(IN_, 1), panels = ceil_div(OUT_, kMR);
  Shape out_shape = x.shape();
  out_shape.back() = OUT_;
  Tensor y = empty({R, OUT_}, DType::f32);
  const Tensor xc = x.contiguous();
  const float* px = xc.data<float>();
  float* py = y.data<float>();
  if (R >= kLinearGemmRows) {
    // Tiles of NR rows: x's rows transposed into B [IN][NR], the GEMM into C [OUT][NR], C's
    // columns copied back as y's rows.
    const int64_t NR = f32k::f32_gemm_tile_cols(), tiles = ceil_div(R, NR);
    parallel_for(0, tiles, Work::macs_f32(double(OUT_ * IN_ * NR)), [&](int64_t t0, int64_t t1) {
      float* bt = tile_buffer((IN_ + OUT_) * NR);
      float* ct = bt + IN_ * NR;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r0 = t * NR, cols = std::min(NR, R - r0);
        std::fill(bt, bt + IN_ * NR, 0.0f);
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t k = 0; k < IN_; ++k) bt[k * NR + j] = px[(r0 + j) * IN_ + k];
        f32k::f32_gemm_8xNR(wp_.data(), OUT_, IN_, bt, NR, cols, bias_.data(), nullptr, 0, ct, NR, act_);
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t o = 0; o < OUT_; ++o) py[(r0 + j) * OUT_ + o] = ct[o * NR + j];
      }
    });
    return y.view(out_shape);
  }
  parallel_for(0, R * panels, Work::macs_f32(double(kMR * IN_)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1;) {  // runs of panels of one row in one call
      const int64_t r = t / panels, p = t % panels, p1 = std::min(panels, p + (t1 - t));
      f32k::f32_gemv(wp_.data(), OUT_, IN_, px + r * IN_, bias_.data(), py + r * OUT_, act_, p * kMR,
                     std::min(OUT_, p1 * kMR));
      t += p1 - p;
    }
  });
  return y.view(out_shape);
}

}  // namespace finch::quant::kernels
