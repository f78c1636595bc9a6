// Embedding gather / bucketed scatter-add and dropout masks: vs plain loops, repeated indices,
// padding_idx, i32 indices, errors, and determinism across thread counts.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/dropout.h"
#include "ops/embedding.h"

namespace finch {
namespace {

Tensor rnd(const Shape& s, uint64_t seed, DType dt) {
  Generator g(seed);
  return randn(s, g, DType::f64).to(dt);
}

TEST(Embedding, GathersRowsForAnyIndexShapeAndDtype) {
  for (DType idt : {DType::i64, DType::i32})
    for (DType dt : {DType::f32, DType::f64}) {
      const Tensor w = rnd({11, 5}, 1, dt);
      Generator g(2);
      const Tensor idx = randint(0, 11, {3, 4}, g, idt);
      const Tensor y = ops::embedding(idx, w);
      ASSERT_EQ(y.shape(), (Shape{3, 4, 5}));
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j)
          for (int64_t e = 0; e < 5; ++e)
            ASSERT_EQ(y.get({i, j, e}), w.get({int64_t(idx.get({i, j})), e}));
    }
  // 0-d index → [E]; a strided table works too.
  const Tensor wt = rnd({5, 7}, 3, DType::f32).t();  // [7, 5] non-contiguous
  const Tensor y0 = ops::embedding(scalar_tensor(4, DType::i64), wt);
  ASSERT_EQ(y0.shape(), (Shape{5}));
  for (int64_t e = 0; e < 5; ++e) EXPECT_EQ(y0.get({e}), wt.get({4, e}));
}

TEST(Embedding, OutOfRangeIndexNamesIndexAndTableSize) {
  const Tensor w = rnd({10, 3}, 1, DType::f32);
  for (int64_t bad : {10, -1, 1000}) {
    try {
      ops::embedding(from_vector<int64_t>({1, bad, 2}, {3}), w);
      FAIL() << "expected an error for index " << bad;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("index " + std::to_string(bad)), std::string::npos) << m;
      EXPECT_NE(m.find("10 embeddings"), std::string::npos) << m;
    }
  }
  EXPECT_THROW(ops::embedding(from_vector<float>({1.f}, {1}), w), Error);
  EXPECT_THROW(ops::embedding(from_vector<int64_t>({1}, {1}), rnd({10}, 1, DType::f32)), Error);
}

TEST(Embedding, BackwardMatchesSequentialScatterAdd) {
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t V : {1, 2, 7, 64})
      for (int64_t E : {1, 3, 8, 17})
        for (int64_t pad : {int64_t(-1), int64_t(0), V - 1}) {
          Generator g(V * 100 + E);
          const Tensor idx = randint(0, V, {4, 9}, g);  // many repeats for small V
          const Tensor dy = rnd({4, 9, E}, 5, dt);
          const Tensor dw = ops::embedding_backward(dy, idx, V, pad);
          const Tensor ref = ops::embedding_backward_reference(dy, idx, V, pad);
          ASSERT_EQ(dw.shape(), (Shape{V, E}));
          const auto a = dw.to_vector<double>(), b = ref.to_vector<double>();
          if (dt == DType::f64) {
            EXPECT_EQ(a, b);  // same summation order as the reference: bit-identical
          } else {
            for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5 * (1 + std::fabs(b[i])));
          }
          if (pad >= 0) {
            for (int64_t e = 0; e < E; ++e) EXPECT_EQ(dw.get({pad, e}), 0.0);
          }
        }
}

TEST(Embedding, BackwardIsDeterministicAcrossThreadCounts) {
  Generator g(9);
  const Tensor idx = randint(0, 50, {2000}, g);
  const Tensor dy = rnd({2000, 33}, 4, DType::f32);
  const int prev = get_num_threads();
  set_num_threads(1);
  const auto a = ops::embedding_backward(dy, idx, 50).to_vector<float>();
  set_num_threads(3);
  const auto b = ops::embedding_backward(dy, idx, 50).to_vector<float>();
  set_num_threads(prev);
  EXPECT_EQ(a, b);
}

TEST(Dropout, MaskIsBernoulliScaledAndSeedDeterministic) {
  for (DType dt : {DType::f32, DType::f64})
    for (double p : {0.0, 0.1, 0.5, 0.9}) {
      const Tensor x = rnd({70001}, 1, dt);  // several mask blocks plus a ragged tail
      Generator g1(42), g2(42);
      const auto r = ops::dropout(x, p, g1);
      const Tensor mref = ops::dropout_mask_reference(x.shape(), p, g2);
      const auto m = r.mask.to_vector<bool>();
      EXPECT_EQ(m, mref.to_vector<bool>());
      const auto xv = x.to_vector<double>(), yv = r.y.to_vector<double>();
      int64_t kept = 0;
      for (size_t i = 0; i < xv.size(); ++i) {
        kept += m[i];
        const double want = m[i] ? xv[i] / (1 - p) : 0.0;
        ASSERT_NEAR(yv[i], want, 1e-6 * (1 + std::fabs(want)));
      }
      const double frac = double(kept) / double(xv.size());
      EXPECT_NEAR(frac, 1 - p, 0.01) << "p " << p;
      // The backward applies the same mask and scale.
      const auto dx = ops::dropout_backward(ones(x.shape(), dt), r.mask, p).to_vector<double>();
      for (size_t i = 0; i < dx.size(); ++i)
        ASSERT_NEAR(dx[i], m[i] ? 1 / (1 - p) : 0.0, 1e-6);
    }
}

TEST(Dropout, IndependentOfThreadCountAndAdvancesTheGenerator) {
  const Tensor x = rnd({50000}, 2, DType::f32);
  const int prev = get_num_threads();
  set_num_threads(1);
  Generator g1(7);
  const auto a = ops::dropout(x, 0.3, g1).mask.to_vector<bool>();
  const auto a2 = ops::dropout(x, 0.3, g1).mask.to_vector<bool>();
  set_num_threads(3);
  Generator g2(7);
  const auto b = ops::dropout(x, 0.3, g2).mask.to_vector<bool>();
  set_num_threads(prev);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, a2);  // a second call draws a fresh mask
  EXPECT_THROW(ops::dropout(x, 1.5, g1), Error);
  EXPECT_THROW(ops::dropout(x, -0.1, g1), Error);
  // p = 1 drops everything.
  for (float v : ops::dropout(x, 1.0, g1).y.to_vector<float>()) ASSERT_EQ(v, 0.f);
}

}  // namespace
}  // namespace finch
