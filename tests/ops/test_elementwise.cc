// Elementwise kernels vs their references: every Highway target, the edge sweep, broadcasting
// (scalar, row, column, channel, 0-d, empty), non-contiguous inputs, IEEE edges, sum_to.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "framework/parallel.h"
#include "ops/broadcast.h"
#include "ops/elementwise.h"
#include "tests/error_text.h"
#include "tests/ops/test_util.h"

using namespace finch;
using finch::test::expect_close;
using finch::test::for_each_target;
using finch::test::random_tensor;

namespace {

const std::vector<std::pair<Shape, Shape>> kBroadcastCases = {
    {{}, {}},                     // 0-d with 0-d
    {{}, {3, 4}},                 // scalar tensor on the left
    {{3, 4}, {}},                 // and on the right
    {{3, 4}, {1}},                // one-element 1-d
    {{7, 33}, {33}},              // row (bias) broadcast
    {{33}, {7, 33}},
    {{5, 1}, {5, 9}},             // column broadcast
    {{2, 3, 1, 1}, {2, 3, 4, 5}}, // [N, C, 1, 1] vs [N, C, H, W]
    {{2, 3, 17, 19}, {1, 3, 1, 1}},
    {{2, 3, 17, 19}, {3, 1, 1}},
    {{4, 1, 6}, {1, 5, 1}},       // both sides broadcast
    {{2, 1, 4}, {3, 1}},
    {{0, 3}, {3}},                // empty
    {{2, 0}, {2, 1}},
    {{1}, {1}},
    {{64, 3, 5}, {64, 3, 5}},
};

// The binary op through ops:: vs the F64 reference (computed from the same F32 values).
// alpha != 1 rounds twice on targets without FMA (SSE4), so a cancelling a + alpha·b can be off
// by an ulp of the operands rather than of the result: atol covers that.
void check_binary(ops::BinaryOp op, const Tensor& a, const Tensor& b, double alpha, double rtol,
                  const std::string& what) {
  Tensor got;
  switch (op) {
    case ops::BinaryOp::add: got = ops::add(a, b, alpha); break;
    case ops::BinaryOp::sub: got = ops::sub(a, b, alpha); break;
    case ops::BinaryOp::mul: got = ops::mul(a, b); break;
    case ops::BinaryOp::div: got = ops::div(a, b); break;
    case ops::BinaryOp::pow: got = ops::pow(a, b); break;
  }
  const Tensor ref = ops::binary_reference(op, a.to(DType::f64), b.to(DType::f64), alpha);
  EXPECT_EQ(got.dtype(), a.dtype());
  expect_close(got, ref, alpha == 1.0 ? 1e-30 : 1e-6, rtol, what, test::NonFinite::must_match);
}

const std::vector<ops::BinaryOp> kArith = {ops::BinaryOp::add, ops::BinaryOp::sub,
                                           ops::BinaryOp::mul, ops::BinaryOp::div};

}  // namespace

TEST(Broadcast, Shapes) {
  EXPECT_EQ(ops::broadcast_shapes({2, 3, 1, 1}, {2, 3, 4, 5}, "add"), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(ops::broadcast_shapes({}, {3}, "add"), (Shape{3}));
  EXPECT_EQ(ops::broadcast_shapes({4, 1, 6}, {5, 1}, "add"), (Shape{4, 5, 6}));
  EXPECT_EQ(ops::broadcast_shapes({0, 1}, {1, 3}, "add"), (Shape{0, 3}));
  try {
    ops::broadcast_shapes({2, 3}, {4}, "add");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "add: shapes [2, 3] and [4] cannot be broadcast (dim -1: 3 vs 4)");
  }
  EXPECT_THROW(ops::mul(zeros({2, 3, 4}), zeros({5, 4})), Error);
}

TEST(Elementwise, DtypeErrors) {
  EXPECT_THROW(ops::add(zeros({2}), zeros({2}, DType::f64)), Error);
  EXPECT_THROW(ops::mul(zeros({2}, DType::i32), zeros({2}, DType::i32)), Error);
  EXPECT_THROW(ops::exp(zeros({2}, DType::i64)), Error);
  EXPECT_THROW(ops::where(zeros({2}), zeros({2}), zeros({2})), Error);  // cond must be b8
}

TEST(Elementwise, SameShapeEdgeSweepAllTargets) {
  for_each_target([] {
    for (int64_t n : test::edge_sizes()) {
      const Tensor a = random_tensor({n}, 1 + uint64_t(n));
      const Tensor b = random_tensor({n}, 1000 + uint64_t(n), 1.0, 3.0);  // away from 0 for div
      for (auto op : kArith) check_binary(op, a, b, 1.0, 1e-6, "n=" + std::to_string(n));
      check_binary(ops::BinaryOp::add, a, b, 2.5, 1e-6, "add alpha");
      check_binary(ops::BinaryOp::sub, a, b, -0.75, 1e-6, "sub alpha");
    }
  });
}

TEST(Elementwise, BroadcastingAllTargets) {
  for_each_target([] {
    uint64_t seed = 7;
    for (const auto& [sa, sb] : kBroadcastCases) {
      const Tensor a = random_tensor(sa, seed++);
      const Tensor b = random_tensor(sb, seed++, 1.0, 4.0);
      const std::string what = shape_str(sa) + " op " + shape_str(sb);
      for (auto op : kArith) check_binary(op, a, b, 1.0, 1e-6, what);
      check_binary(ops::BinaryOp::add, a, b, 0.5, 1e-6, what + " alpha");
      EXPECT_EQ(ops::add(a, b).shape(), ops::broadcast_shapes(sa, sb, "add"));
    }
  });
}

TEST(Elementwise, NonContiguousInputs) {
  for_each_target([] {
    const Tensor base = random_tensor({9, 13}, 3);
    const Tensor t = base.t();                  // [13, 9], strides (1, 13)
    const Tensor s = base.slice(1, 1, 13, 2);   // [9, 6], inner stride 2
    const Tensor b = random_tensor({13, 9}, 4, 1.0, 3.0);
    for (auto op : kArith) {
      check_binary(op, t, b, 1.0, 1e-6, "transposed lhs");
      check_binary(op, b, t, 1.0, 1e-6, "transposed rhs");
      check_binary(op, s, random_tensor({6}, 5, 1.0, 3.0), 1.0, 1e-6, "sliced with row");
      check_binary(op, random_tensor({9, 1}, 6), s, 1.0, 1e-6, "column with sliced");
    }
    // expand() views (stride 0) are valid inputs too.
    const Tensor e = random_tensor({1, 5}, 8).expand({4, 5});
    check_binary(ops::BinaryOp::mul, e, random_tensor({4, 5}, 9), 1.0, 1e-6, "expanded");
  });
}

TEST(Elementwise, F64MatchesReferenceExactly) {
  const Tensor a = random_tensor({3, 1, 5}, 11, 1.0, 0.0, DType::f64);
  const Tensor b = random_tensor({4, 1}, 12, 1.0, 2.0, DType::f64);
  for (auto op : kArith) {
    const Tensor got = op == ops::BinaryOp::add ? ops::add(a, b, 0.3)
                       : op == ops::BinaryOp::sub ? ops::sub(a, b)
                       : op == ops::BinaryOp::mul ? ops::mul(a, b) : ops::div(a, b);
    EXPECT_EQ(got.dtype(), DType::f64);
    expect_close(got, ops::binary_reference(op, a, b, op == ops::BinaryOp::add ? 0.3 : 1.0), 0, 0,
                 "f64", test::NonFinite::must_match);
  }
}

TEST(Elementwise, TensorPow) {
  const Tensor a = ops::abs(random_tensor({5, 7}, 13));
  const Tensor b = random_tensor({7}, 14);
  check_binary(ops::BinaryOp::pow, a, b, 1.0, 1e-6, "pow");
  // Negative bases with integer exponents keep their sign; non-integer ones are NaN (std::pow).
  const Tensor neg = from_vector<float>({-2, -2, 0, 0}, {4});
  const Tensor ex = from_vector<float>({3, 0.5f, 2, -1}, {4});
  const auto r = ops::pow(neg, ex).to_vector<float>();
  EXPECT_EQ(r[0], -8.0f);
  EXPECT_TRUE(std::isnan(r[1]));
  EXPECT_EQ(r[2], 0.0f);
  EXPECT_TRUE(std::isinf(r[3]));
}

// Labels, argmax results and token ids are integers: accuracy is eq(argmax, labels) on I64.
TEST(Elementwise, ComparisonsOfIntegerAndBoolTensors) {
  const Tensor pred = from_vector<int64_t>({3, 1, 4, 1, 5, 9}, {2, 3});
  const Tensor label = from_vector<int64_t>({3, 2, 4}, {3});  // broadcast over rows
  EXPECT_EQ(ops::eq(pred, label).to_vector<int>(), (std::vector<int>{1, 0, 1, 0, 0, 0}));
  EXPECT_EQ(ops::gt(pred, label).to_vector<int>(), (std::vector<int>{0, 0, 0, 0, 1, 1}));
  const Tensor big = from_vector<int64_t>({(int64_t(1) << 53) + 1}, {1});  // not representable as float
  const Tensor near = from_vector<int64_t>({int64_t(1) << 53}, {1});
  EXPECT_EQ(ops::ne(big, near).to_vector<int>(), (std::vector<int>{1}));
  const Tensor u = from_vector<uint8_t>({0, 255}, {2}), v = from_vector<uint8_t>({1, 254}, {2});
  EXPECT_EQ(ops::lt(u, v).to_vector<int>(), (std::vector<int>{1, 0}));
  const Tensor t = from_vector<bool>({true, false}, {2});
  EXPECT_EQ(ops::eq(t, t).to_vector<int>(), (std::vector<int>{1, 1}));
  EXPECT_ERROR_HAS(ops::eq(pred, pred.to(DType::i32)), "both operands must have the same dtype, got I64 and I32");
  const Tensor h = from_vector<float>({1, 2}, {2}).to(DType::f16);
  EXPECT_ERROR_HAS(ops::eq(h, h), "expected the first operand to be a float (F32, F64), integer or bool tensor, got F16");
}

TEST(Elementwise, ComparisonsAllTargets) {
  for_each_target([] {
    for (const auto& [sa, sb] : kBroadcastCases) {
      // Integers in a small range so that equality happens often.
      Tensor a = random_tensor(sa, 21, 2.0), b = random_tensor(sb, 22, 2.0);
      for (Tensor* t : {&a, &b}) {
        float* p = t->data<float>();
        for (int64_t i = 0; i < t->numel(); ++i) p[i] = std::round(p[i]);
      }
      for (int k = 0; k < 6; ++k) {
        const auto op = ops::CompareOp(k);
        Tensor got = op == ops::CompareOp::eq ? ops::eq(a, b) : op == ops::CompareOp::ne ? ops::ne(a, b)
                   : op == ops::CompareOp::lt ? ops::lt(a, b) : op == ops::CompareOp::le ? ops::le(a, b)
                   : op == ops::CompareOp::gt ? ops::gt(a, b) : ops::ge(a, b);
        EXPECT_EQ(got.dtype(), DType::b8);
        EXPECT_EQ(got.to_vector<int>(), ops::compare_reference(op, a, b).to_vector<int>())
            << "op " << k << " " << shape_str(sa) << " vs " << shape_str(sb);
      }
    }
    for (int64_t n : test::edge_sizes()) {
      const Tensor a = random_tensor({n}, 31), b = random_tensor({n}, 32);
      EXPECT_EQ(ops::lt(a, b).to_vector<int>(),
                ops::compare_reference(ops::CompareOp::lt, a, b).to_vector<int>());
    }
    // NaN compares unequal to everything, including itself.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor x = from_vector<float>({nan, 1}, {2});
    EXPECT_EQ(ops::eq(x, x).to_vector<int>(), (std::vector<int>{0, 1}));
    EXPECT_EQ(ops::ne(x, x).to_vector<int>(), (std::vector<int>{1, 0}));
  });
}

TEST(Elementwise, WhereBroadcastsAllThreeAllTargets) {
  for_each_target([] {
    const Tensor cond = ops::gt(random_tensor({4, 1, 6}, 41), zeros({}));
    const Tensor a = random_tensor({5, 1}, 42), b = random_tensor({6}, 43);
    const Tensor got = ops::where(cond, a, b);
    EXPECT_EQ(got.shape(), (Shape{4, 5, 6}));
    expect_close(got, ops::where_reference(cond, a, b), 0, 0, "where", test::NonFinite::must_match);
    // A column condition (inner stride 0) over rows long enough for full vectors, and a
    // transposed operand (inner stride > 1).
    const Tensor col = ops::gt(random_tensor({7, 1}, 49), zeros({}));
    const Tensor wide = random_tensor({7, 37}, 50), tr = random_tensor({37, 7}, 51).t();
    expect_close(ops::where(col, wide, tr), ops::where_reference(col, wide, tr), 0, 0, "where col",
                 test::NonFinite::must_match);
    for (int64_t n : test::edge_sizes()) {
      const Tensor c = ops::lt(random_tensor({n}, 44), zeros({}));
      const Tensor x = random_tensor({n}, 45), y = random_tensor({n}, 46);
      expect_close(ops::where(c, x, y), ops::where_reference(c, x, y), 0, 0, "where n",
                   test::NonFinite::must_match);
    }
    const Tensor c64 = ops::gt(random_tensor({3, 4}, 47, 1, 0, DType::f64), zeros({}, DType::f64));
    const Tensor a64 = random_tensor({3, 4}, 48, 1, 0, DType::f64);
    expect_close(ops::where(c64, a64, zeros({}, DType::f64)),
                 ops::where_reference(c64, a64, zeros({}, DType::f64)), 0, 0, "where f64",
                 test::NonFinite::must_match);
  });
}

namespace {

// Unary op through ops:: vs the F64 reference on the F32 values.
void check_unary(ops::UnaryOp op, const Tensor& x, ops::UnaryParams p, double atol, double rtol,
                 const std::string& what) {
  Tensor got;
  switch (op) {
    case ops::UnaryOp::neg: got = ops::neg(x); break;
    case ops::UnaryOp::exp: got = ops::exp(x); break;
    case ops::UnaryOp::log: got = ops::log(x); break;
    case ops::UnaryOp::sqrt: got = ops::sqrt(x); break;
    case ops::UnaryOp::rsqrt: got = ops::rsqrt(x); break;
    case ops::UnaryOp::abs: got = ops::abs(x); break;
    case ops::UnaryOp::add_scalar: got = ops::add_scalar(x, p.p0); break;
    case ops::UnaryOp::mul_scalar: got = ops::mul_scalar(x, p.p0); break;
    case ops::UnaryOp::pow_scalar: got = ops::pow_scalar(x, p.p0); break;
    case ops::UnaryOp::clamp: got = ops::clamp(x, p.p0, p.p1); break;
  }
  Tensor ref = ops::unary_reference(op, x.to(DType::f64), p);
  // F32 overflows where f64 does not: the reference is what an exact f32 result would be.
  ref = ref.to(DType::f32);
  expect_close(got, ref, atol, rtol, what, test::NonFinite::must_match);
}

}  // namespace

// Tolerances (documented): exp ≤ 2 ulp (Highway Exp is 1 ulp, plus argument rounding);
// log ≤ 4 ulp relative or 1e-7 absolute near 1; sqrt/rsqrt/neg/abs/scalar ops exact or 1 ulp.
TEST(Elementwise, UnaryEdgeSweepAllTargets) {
  for_each_target([] {
    for (int64_t n : test::edge_sizes()) {
      const std::string what = "n=" + std::to_string(n);
      const Tensor x = random_tensor({n}, 50 + uint64_t(n), 3.0);
      const Tensor pos = ops::add_scalar(ops::abs(x), 1e-3);
      check_unary(ops::UnaryOp::neg, x, {}, 0, 0, what + " neg");
      check_unary(ops::UnaryOp::abs, x, {}, 0, 0, what + " abs");
      // Results below FLT_MIN are subnormal: Highway rebuilds them with a few ulp of 1.4e-45.
      check_unary(ops::UnaryOp::exp, ops::mul_scalar(x, 10.0), {}, 1e-43, 2.5e-7, what + " exp");
      check_unary(ops::UnaryOp::log, pos, {}, 1e-7, 5e-7, what + " log");
      check_unary(ops::UnaryOp::sqrt, pos, {}, 0, 1.2e-7, what + " sqrt");
      check_unary(ops::UnaryOp::rsqrt, pos, {}, 0, 2.4e-7, what + " rsqrt");
      // The scalar is rounded to f32 first (as torch): off by up to an ulp of 0.3 when cancelling.
      check_unary(ops::UnaryOp::add_scalar, x, {0.3, 0}, 3e-8, 1.2e-7, what + " add_scalar");
      check_unary(ops::UnaryOp::mul_scalar, x, {-1.7, 0}, 0, 1.2e-7, what + " mul_scalar");
      check_unary(ops::UnaryOp::clamp, x, {-0.5, 1.25}, 0, 0, what + " clamp");
      for (double e : {2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 0.0, 1.0, 1.7, -2.5, 4.0})
        check_unary(ops::UnaryOp::pow_scalar, e == double(int(e)) ? x : pos, {e, 0}, 0, 5e-7,
                    what + " pow " + std::to_string(e));
    }
  });
}

TEST(Elementwise, UnaryIeeeEdgesAllTargets) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float den = std::numeric_limits<float>::denorm_min();
  const Tensor x = from_vector<float>({0.0f, -0.0f, 1.0f, -1.0f, inf, -inf, nan, den, 1e-40f,
                                       88.0f, 88.7f, 89.0f, 200.0f, -87.0f, -103.0f, -200.0f,
                                       3e38f, 1e-30f},
                                      {18});
  for_each_target([&] {
    check_unary(ops::UnaryOp::exp, x, {}, 1e-43, 2.5e-7, "exp edges");
    check_unary(ops::UnaryOp::log, x, {}, 1e-7, 5e-7, "log edges");
    check_unary(ops::UnaryOp::sqrt, x, {}, 0, 1.2e-7, "sqrt edges");
    check_unary(ops::UnaryOp::abs, x, {}, 0, 0, "abs edges");
    check_unary(ops::UnaryOp::clamp, x, {-1.0, 1.0}, 0, 0, "clamp edges");
  });
}

TEST(Elementwise, ClampOptionalBounds) {
  for_each_target([] {
    const Tensor x = random_tensor({37}, 60, 2.0);
    const auto v = x.to_vector<float>();
    const auto lo = ops::clamp(x, -0.5, std::nullopt).to_vector<float>();
    const auto hi = ops::clamp(x, std::nullopt, 0.25).to_vector<float>();
    const auto flip = ops::clamp(x, 1.0, -1.0).to_vector<float>();  // min > max: all max
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(lo[i], std::max(v[i], -0.5f));
      EXPECT_EQ(hi[i], std::min(v[i], 0.25f));
      EXPECT_EQ(flip[i], -1.0f);
    }
  });
}

TEST(Elementwise, UnaryNonContiguousAndF64) {
  const Tensor base = random_tensor({6, 11}, 70);
  const Tensor t = base.t();
  check_unary(ops::UnaryOp::exp, t, {}, 0, 2.5e-7, "exp transposed");
  check_unary(ops::UnaryOp::abs, base.slice(1, 0, 11, 3), {}, 0, 0, "abs sliced");
  const Tensor d = random_tensor({4, 5}, 71, 1.0, 0.0, DType::f64);
  const Tensor e = ops::exp(d);
  EXPECT_EQ(e.dtype(), DType::f64);
  expect_close(e, ops::unary_reference(ops::UnaryOp::exp, d), 0, 0, "exp f64",
               test::NonFinite::must_match);
  expect_close(ops::clamp(d, -0.2, 0.2), ops::unary_reference(ops::UnaryOp::clamp, d, {-0.2, 0.2}),
               0, 0, "clamp f64", test::NonFinite::must_match);
}

TEST(Elementwise, EmptyAndZeroDim) {
  EXPECT_EQ(ops::exp(zeros({0, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(ops::add(zeros({0, 4}), ones({4})).numel(), 0);
  const Tensor s = ops::mul(scalar_tensor(3.0), scalar_tensor(-2.0));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item(), -6.0);
}

TEST(Elementwise, BackwardHelpers) {
  const Tensor x = from_vector<double>({-2, -0.5, 0, 0.5, 1, 2}, {6});
  const Tensor g = from_vector<double>({1, 2, 3, 4, 5, 6}, {6});
  EXPECT_EQ(ops::abs_backward(g, x).to_vector<double>(), (std::vector<double>{-1, -2, 0, 4, 5, 6}));
  // Bounds are inclusive (torch): x == min and x == max pass the gradient.
  EXPECT_EQ(ops::clamp_backward(g, x, -0.5, 1.0).to_vector<double>(),
            (std::vector<double>{0, 2, 3, 4, 5, 0}));
  EXPECT_EQ(ops::clamp_backward(g, x, std::nullopt, 0.0).to_vector<double>(),
            (std::vector<double>{1, 2, 3, 0, 0, 0}));
}

// ---- sum_to ----

namespace {
const std::vector<std::pair<Shape, Shape>> kSumToCases = {
    {{64, 16}, {16}},              // bias of a linear layer
    {{3, 5}, {5}},
    {{4, 8, 5, 7}, {8, 1, 1}},     // channel bias of a conv
    {{4, 8, 5, 7}, {1, 8, 1, 1}},
    {{2, 3, 4}, {2, 1, 4}},        // middle dim
    {{2, 3, 4}, {2, 3, 1}},        // last dim
    {{2, 3, 4}, {}},               // everything
    {{2, 3, 4}, {1, 1, 1}},
    {{5, 1, 7}, {7}},              // size-1 dims in g
    {{6, 5, 4, 3}, {5, 1, 3}},     // alternating kept/reduced
    {{1, 3, 4}, {3, 4}},           // only size-1 dims differ (numel equal)
    {{1, 3, 1, 4}, {3, 1, 4}},
    {{4096, 33}, {33}},            // many rows, few columns: partial sums
    {{3, 70000}, {3, 1}},          // few outputs, long rows
    {{150000}, {}},                // long full sum
    {{0, 5}, {5}},                 // empty gradient: zeros
    {{4, 0}, {1, 0}},
};
}  // namespace

TEST(SumTo, MatchesReferenceF32F64AndThreads) {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for_each_target([] {
      uint64_t seed = 90;
      for (const auto& [gs, ts] : kSumToCases) {
        for (DType dt : {DType::f32, DType::f64}) {
          const Tensor g = random_tensor(gs, seed++, 1.0, 0.0, dt);
          const Tensor got = ops::sum_to(g, ts);
          EXPECT_EQ(got.shape(), ts);
          EXPECT_EQ(got.dtype(), dt);
          // f32 sums in float blocks of 2048 flushed to double: a few ulp of the partial sums.
          expect_close(got, ops::sum_to_reference(g, ts), dt == DType::f32 ? 1e-4 : 1e-12,
                       dt == DType::f32 ? 1e-6 : 1e-12, shape_str(gs) + " -> " + shape_str(ts),
                       test::NonFinite::must_match);
        }
      }
    });
  }
  set_num_threads(2);
}

TEST(SumTo, NonContiguousSameShapeAndErrors) {
  const Tensor g = random_tensor({7, 9}, 120).t();  // [9, 7] transposed
  expect_close(ops::sum_to(g, {1, 7}), ops::sum_to_reference(g, {1, 7}), 1e-6, 1e-6, "transposed",
               test::NonFinite::must_match);
  const Tensor same = random_tensor({3, 4}, 121);
  EXPECT_TRUE(ops::sum_to(same, {3, 4}).is_same(same));
  EXPECT_THROW(ops::sum_to(same, {5}), Error);
  EXPECT_THROW(ops::sum_to(same, {2, 3, 4}), Error);
}

TEST(SumTo, DeterministicForAThreadCount) {
  const Tensor g = random_tensor({512, 3, 40}, 130);
  set_num_threads(2);
  const auto a = ops::sum_to(g, {3, 1}).to_vector<float>();
  const auto b = ops::sum_to(g, {3, 1}).to_vector<float>();
  EXPECT_EQ(a, b);
}

TEST(Elementwise, OpsRunOnTensorsThatRequireGrad) {
  // ops/ never takes raw views, so calling it directly with grad mode on is fine.
  Tensor a = random_tensor({3, 4}, 140, 1.0, 0.0, DType::f64);
  a.set_requires_grad(true);
  const Tensor b = random_tensor({4}, 141, 1.0, 0.0, DType::f64);
  EXPECT_NO_THROW(ops::add(a, b));
  EXPECT_NO_THROW(ops::exp(a));
  EXPECT_NO_THROW(ops::where(ops::gt(a, b), a, b));
  EXPECT_NO_THROW(ops::sum_to(a, {4}));
  EXPECT_FALSE(ops::mul(a, b).requires_grad());  // ops/ never records
}
