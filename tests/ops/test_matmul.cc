// matmul (1-D/2-D/batched/broadcast) and linear vs their references, forward and backward.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/random.h"
#include "ops/matmul.h"
#include "tests/golden/golden.h"

namespace finch::ops {
namespace {

// One tolerance used as both atol and rtol.
void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  test::expect_close(got, want, tol, tol, what);
}

// dA and dB by the definition: dA = Σ over the broadcast batch of dY·Bᵀ, reduced to A's shape,
// computed with matmul_reference on explicit transposes and summed with plain loops.
void check_matmul(const Shape& sa, const Shape& sb, DType dt, uint64_t seed, bool strided = false) {
  SCOPED_TRACE(shape_str(sa) + " @ " + shape_str(sb));
  Generator gen(seed);
  Tensor a = randn(sa, gen, dt), b = randn(sb, gen, dt);
  if (strided && a.dim() >= 2) a = randn([&] { Shape s = sa; std::swap(s[s.size() - 1], s[s.size() - 2]); return s; }(), gen, dt).transpose(-1, -2);
  const double tol = dt == DType::f32 ? 1e-4 : 1e-11;
  const Tensor y = matmul(a, b);
  expect_close(y, matmul_reference(a, b), tol, "forward");
  const Tensor dy = randn(y.shape(), gen, dt);
  const MatmulGrads g = matmul_backward(dy, a, b, true, true);
  ASSERT_EQ(g.da.shape(), a.shape());
  ASSERT_EQ(g.db.shape(), b.shape());
  // Directional check: <dA, Ea> + <dB, Eb> = d/dt <dy, (a + t Ea)(b + t Eb)> at t = 0, which is
  // <dy, Ea·b + a·Eb> — exact for a bilinear map, so compare with the reference products.
  const Tensor ea = randn(sa, gen, dt), eb = randn(sb, gen, dt);
  const auto lhs_a = g.da.to_vector<double>(), va = ea.to_vector<double>();
  const auto lhs_b = g.db.to_vector<double>(), vb = eb.to_vector<double>();
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < va.size(); ++i) lhs += lhs_a[i] * va[i];
  for (size_t i = 0; i < vb.size(); ++i) lhs += lhs_b[i] * vb[i];
  const auto t1 = matmul_reference(ea, b).to_vector<double>(), t2 = matmul_reference(a, eb).to_vector<double>();
  const auto d = dy.to_vector<double>();
  for (size_t i = 0; i < d.size(); ++i) rhs += d[i] * (t1[i] + t2[i]);
  EXPECT_NEAR(lhs, rhs, tol * 100 * (1 + std::fabs(rhs)));
}

TEST(Matmul, Shapes) {
  uint64_t s = 1;
  for (DType dt : {DType::f32, DType::f64}) {
    check_matmul({5}, {5}, dt, s++);
    check_matmul({3, 4}, {4, 5}, dt, s++);
    check_matmul({4}, {4, 6}, dt, s++);
    check_matmul({3, 4}, {4}, dt, s++);
    check_matmul({2, 3, 4}, {4, 5}, dt, s++);
    check_matmul({2, 3, 4}, {4}, dt, s++);
    check_matmul({4}, {2, 4, 3}, dt, s++);
    check_matmul({3, 4}, {2, 4, 5}, dt, s++);
    check_matmul({2, 1, 3, 4}, {5, 4, 6}, dt, s++);
    check_matmul({7, 3, 4}, {7, 4, 2}, dt, s++);
    check_matmul({1, 9, 17}, {3, 17, 15}, dt, s++);
    check_matmul({2, 3, 4}, {4, 5}, dt, s++, true);
    check_matmul({3, 5, 4}, {3, 4, 2}, dt, s++, true);
  }
  for (int64_t m : {1, 2, 7, 8, 9, 16, 17, 33})
    for (int64_t k : {1, 3, 31, 64})
      check_matmul({m, k}, {k, m + 1}, DType::f32, s++);
}

TEST(Matmul, RejectsBadShapes) {
  EXPECT_THROW(matmul(zeros({3, 4}), zeros({5, 2})), Error);
  EXPECT_THROW(matmul(zeros({2, 3, 4}), zeros({3, 4, 2})), Error);
  EXPECT_THROW(matmul(scalar_tensor(1.0), zeros({3})), Error);
  EXPECT_THROW(matmul(zeros({3}), zeros({3}, DType::f64)), Error);
}

void check_linear(const Shape& xs, int64_t out, bool bias, DType dt, uint64_t seed, bool strided) {
  SCOPED_TRACE(shape_str(xs) + " -> " + std::to_string(out));
  Generator gen(seed);
  const int64_t in = xs.back();
  Tensor x = randn(xs, gen, dt);
  Tensor w = strided ? randn({in, out}, gen, dt).t() : randn({out, in}, gen, dt);
  const Tensor b = bias ? randn({out}, gen, dt) : Tensor();
  const double tol = dt == DType::f32 ? 1e-4 : 1e-11;
  const Tensor y = linear(x, w, b);
  expect_close(y, linear_reference(x, w, b), tol, "forward");
  const Tensor dy = randn(y.shape(), gen, dt);
  const LinearGrads g = linear_backward(dy, x, w, true, true, bias);
  // dx = dy·W, dW = dyᵀ·x (rows flattened), db = Σ rows.
  const int64_t R = x.numel() / in;
  const Tensor dy2 = dy.reshape({R, out}), x2 = x.reshape({R, in});
  expect_close(g.dx, matmul_reference(dy2, w).reshape(xs), tol, "dx");
  expect_close(g.dweight, matmul_reference(dy2.t(), x2), tol * 10, "dw");
  if (bias) expect_close(g.dbias, matmul_reference(ones({R}, dt), dy2), tol * 10, "db");
  else EXPECT_FALSE(g.dbias.defined());
}

TEST(Linear, Sweep) {
  uint64_t s = 1;
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t in : {1, 3, 8, 17})
      for (int64_t out : {1, 5, 16, 33})
        for (bool bias : {false, true}) {
          check_linear({4, in}, out, bias, dt, s, false);
          check_linear({2, 3, in}, out, bias, dt, s + 1, s % 2 == 0);
          check_linear({in}, out, bias, dt, s + 2, false);
          s += 3;
        }
  check_linear({257, 1025}, 513, true, DType::f32, s++, false);  // column blocks and tails
}

TEST(Linear, RejectsBadShapes) {
  EXPECT_THROW(linear(zeros({2, 3}), zeros({4, 5}), Tensor()), Error);
  EXPECT_THROW(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})), Error);
  EXPECT_THROW(linear(zeros({2, 3}), zeros({3}), Tensor()), Error);
}

TEST(SumRows, MatchesLoops) {
  Generator gen(5);
  for (int64_t r : {1, 3, 64})
    for (int64_t c : {1, 7, 511, 512, 513, 1500}) {
      const Tensor m = randn({r, c}, gen);
      const auto v = m.to_vector<double>();
      std::vector<double> want(static_cast<size_t>(c));
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) want[size_t(j)] += v[size_t(i * c + j)];
      expect_close(sum_rows(m), from_vector(want, {c}), 1e-4, "sum_rows");
    }
}

}  // namespace
}  // namespace finch::ops
