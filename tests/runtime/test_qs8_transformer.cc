// The integer softmax, GELU and LayerNorm (kernels/qs8_transformer.h) against the exact
// functions within the bounds docs/bert-integer.md measures, and the int8 attention operator
// against its scalar reference, exactly, on every compiled Highway target at 1 and 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "hwy/targets.h"
#include "kernels/qs8_transformer.h"
#include "tests/hwy_targets.h"

namespace finch::test {
namespace {

using namespace finch::quant;

double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

TEST(IntegerForms, IsqrtIsTheFloorOfTheRoot) {
  std::mt19937_64 rng(3);
  std::vector<uint64_t> vs = {0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 101, (uint64_t(1) << 62) - 1, uint64_t(1) << 62,
                              ~uint64_t(0)};
  for (uint64_t r : {uint64_t(3), uint64_t(65535), uint64_t(4294967295u), uint64_t(1) << 20})
    vs.insert(vs.end(), {r * r - 1, r * r, r * r + 1});
  for (int i = 0; i < 2000; ++i) vs.push_back(rng() >> (rng() % 64));
  for (uint64_t v : vs) {
    const unsigned __int128 y = isqrt_u64(v);
    EXPECT_LE(y * y, v) << v;
    EXPECT_GT((y + 1) * (y + 1), v) << v;
  }
}

TEST(IntegerForms, ExpPolynomialWithinPointFourPercent) {
  for (int64_t t = 0; t >= -20 * 16384; t -= 37) {
    const double want = std::exp(double(t) / 16384.0), got = double(iexp_q14(t)) * kIExpScale;
    EXPECT_LE(std::fabs(got - want), 4e-3 * want + 2e-9) << "t = " << t;
  }
  EXPECT_EQ(iexp_q14(-32 * 16384), 0);
}

TEST(IntegerForms, SoftmaxWithinOneAndAHalfCodesAndMasked) {
  std::mt19937 rng(5);
  for (int64_t n : {1, 2, 3, 7, 64, 384}) {
    for (double s : {2.8e-4, 3e-3, 0.05}) {
      const ISoftmaxParams p = isoftmax_params(float(s));
      std::normal_distribution<double> nd(0, 3);
      std::vector<int32_t> x(static_cast<size_t>(n));
      std::vector<uint8_t> valid(static_cast<size_t>(n)), out(static_cast<size_t>(n));
      for (int rep = 0; rep < 20; ++rep) {
        for (int64_t j = 0; j < n; ++j) x[size_t(j)] = int32_t(std::lround(nd(rng) / s)), valid[size_t(j)] = rng() % 4 != 0;
        valid[size_t(rng() % uint32_t(n))] = 1;
        isoftmax_row(x.data(), valid.data(), n, p, out.data());
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < n; ++j)
          if (valid[size_t(j)]) mx = std::max(mx, x[size_t(j)] * s);
        for (int64_t j = 0; j < n; ++j)
          if (valid[size_t(j)]) z += std::exp(x[size_t(j)] * s - mx);
        for (int64_t j = 0; j < n; ++j) {
          if (!valid[size_t(j)]) {
            EXPECT_EQ(out[size_t(j)], 0);
            continue;
          }
          const double want = std::exp(x[size_t(j)] * s - mx) / z;
          // 1/510 from the u8 output, the rest from the polynomial (measured max 2.8e-3).
          EXPECT_LE(std::fabs(out[size_t(j)] / 255.0 - want), 3.5e-3) << "n " << n << " s " << s;
        }
      }
    }
  }
  // No key attended: uniform weights, as transformers' finite mask gives.
  const std::vector<int32_t> x = {5, -3, 7, 0};
  const std::vector<uint8_t> none(4, 0);
  std::vector<uint8_t> out(4);
  isoftmax_row(x.data(), none.data(), 4, isoftmax_params(0.01f), out.data());
  EXPECT_EQ(out, std::vector<uint8_t>(4, 64));
}

TEST(IntegerForms, SoftmaxKernelEqualsReferenceEveryTarget) {
  std::mt19937 rng(21);
  std::vector<int64_t> lengths;
  for (int64_t n = 1; n <= 70; ++n) lengths.push_back(n);
  lengths.insert(lengths.end(), {127, 128, 129, 383, 384, 385});
  // Realistic scales take the vector path; 900 does not (t(d_max) too big for 32-bit lanes).
  EXPECT_TRUE(isoftmax_params(2.8e-4f).vector_ok);
  EXPECT_FALSE(isoftmax_params(9e5f).vector_ok);
  int64_t checked = 0;
  for (uint32_t target : hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (int64_t n : lengths) {
      for (float s : {2.8e-4f, 3e-3f, 0.05f, 1.0f, 9e5f}) {
        const ISoftmaxParams p = isoftmax_params(s);
        std::vector<int32_t> x(static_cast<size_t>(n));
        std::vector<uint8_t> valid(static_cast<size_t>(n)), want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        const int kind = int(rng() % 4);
        for (int64_t j = 0; j < n; ++j) {
          // Normal scores, exact multiples of ln2's grid (z boundaries), extremes with a range past 2^31.
          const double v = kind == 0 ? std::normal_distribution<double>(0, 4)(rng) / s
                           : kind == 1 ? -double(rng() % 40) * 0.6931471805599453 / s
                                       : double(int32_t(rng()));
          x[size_t(j)] = int32_t(std::clamp(v, -2147483648.0, 2147483647.0));
          valid[size_t(j)] = kind == 3 ? rng() % 3 != 0 : 1;
        }
        const uint8_t* vm = kind == 3 || rng() % 2 ? valid.data() : nullptr;
        reference::isoftmax_row(x.data(), vm, n, p, want.data());
        isoftmax_row(x.data(), vm, n, p, got.data());
        ASSERT_EQ(got, want) << "n " << n << " s " << s << " kind " << kind;
        ++checked;
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_EQ(checked, int64_t(hwy_targets_to_test().size() * lengths.size() * 5));
}

TEST(IntegerForms, GeluWithinTheMeasuredBound) {
  // 16-bit codes: the polynomial's own error (I-BERT's erf fit, measured max 1.8e-2).
  const float s_in = 12.0f / 65535, s_out = 6.17f / 65535;
  const int32_t z_in = 0, z_out = -32768 + int32_t(std::lround(0.17 / s_out));
  const IGeluParams p = igelu_params(s_in, z_in, s_out, z_out, -32768, 32767);
  double worst = 0;
  for (int32_t c = -32768; c <= 32767; ++c) {
    const double x = c * double(s_in);
    worst = std::max(worst, std::fabs((igelu(c, p) - z_out) * double(s_out) - gelu(x)));
  }
  EXPECT_LE(worst, 2.0e-2);
  EXPECT_GT(worst, 1e-3);  // the fit is not exact: a float gelu in its place would be caught
  // The int8 tables equal the functions they tabulate, for i8 and u8 inputs.
  for (bool u8 : {false, true}) {
    const int32_t zi = u8 ? 128 : 0;
    const IGeluParams q = igelu_params(12.0f / 255, zi, 6.17f / 255, -121, -128, 127);
    const std::vector<int8_t> t = igelu_table_i8(q, u8);
    const std::vector<int8_t> f = gelu_table_i8(12.0f / 255, zi, u8, 6.17f / 255, -121, -128, 127);
    for (int i = 0; i < 256; ++i) {
      const int32_t code = u8 ? i : i - 128;
      EXPECT_EQ(t[size_t(i)], igelu(code, q));
      const double x = (code - zi) * double(12.0f / 255);
      EXPECT_LE(std::fabs((f[size_t(i)] + 121) * double(6.17f / 255) - gelu(x)), 0.5 * 6.17 / 255 + 1e-6);
      EXPECT_LE(std::fabs((t[size_t(i)] + 121) * double(6.17f / 255) - gelu(x)), 0.5 * 6.17 / 255 + 2.0e-2);
    }
  }
}

TEST(IntegerForms, LayerNormWithinTwoQ12Steps) {
  std::mt19937 rng(9);
  for (int64_t n : {1, 2, 5, 256, 768, 1023}) {
    for (int32_t amp : {3, 127, 30000}) {
      std::uniform_int_distribution<int32_t> u(-amp, amp);
      std::vector<int32_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
      for (auto& v : x) v = u(rng);
      ilayernorm_row(x.data(), n, ilayernorm_params(0.01f, 1e-12, n), y.data());
      double m = 0, var = 0;
      for (int32_t v : x) m += v;
      m /= double(n);
      for (int32_t v : x) var += (v - m) * (v - m);
      var /= double(n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = var > 0 ? (x[size_t(i)] - m) / std::sqrt(var) : 0.0;
        EXPECT_LE(std::fabs(y[size_t(i)] / 4096.0 - want), 2.5e-4) << "n " << n << " amp " << amp;
      }
    }
  }
  const std::vector<int32_t> flat(8, -7);
  std::vector<int32_t> y(8, 1);
  ilayernorm_row(flat.data(), 8, ilayernorm_params(0.1f, 1e-5, 8), y.data());
  EXPECT_EQ(y, std::vector<int32_t>(8, 0));
}

TEST(IntegerForms, HostileParametersGetOneSentence) {
  EXPECT_THROW(isoftmax_params(0.0f), Error);
  EXPECT_THROW(isoftmax_params(std::nanf("")), Error);
  EXPECT_THROW(igelu_params(0.1f, 0, -1.0f, 0, -128, 127), Error);
  EXPECT_THROW(igelu_params(0.1f, 0, 0.1f, 0, 5, 4), Error);
  EXPECT_THROW(ilayernorm_params(0.1f, 1e-5, 0), Error);
  EXPECT_THROW(ilayernorm_params(0.1f, -1.0, 8), Error);
  QAttentionQuant qu{0.1f, 0.1f, 0.1f, 0.1f};
  const int8_t a[6] = {};
  int8_t o[6];
  EXPECT_THROW(kernels::qs8_attention(a, a, a, nullptr, {1, 2, 3, 2}, qu, o), Error);  // 2 heads, H 3
}

// Float attention of the dequantized codes: the bound of one output is half an output step plus
// the softmax's measured 2.8e-3 per weight times Σ|v|.
TEST(Qs8Attention, ReferenceNearFloatAttention) {
  std::mt19937 rng(11);
  const QAttentionShape sh{2, 19, 16, 2};
  const int64_t HD = 8, n = sh.B * sh.S * sh.H;
  std::vector<int8_t> q(static_cast<size_t>(n)), k(q), v(q), out(q);
  for (auto* t : {&q, &k, &v})
    for (auto& c : *t) c = int8_t(int(rng() % 255) - 127);
  std::vector<uint8_t> mask(static_cast<size_t>(sh.B * sh.S), 1);
  for (int64_t j = 12; j < sh.S; ++j) mask[size_t(sh.S + j)] = 0;  // sample 1: 12 tokens
  const QAttentionQuant qu{0.02f, 0.03f, 0.05f, 0.055f};  // 127·0.055 > 127·0.05: no saturation
  reference::qs8_attention(q.data(), k.data(), v.data(), mask.data(), sh, qu, out.data());
  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.NH; ++h)
      for (int64_t i = 0; i < sh.S; ++i) {
        std::vector<double> w(static_cast<size_t>(sh.S));
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < sh.S; ++j) {
          double s = 0;
          for (int64_t d = 0; d < HD; ++d) s += q[size_t((b * sh.S + i) * sh.H + h * HD + d)] * 0.02 * k[size_t((b * sh.S + j) * sh.H + h * HD + d)] * 0.03;
          w[size_t(j)] = mask[size_t(b * sh.S + j)] ? s / std::sqrt(double(HD)) : -1e300;
          mx = std::max(mx, w[size_t(j)]);
        }
        for (auto& x : w) z += x = std::exp(x - mx);
        for (int64_t d = 0; d < HD; ++d) {
          double want = 0, vabs = 0;
          for (int64_t j = 0; j < sh.S; ++j) {
            const double vv = v[size_t((b * sh.S + j) * sh.H + h * HD + d)] * 0.05;
            want += w[size_t(j)] / z * vv, vabs += std::fabs(vv);
          }
          const double got = out[size_t((b * sh.S + i) * sh.H + h * HD + d)] * double(0.055f);
          EXPECT_LE(std::fabs(got - want), 0.5 * 0.055 + 2.8e-3 * vabs + 1e-6) << b << " " << h << " " << i << " " << d;
        }
      }
}

TEST(Qs8Attention, KernelEqualsReferenceEveryTargetAndThreadCount) {
  std::mt19937 rng(13);
  struct Case {
    int64_t B, S, H, NH;
  };
  std::vector<Case> cases = {{1, 1, 1, 1},   {1, 2, 4, 2},    {2, 3, 6, 3},     {1, 17, 64, 1}, {1, 63, 128, 2},
                             {1, 64, 128, 2}, {2, 65, 130, 2}, {1, 130, 72, 4}, {1, 7, 260, 2}};
  const int before = get_num_threads();
  int64_t checked = 0;
  for (const Case& c : cases) {
    const QAttentionShape sh{c.B, c.S, c.H, c.NH};
    const int64_t n = c.B * c.S * c.H;
    std::vector<int8_t> q(static_cast<size_t>(n)), k(q), v(q), want(q), got(q);
    for (auto* t : {&q, &k, &v})
      for (auto& x : *t) x = int8_t(rng() % 7 == 0 ? (rng() % 2 ? 127 : -128) : int(rng() % 256) - 128);
    std::vector<uint8_t> mask(static_cast<size_t>(c.B * c.S));
    for (auto& m : mask) m = rng() % 5 != 0;
    const bool use_mask = rng() % 3 != 0;
    const QAttentionQuant qu{0.01f + float(rng() % 100) * 1e-3f, 0.02f, 0.01f + float(rng() % 50) * 1e-3f,
                             0.005f + float(rng() % 30) * 1e-3f, int32_t(rng() % 11) - 5, -128, 127};
    reference::qs8_attention(q.data(), k.data(), v.data(), use_mask ? mask.data() : nullptr, sh, qu, want.data());
    for (uint32_t target : hwy_targets_to_test()) {
      hwy::SetSupportedTargetsForTest(target);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        std::fill(got.begin(), got.end(), int8_t(99));
        kernels::qs8_attention(q.data(), k.data(), v.data(), use_mask ? mask.data() : nullptr, sh, qu, got.data());
        ASSERT_EQ(got, want) << hwy::TargetName(target) << ", " << threads << " threads, B " << c.B << " S " << c.S
                             << " H " << c.H << " heads " << c.NH;
        ++checked;
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  set_num_threads(before);
  EXPECT_EQ(checked, int64_t(cases.size() * hwy_targets_to_test().size() * 2));
}

}  // namespace
}  // namespace finch::test
