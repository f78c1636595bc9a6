// Gradchecks of the reduction and softmax rules: sum, mean, max, var, softmax, log_softmax,
// over several dims, negative dims, keepdim and strided (transposed) inputs.
#include "autograd/functional.h"
#include "tests/autograd/gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;
using V = std::vector<Tensor>;

GRADCHECK_TEST(sum, DimsKeepdimNegativeAll) {
  check_grad("sum", [](const V& in) { return V{sum(in[0])}; }, {leaf({3, 4}, 1)});
  check_grad("sum", [](const V& in) { return V{sum(in[0], {1})}; }, {leaf({3, 4, 2}, 2)});
  check_grad("sum", [](const V& in) { return V{sum(in[0], {0, -1}, true)}; }, {leaf({3, 4, 2}, 3)});
  check_grad("sum", [](const V& in) { return V{sum(in[0], {0, 2, 3})}; }, {leaf({2, 3, 2, 2}, 4)});
}

GRADCHECK_TEST(sum, StridedInput) {
  check_grad("sum", [](const V& in) { return V{sum(transpose(in[0], 0, 2), {1}, true)}; },
             {leaf({2, 3, 4}, 5)});
}

GRADCHECK_TEST(mean, DimsKeepdim) {
  check_grad("mean", [](const V& in) { return V{mean(in[0])}; }, {leaf({5}, 6)});
  check_grad("mean", [](const V& in) { return V{mean(in[0], {-2}, true)}; }, {leaf({3, 4, 2}, 7)});
  check_grad("mean", [](const V& in) { return V{mean(permute(in[0], {2, 0, 1}), {0, 2})}; },
             {leaf({3, 4, 2}, 8)});
}

GRADCHECK_TEST(max, EveryDim) {
  for (int64_t d : {0, 1, -1})
    for (bool keep : {false, true})
      check_grad("max", [d, keep](const V& in) { return V{max(in[0], d, keep).first}; },
                 {leaf({3, 4, 5}, 9)});
  check_grad("max", [](const V& in) { return V{max(transpose(in[0], 0, 1), 1).first}; },
             {leaf({4, 3}, 10)});
}

TEST(Reductions, ArgmaxIsNotRecorded) {
  Tensor x = leaf({3, 4}, 11);
  Tensor i = argmax(x, 1);
  EXPECT_EQ(i.dtype(), DType::i64);
  EXPECT_FALSE(i.requires_grad());
  auto [v, idx] = max(x, 1);
  EXPECT_TRUE(v.requires_grad());
  EXPECT_EQ(idx.to_vector<int64_t>(), i.to_vector<int64_t>());
}

GRADCHECK_TEST(var, CorrectionDimsKeepdim) {
  check_grad("var", [](const V& in) { return V{var(in[0])}; }, {leaf({6}, 12)});
  check_grad("var", [](const V& in) { return V{var(in[0], {1}, 0)}; }, {leaf({3, 4}, 13)});
  check_grad("var", [](const V& in) { return V{var(in[0], {0, -1}, 1, true)}; }, {leaf({3, 2, 4}, 14)});
  check_grad("var", [](const V& in) { return V{var(transpose(in[0], 0, 1), {0}, 2)}; }, {leaf({3, 5}, 15)});
}

GRADCHECK_TEST(softmax, EveryDim) {
  for (int64_t d : {0, 1, 2, -1})
    check_grad("softmax", [d](const V& in) { return V{softmax(in[0], d)}; }, {leaf({2, 3, 4}, 16)});
  check_grad("softmax", [](const V& in) { return V{softmax(transpose(in[0], 0, 1), 1)}; },
             {leaf({3, 5}, 17)});
}

GRADCHECK_TEST(log_softmax, EveryDim) {
  for (int64_t d : {0, 1, -1})
    check_grad("log_softmax", [d](const V& in) { return V{log_softmax(in[0], d)}; },
               {leaf({3, 4, 2}, 18)});
  check_grad("log_softmax", [](const V& in) { return V{log_softmax(permute(in[0], {1, 0}), 0)}; },
             {leaf({4, 3}, 19, 3.0)});
}

}  // namespace
}  // namespace finch
