// qs8_add, qs8_relu, qs8_relu6 and qs8_max_pool2d (kernels/qs8_eltwise.h) against their
// references, exactly, on every compiled Highway target and with 1 and 2 threads: lengths around
// every vector width, i8/u8 mixes, extreme zero points and clamps, scales chosen so that many
// sums land exactly on .5 (where an FMA or a reciprocal would move the code), random scales,
// strided inputs; pools with every small kernel, stride, padding and ceil_mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

#include "tests/hwy_targets.h"
#include "framework/parallel.h"
#include "hwy/targets.h"
#include "kernels/qs8_eltwise.h"
#include "kernels/reference.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
namespace qk = quant::kernels;

const std::vector<int64_t> kLengths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000};

// Runs body() on every compiled target with 1 and 2 threads, then restores both.
template <class Body>
void every_target_and_thread_count(const Body& body) {
  const int before = get_num_threads();
  for (uint32_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      SCOPED_TRACE(threads);
      body();
      if (::testing::Test::HasFailure()) break;
    }
    if (::testing::Test::HasFailure()) break;
  }
  set_num_threads(before);
  hwy::SetSupportedTargetsForTest(0);
}

DType random_dtype(std::mt19937& rng) { return rng() % 2 ? DType::u8 : DType::i8; }
int32_t random_zero(std::mt19937& rng, DType t) {
  return rng() % 3 == 0 ? (rng() % 2 ? code_lo(t) : code_hi(t)) : code_lo(t) + int32_t(rng() % 256);
}

// Scales: half the cases tie-heavy (powers of two and s_out = 2·s, so (a' + b')/2 hits .5 often),
// the rest random f32 values where an FMA or a reciprocal would round differently.
void random_scales(std::mt19937& rng, float& sa, float& sb, float& so) {
  std::uniform_real_distribution<float> u(0.001f, 0.2f);
  switch (rng() % 5) {
    case 0: sa = sb = 0.5f, so = 1.0f; break;
    case 1: sa = 0.25f, sb = 0.75f, so = 0.5f; break;  // (a + 3b)/2: every odd sum is a tie
    case 2: sa = sb = 0.375f, so = 0.75f; break;      // (a + b)/2 again, but 1/s_out is inexact
    default: sa = u(rng), sb = u(rng), so = u(rng);  // cases 3..
  }
}

TEST(Qs8Eltwise, AddEqualsReferenceEveryTarget) {
  int checked = 0, ties = 0;
  every_target_and_thread_count([&] {
    std::mt19937 rng(99);
    for (int i = 0; i < 250; ++i) {
      const int64_t n = i % 25 == 0 ? 40000 + int64_t(rng() % 7) : kLengths[rng() % kLengths.size()];
      const DType ta = random_dtype(rng), tb = random_dtype(rng), ty = random_dtype(rng);
      const int32_t za = random_zero(rng, ta), zb = random_zero(rng, tb), zy = random_zero(rng, ty);
      int32_t qmin = code_lo(ty), qmax = code_hi(ty);
      if (rng() % 3 == 0) qmin = std::max(qmin, zy), qmax = qmin + int32_t(rng() % (code_hi(ty) - qmin + 1));
      float sa, sb, so;
      random_scales(rng, sa, sb, so);
      Tensor a = codes(random_codes(rng, n, code_lo(ta), code_hi(ta)), {n}, ta);
      Tensor b = codes(random_codes(rng, n, code_lo(tb), code_hi(tb)), {n}, tb);
      if (n > 1 && rng() % 5 == 0) a = strided_copy(a);
      if (n > 1 && rng() % 5 == 0) b = strided_copy(b);
      const Tensor ref = qr::qadd(a, sa, za, b, sb, zb, so, zy, qmin, qmax, ty);
      const Tensor y = qk::qs8_add(a, sa, za, b, sb, zb, so, zy, qmin, qmax, ty);
      ASSERT_EQ(y.dtype(), ty);
      ASSERT_EQ(values(y), values(ref)) << "n " << n << " scales " << sa << " " << sb << " " << so << " z " << za
                                        << " " << zb << " " << zy << " [" << qmin << ", " << qmax << "]";
      ++checked;
      if (sa == 0.25f) ++ties;
    }
  });
  EXPECT_GT(checked, 80 * int64_t(::finch::test::hwy_targets_to_test().size()));  // every target ran its cases
  EXPECT_GT(ties, 50);
}

TEST(Qs8Eltwise, AddTiesRoundHalfToEven) {
  // (a + b)/2 with codes 1 and 0: 0.5 -> 0, 1.5 -> 2 (half to even), -0.5 -> -0: a kernel that
  // rounded half up or multiplied by a reciprocal would fail here.
  const Tensor a = codes({1, 3, -1, -3, 5, 0}, {2, 3}), b = codes({0, 0, 0, 0, 0, 0}, {2, 3});
  every_target_and_thread_count([&] {
    EXPECT_EQ(values(qk::qs8_add(a, 1.0f, 0, b, 1.0f, 0, 2.0f, 0, -128, 127, DType::i8)),
              (std::vector<int32_t>{0, 2, 0, -2, 2, 0}));
  });
}

// Inputs where a fused multiply-add or a multiply by 1/s_out would give another code than the
// reference: found by scanning every pair of codes for random f32 scales (std::fma and the
// reciprocal computed explicitly here), then run through qs8_add. Random inputs almost never
// hit these, so without this test a contracted or reciprocal kernel could pass.
TEST(Qs8Eltwise, AddMatchesWhereFmaOrReciprocalWouldNot) {
  std::mt19937 rng(321);
  std::uniform_real_distribution<float> u(0.001f, 0.2f);
  struct Trap {
    float sa, sb, so;
    std::vector<int32_t> a, b;
  };
  std::vector<Trap> traps;
  int64_t found = 0;
  for (int t = 0; t < 400; ++t) {
    Trap tr{u(rng), u(rng), u(rng), {}, {}};
    for (int32_t a = -128; a <= 127; ++a)
      for (int32_t b = -128; b <= 127; ++b) {
        const float va = float(a) * tr.sa, vb = float(b) * tr.sb;
        volatile float sum = va + vb;  // volatile: no contraction of the test's own rule
        const float plain = std::nearbyint(sum / tr.so);
        const float fused = std::nearbyint(std::fma(float(a), tr.sa, vb) / tr.so);
        const float recip = std::nearbyint(sum * (1.0f / tr.so));
        if ((plain != fused || plain != recip) && std::fabs(plain) < 100) {
          tr.a.push_back(a);
          tr.b.push_back(b);
        }
      }
    found += int64_t(tr.a.size());
    if (!tr.a.empty()) traps.push_back(tr);
  }
  ASSERT_GT(found, 20) << "the scan should find inputs that tell the rules apart";
  every_target_and_thread_count([&] {
    for (const Trap& tr : traps) {
      const int64_t n = int64_t(tr.a.size());
      const Tensor a = codes(tr.a, {n}), b = codes(tr.b, {n});
      ASSERT_EQ(values(qk::qs8_add(a, tr.sa, 0, b, tr.sb, 0, tr.so, 0, -128, 127, DType::i8)),
                values(qr::qadd(a, tr.sa, 0, b, tr.sb, 0, tr.so, 0, -128, 127, DType::i8)))
          << "scales " << tr.sa << " " << tr.sb << " " << tr.so;
    }
  });
}

// Every pair of codes (all 65536, i8 and u8 operands) through qs8_add against the reference, for
// scale triples drawn log-uniformly from 2^-40 to 2^20 — quotients from subnormal to overflow, far
// outside what a calibrated model uses — plus triples whose quotients sit on a fine grid or near
// ties, on every target: a kernel that replaced the f32 division (by a reciprocal, or an f64
// product) must give the same codes everywhere, not only on random inputs.
TEST(Qs8Eltwise, AddEveryCodePairEqualsReferenceAtExtremeScales) {
  std::vector<int32_t> av, bv;
  for (int32_t a = 0; a < 256; ++a)
    for (int32_t b = 0; b < 256; ++b) av.push_back(a - 128), bv.push_back(b - 128);
  const int64_t n = int64_t(av.size());
  std::mt19937 rng(2026);
  std::uniform_real_distribution<float> e(-40.0f, 20.0f);
  struct Case {
    float sa, sb, so;
    int32_t za, zb, zy;
    DType ta, ty;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 24; ++i) {
    const DType ta = random_dtype(rng), ty = random_dtype(rng);
    Case c{std::exp2(e(rng)), std::exp2(e(rng)), std::exp2(e(rng)), random_zero(rng, ta), random_zero(rng, DType::i8),
           random_zero(rng, ty), ta, ty};
    if (i % 3 == 1) c.so = c.sa * std::exp2(float(int(rng() % 16)) - 8.0f);  // quotients on a fine grid
    if (i % 3 == 2) c.sb = c.sa, c.so = c.sa * 1.5f;                        // (a + b)/1.5
    cases.push_back(c);
  }
  every_target_and_thread_count([&] {
    for (const Case& c : cases) {
      std::vector<int32_t> ac = av;
      if (c.ta == DType::u8)
        for (int32_t& v : ac) v += 128;
      const Tensor a = codes(ac, {n}, c.ta), b = codes(bv, {n}, DType::i8);
      const int32_t qmin = code_lo(c.ty), qmax = code_hi(c.ty);
      ASSERT_EQ(values(qk::qs8_add(a, c.sa, c.za, b, c.sb, c.zb, c.so, c.zy, qmin, qmax, c.ty)),
                values(qr::qadd(a, c.sa, c.za, b, c.sb, c.zb, c.so, c.zy, qmin, qmax, c.ty)))
          << "scales " << c.sa << " " << c.sb << " " << c.so;
    }
  });
}

TEST(Qs8Eltwise, ReluAndRelu6EqualReferenceEveryTarget) {
  every_target_and_thread_count([&] {
    std::mt19937 rng(5);
    for (int i = 0; i < 200; ++i) {
      const int64_t n = i % 20 == 0 ? 50000 : kLengths[rng() % kLengths.size()];
      const DType t = random_dtype(rng);
      const int32_t z = random_zero(rng, t);
      int32_t qmin = code_lo(t), qmax = code_hi(t);
      if (rng() % 2) qmin = code_lo(t) + int32_t(rng() % 256), qmax = qmin + int32_t(rng() % (code_hi(t) - qmin + 1));
      Tensor x = codes(random_codes(rng, n, code_lo(t), code_hi(t)), {n}, t);
      if (n > 1 && rng() % 5 == 0) x = strided_copy(x);
      ASSERT_EQ(values(qk::qs8_relu(x, z, qmin, qmax)), values(qr::qrelu(x, z, qmin, qmax)))
          << "z " << z << " [" << qmin << ", " << qmax << "] n " << n;
      const float s = std::uniform_real_distribution<float>(0.001f, 0.1f)(rng);
      ASSERT_EQ(values(qk::qs8_relu6(x, s, z, qmin, qmax)), values(qr::qrelu6(x, s, z, qmin, qmax)))
          << "s " << s << " z " << z << " [" << qmin << ", " << qmax << "] n " << n;
    }
  });
}

TEST(Qs8Eltwise, MaxPoolEqualsReferenceEveryTarget) {
  const std::vector<int64_t> sizes = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 65};
  int checked = 0;
  every_target_and_thread_count([&] {
    std::mt19937 rng(21);
    for (int i = 0; i < 300; ++i) {
      ops::Pool2dParams p;
      switch (i % 3) {
        case 0: p.kh = p.kw = 2, p.sh = p.sw = 2; break;
        case 1: p.kh = p.kw = 3, p.sh = p.sw = 1 + int64_t(rng() % 2); break;
        default:
          p.kh = 1 + int64_t(rng() % 5), p.kw = 1 + int64_t(rng() % 5);
          p.sh = 1 + int64_t(rng() % 3), p.sw = 1 + int64_t(rng() % 3);
      }
      p.ph = int64_t(rng() % (p.kh / 2 + 1));
      p.pw = int64_t(rng() % (p.kw / 2 + 1));
      p.ceil_mode = rng() % 3 == 0;
      const int64_t H = sizes[rng() % sizes.size()], W = sizes[rng() % sizes.size()];
      if (ops::pool_out_size(H, p.kh, p.sh, p.ph, p.ceil_mode) < 1 ||
          ops::pool_out_size(W, p.kw, p.sw, p.pw, p.ceil_mode) < 1)
        continue;
      const DType t = random_dtype(rng);
      const bool three_d = rng() % 4 == 0;
      const Shape shape = three_d ? Shape{3, H, W} : Shape{1 + int64_t(rng() % 2), 3, H, W};
      std::vector<int32_t> v = random_codes(rng, shape_numel(shape), code_lo(t), code_hi(t));
      if (rng() % 4 == 0)  // mostly the lowest code: padding must still never win or lose
        for (auto& c : v) c = rng() % 8 ? code_lo(t) : c;
      Tensor x = codes(v, shape, t);
      if (rng() % 5 == 0) x = strided_copy(x);
      const Tensor ref = qr::qmax_pool2d(x, p);
      const Tensor y = qk::qs8_max_pool2d(x, p);
      ASSERT_EQ(y.shape(), ref.shape());
      ASSERT_EQ(values(y), values(ref)) << H << "x" << W << " k" << p.kh << "x" << p.kw << " s" << p.sh << ","
                                        << p.sw << " p" << p.ph << "," << p.pw << " ceil " << p.ceil_mode;
      ++checked;
    }
  });
  EXPECT_GT(checked, 80 * int64_t(::finch::test::hwy_targets_to_test().size()));  // every target ran its cases
}

TEST(Qs8Eltwise, RejectsBadArguments) {
  const Tensor a = codes({1, 2, 3}, {3}), b = codes({1, 2}, {2});
  EXPECT_THROW(qk::qs8_add(a, 1.0f, 0, b, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8), Error);  // shapes
  EXPECT_THROW(qk::qs8_add(a, 0.0f, 0, a, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8), Error);  // scale 0
  EXPECT_THROW(qk::qs8_relu(a, 0, 10, 5), Error);                                             // qmin > qmax
  ops::Pool2dParams p;
  p.kh = p.kw = 2, p.ph = 2;
  EXPECT_THROW(qk::qs8_max_pool2d(codes({1, 2, 3, 4}, {1, 1, 2, 2}), p), Error);  // padding > kernel / 2
}

}  // namespace
}  // namespace finch::test
