// Gradchecks of the shape and layout rules (view, permute, expand, slice, select, contiguous,
// cat, index_select, pad, to_dtype), plus checks that views stay views.
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "tests/autograd/gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;
using V = std::vector<Tensor>;

GRADCHECK_TEST(view, ReshapeViewFlattenSqueezeUnsqueeze) {
  check_grad("view", [](const V& in) { return V{reshape(in[0], {4, 3})}; }, {leaf({2, 6}, 1)});
  check_grad("view", [](const V& in) { return V{view(in[0], {-1})}; }, {leaf({2, 3}, 2)});
  check_grad("view", [](const V& in) { return V{flatten(in[0], 1)}; }, {leaf({2, 3, 2}, 3)});
  check_grad("view", [](const V& in) { return V{squeeze(unsqueeze(in[0], -1), 1)}; }, {leaf({3, 1, 2}, 4)});
}

GRADCHECK_TEST(contiguous, StridedInputAndReshapeThatCopies) {
  check_grad("contiguous", [](const V& in) { return V{contiguous(transpose(in[0], 0, 1))}; },
             {leaf({3, 4}, 5)});
  // reshaping a transposed tensor cannot be a view: contiguous + view, as torch records it
  check_grad("contiguous", [](const V& in) { return V{reshape(transpose(in[0], 0, 1), {-1})}; },
             {leaf({3, 4}, 6)});
}

GRADCHECK_TEST(permute, PermuteAndTranspose) {
  check_grad("permute", [](const V& in) { return V{permute(in[0], {2, 0, 1})}; }, {leaf({2, 3, 4}, 7)});
  check_grad("permute", [](const V& in) { return V{transpose(in[0], -1, 0)}; }, {leaf({2, 3, 4}, 8)});
}

GRADCHECK_TEST(expand, LeadingAndSizeOneDims) {
  check_grad("expand", [](const V& in) { return V{expand(in[0], {2, 3, 4})}; }, {leaf({3, 1}, 9)});
  check_grad("expand", [](const V& in) { return V{expand(in[0], {-1, 4})}; }, {leaf({3, 1}, 10)});
  check_grad("expand", [](const V& in) { return V{expand(in[0], {3, 2})}; }, {leaf({3, 2}, 11)});
}

GRADCHECK_TEST(slice, SliceNarrowSplitChunk) {
  check_grad("slice", [](const V& in) { return V{slice(in[0], 1, 1, 5, 2)}; }, {leaf({3, 6}, 12)});
  check_grad("slice", [](const V& in) { return V{slice(in[0], -1, -3, 6)}; }, {leaf({3, 6}, 13)});
  check_grad("slice", [](const V& in) { return V{narrow(in[0], 0, 1, 2)}; }, {leaf({3, 6}, 14)});
  check_grad("slice", [](const V& in) { return split(in[0], 4, 1); }, {leaf({2, 6}, 15)});
  check_grad("slice", [](const V& in) { return chunk(in[0], 3, 0); }, {leaf({7, 2}, 16)});
}

GRADCHECK_TEST(select, AnyDim) {
  check_grad("select", [](const V& in) { return V{select(in[0], 1, -1)}; }, {leaf({3, 4}, 17)});
  check_grad("select", [](const V& in) { return V{select(transpose(in[0], 0, 2), 0, 2)}; },
             {leaf({2, 3, 4}, 18)});
}

GRADCHECK_TEST(cat, Dims01Last) {
  check_grad("cat", [](const V& in) { return V{cat(in, 0)}; }, {leaf({2, 3}, 19), leaf({1, 3}, 20)});
  check_grad("cat", [](const V& in) { return V{cat(in, 1)}; }, {leaf({2, 3}, 21), leaf({2, 1}, 22)});
  check_grad("cat", [](const V& in) { return V{cat({in[0], transpose(in[1], 0, 1), in[0]}, -1)}; },
             {leaf({2, 3}, 23), leaf({2, 2}, 24)});
}

GRADCHECK_TEST(cat, Stack) {
  check_grad("cat", [](const V& in) { return V{stack(in, 1)}; }, {leaf({2, 3}, 25), leaf({2, 3}, 26)});
  check_grad("cat", [](const V& in) { return V{stack(in, -1)}; }, {leaf({2, 3}, 27), leaf({2, 3}, 28)});
}

GRADCHECK_TEST(index_select, RepeatedIndicesAnyDim) {
  const Tensor idx = from_vector<int64_t>({2, 0, 2, 1}, {4});
  check_grad("index_select", [idx](const V& in) { return V{index_select(in[0], 0, idx)}; }, {leaf({3, 2}, 29)});
  check_grad("index_select", [idx](const V& in) { return V{index_select(in[0], -1, idx.to(DType::i32))}; },
             {leaf({2, 3}, 30)});
}

GRADCHECK_TEST(pad, EveryMode) {
  for (const std::string mode : {"constant", "reflect", "replicate"}) {
    check_grad("pad", [mode](const V& in) { return V{pad(in[0], {2, 1}, mode, 0.5)}; }, {leaf({2, 4}, 31)});
    check_grad("pad", [mode](const V& in) { return V{pad(in[0], {1, 2, 2, 1}, mode)}; }, {leaf({1, 3, 4}, 32)});
  }
  check_grad("pad", [](const V& in) { return V{pad(in[0], {-1, 1, 1, -1})}; }, {leaf({3, 4}, 33)});
}

GRADCHECK_TEST(to_dtype, F64ToF32AndBack) {
  // f32 round-trip loses precision; the finite differences run in f64 with a coarser eps.
  GradcheckOptions opt;
  opt.eps = 1e-3;
  opt.atol = 1e-3;
  opt.rtol = 1e-2;
  check_grad("to_dtype", [](const V& in) { return V{to_dtype(to_dtype(in[0], DType::f32), DType::f64)}; },
             {leaf({3, 2}, 34)}, opt);
}

TEST(ShapeOps, ViewsShareStorageAndCarryTheGraph) {
  Tensor x = leaf({2, 3, 4}, 35);
  for (const Tensor& y : {reshape(x, {6, 4}), view(x, {4, 6}), flatten(x), permute(x, {1, 2, 0}),
                          transpose(x, 0, 1), slice(x, 2, 1, 3), narrow(x, 1, 0, 2), select(x, 0, 1),
                          squeeze(x, 0), unsqueeze(x, 1), expand(unsqueeze(x, 0), {5, 2, 3, 4})}) {
    EXPECT_EQ(y.storage(), x.storage());
    EXPECT_TRUE(y.requires_grad());
    EXPECT_NE(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(contiguous(x).is_same(x));
  // squeeze of a non-1 dim must still be a new handle (never x itself with a new grad_fn)
  Tensor s = squeeze(x, 1);
  EXPECT_FALSE(s.is_same(x));
  EXPECT_TRUE(x.is_leaf());
}

TEST(ShapeOps, SplitChunkStackShapes) {
  NoGradGuard ng;
  Tensor x = arange(0, 14).view({7, 2});
  auto parts = chunk(x, 3, 0);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].shape(), (Shape{1, 2}));
  auto sp = split(x, 3, 0);
  ASSERT_EQ(sp.size(), 3u);
  EXPECT_EQ(sp[2].get({0, 1}), 13.0);
  EXPECT_EQ(stack({x, x}, 0).shape(), (Shape{2, 7, 2}));
  EXPECT_EQ(stack({x, x}, 2).shape(), (Shape{7, 2, 2}));
  EXPECT_THROW(stack({x, x.t()}, 0), Error);
}

}  // namespace
}  // namespace finch
