// Gradchecks for matmul (1-D, 2-D, batched, broadcast batch dims) and linear (with/without bias).
#include "autograd/functional.h"
#include "gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;
using Ts = std::vector<Tensor>;

void check_matmul(const Shape& a, const Shape& b, uint64_t seed) {
  SCOPED_TRACE(shape_str(a) + " @ " + shape_str(b));
  check_grad("matmul", [](const Ts& in) { return Ts{matmul(in[0], in[1])}; },
             {leaf(a, seed), leaf(b, seed + 1)});
}

GRADCHECK_TEST(matmul, Matrices) { check_matmul({3, 4}, {4, 2}, 1); }
GRADCHECK_TEST(matmul, VectorCases) {
  check_matmul({4}, {4}, 2);
  check_matmul({4}, {4, 3}, 3);
  check_matmul({2, 4}, {4}, 4);
  check_matmul({3}, {2, 3, 2}, 5);
}
GRADCHECK_TEST(matmul, BatchedAndBroadcast) {
  check_matmul({2, 3, 4}, {2, 4, 2}, 6);
  check_matmul({2, 3, 4}, {4, 2}, 7);            // folded into one GEMM
  check_matmul({3, 2}, {2, 2, 3}, 8);            // a broadcast over b's batch
  check_matmul({2, 1, 2, 3}, {3, 3, 2}, 9);      // both batch dims broadcast
}
GRADCHECK_TEST(matmul, OnlyOneInputRequiresGrad) {
  Tensor b = leaf({3, 2}, 11);
  b.set_requires_grad(false);
  check_grad("matmul", [](const Ts& in) { return Ts{matmul(in[0], in[1])}; }, {leaf({2, 3}, 10), b});
}

GRADCHECK_TEST(linear, WithBias) {
  check_grad("linear", [](const Ts& in) { return Ts{linear(in[0], in[1], in[2])}; },
             {leaf({4, 3}, 1), leaf({5, 3}, 2), leaf({5}, 3)});
}
GRADCHECK_TEST(linear, NoBiasBatched) {
  check_grad("linear", [](const Ts& in) { return Ts{linear(in[0], in[1])}; },
             {leaf({2, 3, 4}, 4), leaf({2, 4}, 5)});
}
GRADCHECK_TEST(linear, VectorInput) {
  check_grad("linear", [](const Ts& in) { return Ts{linear(in[0], in[1], in[2])}; },
             {leaf({3}, 6), leaf({2, 3}, 7), leaf({2}, 8)});
}

}  // namespace
}  // namespace finch
