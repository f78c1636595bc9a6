// The fp32 conv2d/linear of the runtime (kernels/f32_conv.h) and their micro-kernels against
// plain loops in double (ops::conv2d_reference), on every compiled Highway target: random
// geometries (channels 1–70, kernels 1/3/5/7, strides 1–3, padding, dilation, groups, planes
// 1–30, batch 1 and 3, each activation, with and without bias and residual). The tolerance is
// the error bound of a K-term fp32 fma chain, (K + 2)·2^-24·Σ|w·x| (+ |bias| + |residual|):
// rigorous, so it cannot fail on rounding, and a misplaced tap or lane is off by O(|w·x|).
// 1 and 2 threads must agree bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/parallel_internal.h"
#include "hwy/targets.h"
#include "kernels/f32_conv.h"
#include "ops/elementwise.h"
#include "tests/hwy_targets.h"

namespace finch::test {
namespace {

namespace qk = quant::kernels;
using qk::f32k::Act;

Tensor uniform(const Shape& s, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t = empty(s, DType::f32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

std::vector<double> doubles(const Tensor& t) {
  const Tensor c = t.to(DType::f64).contiguous();
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

double act_of(double v, Act a) {
  if (a == Act::none) return v;
  v = std::max(v, 0.0);
  return a == Act::relu6 ? std::min(v, 6.0) : v;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data<float>(), b.data<float>(), size_t(a.numel()) * 4) == 0;
}

// Elements of got outside the bound around act(ref + bias + res); ref and abs_sum [N, OC, ...].
// winograd: the F(2×2, 3×3) sums are of transformed values (each a ±½-weighted sum of up to 16
// inputs or 9 weights), whose rounding is bounded by the largest Σ|w·x| of the plane times a
// small constant rather than by the output's own Σ|w·x|: the bound takes 16 × the plane's largest.
int64_t violations(const Tensor& got, const Tensor& ref, const Tensor& abs_sum, const Tensor& bias,
                   const Tensor& res, int64_t K, Act act, int64_t per_channel, const std::string& what,
                   bool winograd = false) {
  const std::vector<double> r = doubles(ref), rs = res.defined() ? doubles(res) : std::vector<double>();
  std::vector<double> s = doubles(abs_sum);
  if (winograd)
    for (size_t p0 = 0; p0 < s.size(); p0 += size_t(per_channel)) {
      const double m = *std::max_element(s.begin() + long(p0), s.begin() + long(p0) + per_channel);
      std::fill(s.begin() + long(p0), s.begin() + long(p0) + per_channel, 16 * m);
    }
  const std::vector<double> b = bias.defined() ? doubles(bias) : std::vector<double>();
  const int64_t OC = got.size(1);
  const float* g = got.data<float>();
  int64_t bad = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const int64_t oc = int64_t(i) / per_channel % OC;
    const double bi = b.empty() ? 0.0 : b[size_t(oc)], ri = rs.empty() ? 0.0 : rs[i];
    const double want = act_of(r[i] + bi + ri, act);
    const double tol = double(K + 2) * std::ldexp(1.0, -24) * (s[i] + std::fabs(bi) + std::fabs(ri)) + 1e-30;
    if (!(std::fabs(double(g[i]) - want) <= tol)) {
      if (++bad <= 3) ADD_FAILURE() << what << " element " << i << ": " << g[i] << " vs " << want << " (tol " << tol << ")";
    }
  }
  return bad;
}

std::string g_target;  // the Highway target for_each_target is on (for the failure messages)

struct ConvCase {
  int64_t N, C, OC, H, W, KH, KW;
  ops::Conv2dParams p;
  bool bias, residual;
  Act act;
  bool other_size;  // prepared for another input size than run()'s
};

std::string describe_case(const ConvCase& c) {
  return "N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " OC" + std::to_string(c.OC) + " " +
         std::to_string(c.H) + "x" + std::to_string(c.W) + " k" + std::to_string(c.KH) + "x" + std::to_string(c.KW) +
         " s" + std::to_string(c.p.sh) + "," + std::to_string(c.p.sw) + " p" + std::to_string(c.p.ph) + "," +
         std::to_string(c.p.pw) + " d" + std::to_string(c.p.dh) + "," + std::to_string(c.p.dw) + " g" +
         std::to_string(c.p.groups) + (c.bias ? " bias" : "") + (c.residual ? " res" : "") + " act" +
         std::to_string(int(c.act)) + (c.other_size ? " other-size" : "");
}

// Runs at 1 thread, then at 2 .. max_threads; every run must give y1's bits. must_split: the
// runs at each thread count must have planned a region of more than one chunk (the chunks' row
// copies; which thread ran which chunk is up to the pool).
int64_t check_conv(std::mt19937& rng, const ConvCase& c, int max_threads = 2, bool must_split = false) {
  const std::string what = describe_case(c) + " on " + g_target;
  const Tensor x = uniform({c.N, c.C, c.H, c.W}, rng);
  const Tensor w = uniform({c.OC, c.C / c.p.groups, c.KH, c.KW}, rng);
  const Tensor b = c.bias ? uniform({c.OC}, rng) : Tensor();
  const int64_t OH = ops::conv_out_size(c.H, c.KH, c.p.sh, c.p.ph, c.p.dh), OW = ops::conv_out_size(c.W, c.KW, c.p.sw, c.p.pw, c.p.dw);
  const Tensor res = c.residual ? uniform({c.N, c.OC, OH, OW}, rng, -2, 2) : Tensor();
  const qk::F32Conv2d k(w, b, c.p, c.act, c.other_size ? c.H + 3 : c.H, c.other_size ? c.W + 1 : c.W);
  set_num_threads(1);
  const Tensor y1 = k.run(x, res);
  for (int threads = 2; threads <= max_threads; ++threads) {
    set_num_threads(threads);
    // Regions planned with more than one chunk, whether or not a worker took part (the pool
    // runs them on the caller while it backs off under load).
    const int64_t regions = detail::pool_stats().regions;
    for (int rep = 0; rep < 2; ++rep) {  // the second call finds the threads' rows of the first
      const Tensor yt = k.run(x, res);
      EXPECT_TRUE(same_bits(y1, yt)) << what << ": 1 and " << threads << " threads differ";
    }
    if (must_split) {
      EXPECT_GT(detail::pool_stats().regions, regions) << what << ": not split at " << threads;
    }
  }
  set_num_threads(1);
  const Tensor ref = ops::conv2d_reference(x.to(DType::f64), w.to(DType::f64), Tensor(), c.p);
  const Tensor abs_sum = ops::conv2d_reference(ops::abs(x).to(DType::f64), ops::abs(w).to(DType::f64), Tensor(), c.p);
  EXPECT_EQ(y1.shape(), (Shape{c.N, c.OC, OH, OW})) << what;
  if (y1.shape() != ref.shape()) return 1;
  return violations(y1, ref, abs_sum, b, res, c.C / c.p.groups * c.KH * c.KW, c.act, OH * OW,
                    what + (k.winograd() ? " (winograd)" : ""), k.winograd());
}

template <class F>
void for_each_target(F f) {
  for (int64_t target : hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    g_target = hwy::TargetName(target);
    f();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The edges by hand: 1×1 direct (full and partial tiles, one pixel), the tile width and its
// one-vector half (the narrow tile) ±1 in pixels, 8 ± 1 output channels, K = 1, padding larger than the kernel's reach, groups.
TEST(F32Conv, EdgeGeometries) {
  for_each_target([] {
    std::mt19937 rng(3);
    const int64_t NR = qk::f32k::f32_gemm_tile_cols();
    std::vector<ConvCase> cases;
    const Act acts[] = {Act::none, Act::relu, Act::relu6};
    int i = 0;
    for (int64_t P : {int64_t(1), std::max<int64_t>(NR / 2 - 1, 2), std::max<int64_t>(NR / 2, 3), NR / 2 + 1,
                      std::max<int64_t>(NR - 1, 2), NR, NR + 1, 2 * NR + 3})
      for (int64_t OC : {1, 7, 8, 9, 17}) {
        const Act a = acts[i++ % 3];
        cases.push_back({1, 5, OC, 1, P, 1, 1, {}, true, i % 2 == 0, a, false});
        cases.push_back({3, 3, OC, P, 2, 3, 3, {1, 1, 1, 1, 1, 1, 1}, i % 2 == 1, true, a, false});
      }
    cases.push_back({1, 1, 1, 1, 1, 1, 1, {}, false, false, Act::none, false});
    cases.push_back({2, 4, 6, 3, 3, 3, 3, {1, 1, 3, 2, 1, 1, 1}, true, true, Act::relu6, false});
    cases.push_back({1, 6, 9, 8, 8, 3, 3, {2, 2, 1, 1, 1, 1, 3}, true, false, Act::relu, false});
    cases.push_back({1, 8, 8, 9, 9, 3, 3, {1, 1, 1, 1, 1, 1, 8}, true, true, Act::none, false});  // depthwise shape
    cases.push_back({1, 3, 16, 30, 30, 7, 7, {2, 2, 3, 3, 1, 1, 1}, true, false, Act::relu, true});
    cases.push_back({1, 4, 16, 12, 12, 1, 1, {2, 2, 0, 0, 1, 1, 1}, false, true, Act::none, true});
    cases.push_back({3, 6, 10, 9, 11, 1, 1, {3, 2, 0, 0, 1, 1, 2}, true, true, Act::relu, false});  // strided 1×1
    cases.push_back({1, 4, 16, 12, 12, 1, 1, {1, 1, 1, 1, 1, 1, 1}, true, false, Act::relu, false});
    int64_t bad = 0;
    for (const ConvCase& c : cases) bad += check_conv(rng, c);
    EXPECT_EQ(bad, 0);
  });
}

// Winograd F(2×2, 3×3): odd and even output sizes (a half tile at the bottom and right edges),
// padding 0–2, tile rows shorter and longer than a chunk, channels at and around the threshold.
TEST(F32Conv, WinogradEdges) {
  for_each_target([] {
    std::mt19937 rng(17);
    int64_t bad = 0, wino = 0;
    int i = 0;
    for (int64_t HW : {3, 4, 5, 7, 8, 14, 15, 28, 29})
      for (int64_t pad : {0, 1, 2}) {
        const int64_t C = qk::kWinogradMinChannels + (i % 3 == 0 ? 0 : i % 11), OC = qk::kWinogradMinChannels + i % 13;
        const ConvCase c{i % 4 == 0 ? 3 : 1, C, OC, HW, HW + i % 3, 3, 3, {1, 1, pad, pad, 1, 1, 1},
                         i % 2 == 0, i % 3 == 1, Act(i % 3), i % 5 == 0};
        ++i;
        const qk::F32Conv2d k(uniform({OC, C, 3, 3}, rng), Tensor(), c.p, c.act, c.H, c.W);
        wino += k.winograd();
        bad += check_conv(rng, c);
      }
    EXPECT_EQ(wino, 27) << "every case takes the Winograd path";
    EXPECT_EQ(bad, 0);
    // Below the channel threshold, or strided, dilated or grouped: the direct path.
    EXPECT_FALSE(qk::F32Conv2d(uniform({16, 7, 3, 3}, rng), Tensor(), {}, Act::none, 8, 8).winograd());
    EXPECT_FALSE(qk::F32Conv2d(uniform({16, 16, 3, 3}, rng), Tensor(), {2, 2, 1, 1, 1, 1, 1}, Act::none, 8, 8).winograd());
    EXPECT_FALSE(qk::F32Conv2d(uniform({16, 16, 3, 3}, rng), Tensor(), {1, 1, 2, 2, 2, 2, 1}, Act::none, 8, 8).winograd());
    EXPECT_FALSE(qk::F32Conv2d(uniform({16, 8, 3, 3}, rng), Tensor(), {1, 1, 1, 1, 1, 1, 2}, Act::none, 8, 8).winograd());
  });
}

TEST(F32Conv, RandomGeometriesMatchTheReference) {
  for_each_target([] {
    std::mt19937 rng(11);
    const int64_t Ks[] = {1, 3, 5, 7};
    int64_t bad = 0, cases = 0;
    for (int it = 0; it < 160; ++it) {
      ConvCase c{};
      const int64_t KH = Ks[rng() % 4], KW = rng() % 4 == 0 ? Ks[rng() % 4] : KH;
      c.KH = KH, c.KW = KW;
      c.p.groups = rng() % 4 == 0 ? int64_t(1 + rng() % 4) : 1;
      c.C = c.p.groups * int64_t(1 + rng() % (c.p.groups > 1 ? 12 : 70));
      c.OC = c.p.groups * int64_t(1 + rng() % (c.p.groups > 1 ? 12 : 70));
      c.p.sh = 1 + rng() % 3, c.p.sw = rng() % 3 == 0 ? 1 + int64_t(rng() % 3) : c.p.sh;
      c.p.dh = rng() % 5 == 0 ? 2 : 1, c.p.dw = rng() % 5 == 0 ? 2 : 1;
      c.p.ph = int64_t(rng() % (KH / 2 + 2)), c.p.pw = int64_t(rng() % (KW / 2 + 2));
      const int64_t reach_h = (KH - 1) * c.p.dh + 1 - 2 * c.p.ph, reach_w = (KW - 1) * c.p.dw + 1 - 2 * c.p.pw;
      c.H = std::max<int64_t>(reach_h, 1) + int64_t(rng() % 30);
      c.W = std::max<int64_t>(reach_w, 1) + int64_t(rng() % 30);
      c.H = std::min<int64_t>(c.H, 30), c.W = std::min<int64_t>(c.W, 30);
      if (c.H < reach_h || c.W < reach_w) continue;
      // Keep the double reference quick: at most ~3M multiply-adds a case.
      if (c.C * c.OC / c.p.groups * KH * KW * c.H * c.W / (c.p.sh * c.p.sw) > 3000000) c.H = c.W = std::max(reach_h, reach_w) + 2;
      if (c.H < reach_h || c.W < reach_w) continue;
      c.N = rng() % 4 == 0 ? 3 : 1;
      c.bias = rng() % 3 != 0, c.residual = rng() % 3 == 0;
      c.act = Act(rng() % 3);
      c.other_size = rng() % 8 == 0;
      bad += check_conv(rng, c);
      ++cases;
    }
    EXPECT_GT(cases, 120);
    EXPECT_EQ(bad, 0);
  });
}

// Layers large enough to split, on every path that copies its input (padded and phase-split
// planes with im2col tiles or row tiles, subsampled planes of a strided 1×1): each thread copies
// the rows its own tiles read inside the region (kernels/own_rows.h), so the halo rows of a split
// are copied by both threads and a thread that steals a chunk copies rows apart from its own.
// Odd sizes, strides 1/2/3, padding 0/1/2, dilation, groups, batches whose splits cross images;
// 1, 2 and 3 threads give the same bits, and the reference's bound holds.
TEST(F32Conv, SplitLayersCopyTheirOwnRows) {
  for_each_target([] {
    std::mt19937 rng(29);
    const int64_t NR = qk::f32k::f32_gemm_tile_cols();
    const int64_t R1 = std::max<int64_t>(2 * NR + 5, 45), R2 = std::max<int64_t>(4 * NR + 3, 71);  // OW >= NR
    std::vector<ConvCase> cases = {
        {1, 16, 32, 29, 31, 3, 3, {2, 2, 1, 1, 1, 1, 1}, true, true, Act::relu, false},
        {1, 5, 24, 37, 33, 3, 3, {1, 1, 0, 0, 1, 1, 1}, true, false, Act::none, false},
        {1, 5, 24, 35, 31, 3, 3, {1, 1, 2, 2, 1, 1, 1}, false, true, Act::relu6, false},
        {1, 8, 16, 40, 40, 5, 5, {2, 2, 2, 2, 1, 1, 2}, true, false, Act::relu, false},
        {1, 12, 32, 40, 41, 3, 3, {3, 3, 1, 1, 1, 1, 1}, true, true, Act::none, false},
        {1, 4, 16, 36, 36, 3, 3, {1, 1, 1, 2, 2, 2, 1}, true, false, Act::relu, false},
        {2, 64, 64, 33, 33, 1, 1, {2, 2, 0, 0, 1, 1, 1}, true, true, Act::relu, false},
        {3, 16, 32, 15, 17, 3, 3, {2, 2, 1, 1, 1, 1, 1}, true, true, Act::relu, true},
        {2, 3, 32, R1, R1 + 1, 3, 3, {1, 1, 1, 1, 1, 1, 1}, true, false, Act::relu, false},  // row tiles
        {1, 3, 32, R2, R2 - 2, 3, 3, {2, 2, 1, 1, 1, 1, 1}, true, true, Act::relu6, false},  // row tiles
        {2, 32, 48, 20, 20, 1, 1, {1, 1, 0, 0, 1, 1, 1}, true, true, Act::none, false},  // direct: no copy
    };
    int64_t bad = 0;
    for (const ConvCase& c : cases) bad += check_conv(rng, c, 3, true);
    EXPECT_EQ(bad, 0);
  });
}

TEST(F32Linear, MatchesTheReference) {
  for_each_target([] {
    std::mt19937 rng(5);
    int64_t bad = 0;
    for (int64_t IN : {1, 3, 4, 5, 8, 9, 64, 255, 1280})
      for (int64_t OUT : {1, 7, 8, 9, 10, 70})
        for (int64_t R : {1, 3, 4, 37}) {  // the GEMV rows, then GEMM tiles (37: a partial tile on every target)
          const Act act = Act((IN + OUT + R) % 3);
          const Tensor x = uniform({R, IN}, rng), w = uniform({OUT, IN}, rng);
          const Tensor b = (IN + OUT) % 2 ? uniform({OUT}, rng) : Tensor();
          const qk::F32Linear k(w, b, act);
          set_num_threads(1);
          const Tensor y1 = k.run(x);
          set_num_threads(2);
          const Tensor y2 = k.run(x);
          set_num_threads(1);
          const std::string what = "linear " + std::to_string(R) + "x" + std::to_string(IN) + " -> " + std::to_string(OUT);
          EXPECT_TRUE(same_bits(y1, y2)) << what;
          // y = x·wᵀ as a 1×1 conv over R images of one pixel (the reference in double).
          const Tensor x4 = x.reshape({R, IN, 1, 1}), w4 = w.reshape({OUT, IN, 1, 1});
          const Tensor ref = ops::conv2d_reference(x4.to(DType::f64), w4.to(DType::f64), Tensor(), {});
          const Tensor abs_sum = ops::conv2d_reference(ops::abs(x4).to(DType::f64), ops::abs(w4).to(DType::f64), Tensor(), {});
          bad += violations(y1.reshape({R, OUT, 1, 1}), ref, abs_sum, b, Tensor(), IN, act, 1, what);
        }
    EXPECT_EQ(bad, 0);
  });
}

// From 4 rows on, a row's result does not depend on how many rows the GEMM has: every output is
// one fma chain, in a vector tile and in the column-by-column tail alike (infer_squad runs a
// window trimmed to its real tokens and relies on the same bits as the padded window).
TEST(F32Linear, ARowIsTheSameBitsWhateverTheRowCount) {
  for_each_target([] {
    std::mt19937 rng(9);
    for (int64_t IN : {5, 64, 257})
      for (int64_t OUT : {7, 8, 33}) {
        const Act act = Act((IN + OUT) % 3);
        const Tensor x = uniform({70, IN}, rng), w = uniform({OUT, IN}, rng), b = uniform({OUT}, rng);
        const qk::F32Linear k(w, b, act);
        const std::vector<float> all = k.run(x).to_vector<float>();
        for (int64_t R = 4; R <= 70; ++R) {
          const std::vector<float> part = k.run(x.narrow(0, 0, R).contiguous()).to_vector<float>();
          ASSERT_EQ(part.size(), size_t(R * OUT));
          for (size_t i = 0; i < part.size(); ++i)
            ASSERT_EQ(part[i], all[i]) << "linear " << IN << " -> " << OUT << ": row " << int64_t(i) / OUT << " of "
                                       << R << " differs from the same row of 70";
        }
      }
  });
}

// Rows at least a tile wide take tiles of one output row, read in place by the indirect GEMM:
// its micro-kernel gives the same bits as the strided one over the rows copied out (every width
// 1 … NR, so the vector tiles, the padded vector and the column tail), and convs with such rows
// (stride 1 and 2, dilation, groups, batch 3, a residual, another prepared size) match the
// reference.
TEST(F32Conv, RowTilesMatchTheCopiedTilesAndTheReference) {
  for_each_target([] {
    std::mt19937 rng(23);
    const int64_t NR = qk::f32k::f32_gemm_tile_cols();
    for (int64_t M : {1, 7, 8, 9, 17})
      for (int64_t K : {1, 5, 27}) {
        const Tensor w = uniform({M, K}, rng), bias = uniform({(M + 7) / 8 * 8}, rng);
        std::vector<float> wp(size_t((M + 7) / 8 * 8 * K));
        qk::f32k::f32_pack_panels(w.data<float>(), K, M, K, wp.data());
        const Tensor src = uniform({K * 3 * NR + 2 * NR}, rng);
        std::vector<int64_t> offs(static_cast<size_t>(K));
        std::vector<float> rows(size_t(K * NR));
        for (int64_t k = 0; k < K; ++k) {
          offs[size_t(k)] = int64_t(rng() % uint32_t(K * 3 * NR));
          std::memcpy(&rows[size_t(k * NR)], src.data<float>() + offs[size_t(k)], size_t(NR) * 4);
        }
        const Tensor res = uniform({M * NR}, rng);
        for (int64_t n = 1; n <= NR; ++n) {
          const Act act = Act(n % 3);
          std::vector<float> a(size_t(M * NR), -7.0f), b(a);
          qk::f32k::f32_gemm_8xNR(wp.data(), M, K, rows.data(), NR, n, bias.data<float>(),
                                  n % 2 ? res.data<float>() : nullptr, NR, a.data(), NR, act);
          qk::f32k::f32_igemm_8xNR(wp.data(), M, K, src.data<float>(), offs.data(), n, bias.data<float>(),
                                   n % 2 ? res.data<float>() : nullptr, NR, b.data(), NR, act);
          ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0)
              << "M " << M << " K " << K << " n " << n << " on " << g_target;
        }
      }
    int64_t bad = 0;
    for (int64_t OW : {NR, NR + 1, NR + NR / 4, 2 * NR + 3, 3 * NR + NR / 2}) {
      bad += check_conv(rng, {1, 3, 16, 5, 2 * OW, 3, 3, {2, 2, 1, 1, 1, 1, 1}, true, false, Act::relu6, false});
      bad += check_conv(rng, {3, 5, 9, 4, OW, 3, 3, {1, 1, 1, 1, 1, 1, 1}, true, true, Act::relu, false});
      bad += check_conv(rng, {1, 4, 6, 7, OW + 4, 5, 3, {1, 1, 0, 0, 1, 2, 2}, false, true, Act::none, true});
      bad += check_conv(rng, {1, 2, 17, 3, OW + 2, 3, 3, {1, 1, 0, 0, 1, 1, 1}, true, false, Act::none, false});
    }
    EXPECT_EQ(bad, 0);
  });
}

// The 1×1 path's blocks of whole tiles (f32_gemm_8xNR_block, panel by panel over nt tiles) give
// the bits of the tile-by-tile kernel; and 1×1 convs whose planes hold several blocks and a
// partial tile (K = 1: 128 tiles a block on AVX-512; K = 16: 8; K = 33: 3) match the reference,
// 1 and 2 threads bit for bit.
TEST(F32Conv, BlocksOfTilesMatchTheTileKernelAndTheReference) {
  for_each_target([] {
    std::mt19937 rng(29);
    const int64_t NR = qk::f32k::f32_gemm_tile_cols();
    for (int64_t M : {1, 7, 8, 9, 17, 32})
      for (int64_t K : {1, 5, 16}) {
        const int64_t n = 5 * NR, ldb = n + 3;
        const Tensor w = uniform({M, K}, rng), bias = uniform({(M + 7) / 8 * 8}, rng);
        std::vector<float> wp(size_t((M + 7) / 8 * 8 * K));
        qk::f32k::f32_pack_panels(w.data<float>(), K, M, K, wp.data());
        const Tensor b = uniform({K * ldb}, rng), res = uniform({M * ldb}, rng);
        for (int i = 0; i < 3; ++i) {
          const Act act = Act(i);
          const float* r = i == 1 ? nullptr : res.data<float>();
          std::vector<float> a(size_t(M * ldb), -7.0f), c(a);
          for (int64_t j = 0; j < n; j += NR)
            qk::f32k::f32_gemm_8xNR(wp.data(), M, K, b.data<float>() + j, ldb, NR, bias.data<float>(),
                                    r ? r + j : nullptr, ldb, a.data() + j, ldb, act);
          qk::f32k::f32_gemm_8xNR_block(wp.data(), M, K, b.data<float>(), ldb, n, bias.data<float>(), r, ldb,
                                        c.data(), ldb, act);
          ASSERT_EQ(std::memcmp(a.data(), c.data(), a.size() * 4), 0)
              << "M " << M << " K " << K << " act " << i << " on " << g_target;
        }
      }
    int64_t bad = 0;
    bad += check_conv(rng, {1, 1, 9, 70, 70, 1, 1, {}, true, true, Act::relu6, false});
    bad += check_conv(rng, {2, 16, 32, 21, 37, 1, 1, {}, true, false, Act::relu, false});
    bad += check_conv(rng, {1, 33, 17, 19, 19, 1, 1, {}, false, true, Act::none, false});
    bad += check_conv(rng, {1, 16, 24, 60, 60, 1, 1, {2, 2, 0, 0, 1, 1, 1}, true, true, Act::relu, false});
    EXPECT_EQ(bad, 0);
  });
}

TEST(F32Conv, RejectsBadArguments) {
  std::mt19937 rng(1);
  const Tensor w = uniform({4, 2, 3, 3}, rng);
  EXPECT_THROW(qk::F32Conv2d(w, uniform({3}, rng), {}, Act::none, 8, 8), Error);        // bias length
  EXPECT_THROW(qk::F32Conv2d(w, Tensor(), {1, 1, 0, 0, 1, 1, 3}, Act::none, 8, 8), Error);  // 4 % 3
  EXPECT_THROW(qk::F32Conv2d(w.to(DType::f64), Tensor(), {}, Act::none, 8, 8), Error);
  const qk::F32Conv2d k(w, Tensor(), {}, Act::none, 8, 8);
  EXPECT_THROW(k.run(uniform({1, 3, 8, 8}, rng)), Error);                   // channels
  EXPECT_THROW(k.run(uniform({1, 2, 2, 2}, rng)), Error);                   // smaller than the kernel
  EXPECT_THROW(k.run(uniform({1, 2, 8, 8}, rng), uniform({1, 4, 5, 6}, rng)), Error);  // residual shape
  EXPECT_THROW(qk::F32Linear(uniform({4}, rng), Tensor(), Act::none), Error);
  const qk::F32Linear l(uniform({4, 6}, rng), Tensor(), Act::relu);
  EXPECT_THROW(l.run(uniform({2, 5}, rng)), Error);
  EXPECT_THROW(qk::fused_act_from_name("gelu"), Error);
}

}  // namespace
}  // namespace finch::test
