// kernels::QDynamicLinear against reference::dq_linear, bit for bit (f32 outputs compared as
// bits), on every Highway target: K around 4 and the 64-byte row padding, OC around the 64-channel
// blocks, batched rows, per-channel scales, bias or none, each fused activation, inputs whose
// range is one-sided, tiny or huge, and 1 and 2 threads; the same for the one-row run_row and
// the per-row run_rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tests/hwy_targets.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_dq_linear.h"
#include "kernels/reference.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::kernels::QDynamicLinear;

Tensor random_f32(std::mt19937& rng, const Shape& s, int mode) {
  std::vector<float> v(size_t(shape_numel(s)));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const float scale = mode == 1 ? 1e-4f : mode == 2 ? 300.0f : 1.0f;
  for (float& x : v) {
    x = nd(rng) * scale;
    if (mode == 3) x = std::abs(x);  // one-sided (ReLU outputs): zero point at the code range's edge
  }
  return from_vector(v, s);
}

TEST(QDynamicLinear, MatchesReferenceEveryTarget) {
  std::mt19937 rng(11);
  int cases = 0;
  for_each_target([&](uint32_t) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int it = 0; it < 40; ++it) {
        const int64_t K = std::initializer_list<int64_t>{1, 3, 4, 5, 63, 64, 65, 130, 300}.begin()[rng() % 9];
        const int64_t OC = std::initializer_list<int64_t>{1, 7, 10, 63, 64, 65, 130}.begin()[rng() % 7];
        const int64_t rows = std::initializer_list<int64_t>{1, 2, 5}.begin()[rng() % 3];
        const int mode = int(rng() % 4);
        const Tensor x = random_f32(rng, {rows, K}, mode);
        const Tensor w = random_code_tensor(rng, {OC, K}, DType::i8, int(rng() % 4));
        std::vector<float> sw(static_cast<size_t>(OC));
        for (float& s : sw) s = std::exp2(std::uniform_real_distribution<float>(-12, -2)(rng));
        Tensor bias;
        if (rng() % 3) bias = random_f32(rng, {OC}, 0);
        const char* act = std::initializer_list<const char*>{"none", "relu", "relu6"}.begin()[rng() % 3];
        const Tensor want = qr::dq_linear(x, w, sw, bias, act);
        const Tensor got = QDynamicLinear(w, sw, bias, act).run(x);
        ASSERT_EQ(got.shape(), want.shape());
        const auto* g = got.data<float>();
        const auto* r = want.contiguous().data<float>();
        for (int64_t i = 0; i < want.numel(); ++i)
          ASSERT_EQ(bits(g[i]), bits(r[i])) << "K " << K << " OC " << OC << " rows " << rows << " mode " << mode
                                            << " act " << act << " element " << i;
        ++cases;
      }
    }
  });
  set_num_threads(0);
  EXPECT_EQ(cases, 80 * int(::finch::test::hwy_targets_to_test().size()));  // every target ran its cases
}

// run_row (the raw-pointer entry of the recurrent layers) on one row, one Scratch shared by
// linears of different K and OC in turn (as an LSTM's two products share it), each output the
// reference's bits.
TEST(QDynamicLinear, RunRowMatchesReferenceEveryTarget) {
  std::mt19937 rng(12);
  int cases = 0;
  for_each_target([&](uint32_t) {
    QDynamicLinear::Scratch scratch;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int it = 0; it < 40; ++it) {
        const int64_t K = std::initializer_list<int64_t>{1, 5, 40, 63, 64, 65, 130, 300}.begin()[rng() % 8];
        const int64_t OC = std::initializer_list<int64_t>{1, 7, 17, 64, 65, 130}.begin()[rng() % 6];
        const int mode = int(rng() % 4);
        const Tensor x = random_f32(rng, {1, K}, mode);
        const Tensor w = random_code_tensor(rng, {OC, K}, DType::i8, int(rng() % 4));
        std::vector<float> sw(static_cast<size_t>(OC));
        for (float& s : sw) s = std::exp2(std::uniform_real_distribution<float>(-12, -2)(rng));
        Tensor bias;
        if (rng() % 3) bias = random_f32(rng, {OC}, 0);
        const char* act = std::initializer_list<const char*>{"none", "relu", "relu6"}.begin()[rng() % 3];
        const Tensor want = qr::dq_linear(x, w, sw, bias, act).contiguous();
        std::vector<float> got(static_cast<size_t>(OC), -1.0f);
        QDynamicLinear(w, sw, bias, act).run_row(x.data<float>(), got.data(), scratch);
        for (int64_t i = 0; i < OC; ++i)
          ASSERT_EQ(bits(got[size_t(i)]), bits(want.data<float>()[i]))
              << "K " << K << " OC " << OC << " mode " << mode << " act " << act << " element " << i;
        ++cases;
      }
    }
  });
  set_num_threads(0);
  EXPECT_EQ(cases, 80 * int(::finch::test::hwy_targets_to_test().size()));
}

// run_rows (dq_linear with per_row): each row quantized from its own range. Rows of very
// different magnitudes (as a transformer's tokens) in one input; every output is the bits of
// reference::dq_linear_rows, whose row r is dq_linear of that row alone.
TEST(QDynamicLinear, RunRowsMatchesReferenceEveryTarget) {
  std::mt19937 rng(13);
  int cases = 0;
  for_each_target([&](uint32_t) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int it = 0; it < 30; ++it) {
        const int64_t K = std::initializer_list<int64_t>{1, 4, 5, 63, 64, 65, 130}.begin()[rng() % 7];
        const int64_t OC = std::initializer_list<int64_t>{1, 7, 64, 65, 130}.begin()[rng() % 5];
        const int64_t rows = std::initializer_list<int64_t>{1, 2, 3, 9, 21}.begin()[rng() % 5];
        std::vector<Tensor> parts;
        for (int64_t r = 0; r < rows; ++r) parts.push_back(random_f32(rng, {1, K}, int(rng() % 4)));
        std::vector<float> xv;
        for (const Tensor& t : parts) {
          const auto v = t.to_vector<float>();
          xv.insert(xv.end(), v.begin(), v.end());
        }
        const Tensor x = from_vector(xv, {rows, K});
        const Tensor w = random_code_tensor(rng, {OC, K}, DType::i8, int(rng() % 4));
        std::vector<float> sw(static_cast<size_t>(OC));
        for (float& s : sw) s = std::exp2(std::uniform_real_distribution<float>(-12, -2)(rng));
        Tensor bias;
        if (rng() % 3) bias = random_f32(rng, {OC}, 0);
        const char* act = std::initializer_list<const char*>{"none", "relu", "relu6"}.begin()[rng() % 3];
        const Tensor want = qr::dq_linear_rows(x, w, sw, bias, act).contiguous();
        const Tensor got = QDynamicLinear(w, sw, bias, act).run_rows(x);
        ASSERT_EQ(got.shape(), want.shape());
        for (int64_t i = 0; i < want.numel(); ++i)
          ASSERT_EQ(bits(got.data<float>()[i]), bits(want.data<float>()[i]))
              << "K " << K << " OC " << OC << " rows " << rows << " act " << act << " element " << i;
        // The reference's definition: row r alone.
        const int64_t r = int64_t(rng() % uint64_t(rows));
        const Tensor one = qr::dq_linear(parts[size_t(r)], w, sw, bias, act).contiguous();
        for (int64_t i = 0; i < OC; ++i) ASSERT_EQ(bits(one.data<float>()[i]), bits(want.data<float>()[r * OC + i]));
        ++cases;
      }
    }
  });
  set_num_threads(0);
  EXPECT_EQ(cases, 60 * int(::finch::test::hwy_targets_to_test().size()));
  // A row of small values next to a row of large ones keeps its precision per row, not per tensor.
  std::mt19937 r2(1);
  const Tensor w = random_code_tensor(r2, {16, 32}, DType::i8, 0);
  const std::vector<float> sw(16, 0.01f);
  std::vector<float> xv(64);
  for (int i = 0; i < 32; ++i) xv[size_t(i)] = 1e-3f * float(i % 7 - 3), xv[size_t(32 + i)] = 100.0f * float(i % 5 - 2);
  const Tensor x = from_vector(xv, {2, 32});
  const auto exact = [&](int64_t oc) {
    double a = 0;
    for (int k = 0; k < 32; ++k) a += double(xv[size_t(k)]) * double(w.data<int8_t>()[oc * 32 + k]) * 0.01;
    return a;
  };
  const Tensor per_row = QDynamicLinear(w, sw, Tensor(), "none").run_rows(x);
  const Tensor per_tensor = QDynamicLinear(w, sw, Tensor(), "none").run(x);
  double err_row = 0, err_tensor = 0;
  for (int64_t oc = 0; oc < 16; ++oc) {
    err_row = std::max(err_row, std::abs(per_row.data<float>()[oc] - exact(oc)));
    err_tensor = std::max(err_tensor, std::abs(per_tensor.data<float>()[oc] - exact(oc)));
  }
  EXPECT_LT(err_row * 50, err_tensor) << "per-row " << err_row << " per-tensor " << err_tensor;
  Tensor bad = x.clone();
  bad.data<float>()[40] = INFINITY;
  EXPECT_THROW(QDynamicLinear(w, sw, Tensor(), "none").run_rows(bad), Error);
}

// A non-finite value anywhere (vector body or scalar tail of the min/max scan) is an error on
// every target, through run and run_row.
TEST(QDynamicLinear, RejectsNonFiniteAnywhereEveryTarget) {
  std::mt19937 rng(5);
  const Tensor w = random_code_tensor(rng, {3, 41}, DType::i8, 0);
  int cases = 0;
  for_each_target([&](uint32_t) {
    const QDynamicLinear lin(w, {1, 1, 1}, Tensor(), "none");
    QDynamicLinear::Scratch scratch;
    std::vector<float> y(3);
    for (int64_t at : {0, 7, 17, 33, 40})
      for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
        Tensor x = random_f32(rng, {1, 41}, 0);
        x.data<float>()[at] = bad;
        EXPECT_THROW(lin.run(x), Error) << at;
        EXPECT_THROW(lin.run_row(x.data<float>(), y.data(), scratch), Error) << at;
        ++cases;
      }
  });
  EXPECT_EQ(cases, 15 * int(::finch::test::hwy_targets_to_test().size()));
}

TEST(QDynamicLinear, RejectsWhatTheReferenceRejects) {
  std::mt19937 rng(3);
  const Tensor w = random_code_tensor(rng, {4, 8}, DType::i8, 0);
  EXPECT_THROW(QDynamicLinear(w, {1.0f, 1.0f}, Tensor(), "none"), Error);         // scales for 2 of 4 channels
  EXPECT_THROW(QDynamicLinear(w, {1, 1, 1, 1}, Tensor(), "gelu"), Error);          // unknown activation
  const QDynamicLinear lin(w, {1, 1, 1, 1}, Tensor(), "none");
  EXPECT_THROW(lin.run(random_f32(rng, {2, 7}, 0)), Error);                        // K 7, expected 8
  Tensor bad = random_f32(rng, {1, 8}, 0);
  bad.data<float>()[3] = std::nanf("");
  EXPECT_THROW(lin.run(bad), Error);                                                 // not finite
  QDynamicLinear::Scratch scratch;
  std::vector<float> y(4);
  EXPECT_THROW(lin.run_row(bad.data<float>(), y.data(), scratch), Error);            // not finite, row entry
}

}  // namespace
}  // namespace finch::test
