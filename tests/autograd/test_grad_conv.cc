// Gradchecks for conv2d (groups, stride, padding, dilation, depthwise, 1×1), conv1d and the
// 2-D pools (padding, ceil_mode, count_include_pad, adaptive sizes that overlap).
#include "autograd/functional.h"
#include "gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;
using Ts = std::vector<Tensor>;

void check_conv(const Shape& xs, const Shape& ws, bool bias, const Conv2dParams& opt, uint64_t seed) {
  SCOPED_TRACE(shape_str(xs) + " * " + shape_str(ws));
  Ts in{leaf(xs, seed), leaf(ws, seed + 1)};
  if (bias) in.push_back(leaf({ws[0]}, seed + 2));
  check_grad("conv2d",
             [opt](const Ts& v) { return Ts{conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), opt)}; },
             in);
}

GRADCHECK_TEST(conv2d, Plain3x3) { check_conv({2, 2, 4, 5}, {3, 2, 3, 3}, true, {}, 1); }
GRADCHECK_TEST(conv2d, StridePaddingDilation) {
  check_conv({1, 2, 6, 5}, {2, 2, 3, 2}, false, Conv2dParams{2, 1, 1, 2, 2, 1, 1}, 2);
  check_conv({2, 1, 5, 5}, {2, 1, 3, 3}, true, Conv2dParams{3, 3, 2, 2, 1, 1, 1}, 3);
}
GRADCHECK_TEST(conv2d, Groups) {
  check_conv({1, 4, 5, 4}, {4, 2, 3, 3}, true, Conv2dParams{2, 2, 1, 1, 2, 2, 2}, 4);
}
GRADCHECK_TEST(conv2d, Depthwise) {
  check_conv({2, 3, 5, 6}, {3, 1, 3, 3}, true, Conv2dParams{1, 1, 1, 1, 1, 1, 3}, 5);
  check_conv({1, 2, 6, 7}, {4, 1, 3, 3}, true, Conv2dParams{2, 2, 1, 1, 1, 1, 2}, 6);  // multiplier 2
  check_conv({1, 2, 7, 6}, {2, 1, 2, 3}, false, Conv2dParams{1, 2, 1, 0, 2, 1, 2}, 7);
}
GRADCHECK_TEST(conv2d, Pointwise) { check_conv({2, 3, 3, 2}, {4, 3, 1, 1}, true, {}, 8); }

GRADCHECK_TEST(conv1d, Basic) {
  check_grad("conv1d", [](const Ts& v) { return Ts{conv1d(v[0], v[1], v[2], 2, 1, 1, 1)}; },
             {leaf({2, 2, 7}, 1), leaf({3, 2, 3}, 2), leaf({3}, 3)});
}
GRADCHECK_TEST(conv1d, GroupsDilationNoBias) {
  check_grad("conv1d", [](const Ts& v) { return Ts{conv1d(v[0], v[1], Tensor(), 1, 2, 2, 2)}; },
             {leaf({1, 4, 6}, 4), leaf({4, 2, 3}, 5)});
  check_grad("conv1d", [](const Ts& v) { return Ts{conv1d(v[0], v[1], v[2], 1, 1, 1, 3)}; },
             {leaf({2, 3, 5}, 6), leaf({3, 1, 3}, 7), leaf({3}, 8)});  // depthwise
}

void check_pool(const char* rule, bool max, const Shape& xs, const Pool2dParams& o, uint64_t seed) {
  check_grad(rule, [max, o](const Ts& v) { return Ts{max ? max_pool2d(v[0], o) : avg_pool2d(v[0], o)}; },
             {leaf(xs, seed)});
}

GRADCHECK_TEST(max_pool2d, Basic) { check_pool("max_pool2d", true, {2, 2, 4, 4}, Pool2dParams{}, 1); }
GRADCHECK_TEST(max_pool2d, OverlappingPaddedCeil) {
  check_pool("max_pool2d", true, {1, 2, 5, 6}, Pool2dParams{3, 3, 2, 2, 1, 1, true}, 2);
  check_pool("max_pool2d", true, {1, 1, 5, 5}, Pool2dParams{2, 3, 1, 2, 1, 0, false}, 3);
}
GRADCHECK_TEST(avg_pool2d, Basic) { check_pool("avg_pool2d", false, {2, 2, 4, 4}, Pool2dParams{}, 4); }
GRADCHECK_TEST(avg_pool2d, PaddingCeilCountIncludePad) {
  check_pool("avg_pool2d", false, {1, 2, 5, 6}, Pool2dParams{3, 3, 2, 2, 1, 1, true, true}, 5);
  check_pool("avg_pool2d", false, {1, 2, 5, 6}, Pool2dParams{3, 3, 2, 2, 1, 1, true, false}, 6);
  check_pool("avg_pool2d", false, {2, 3, 3}, Pool2dParams{2, 2, 1, 1, 1, 0, false, false}, 7);
}

GRADCHECK_TEST(adaptive_avg_pool2d, Shapes) {
  for (auto [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{{5, 7, 3, 2}, {4, 4, 1, 1}, {3, 5, 5, 3}}) {
    check_grad("adaptive_avg_pool2d", [oh, ow](const Ts& v) { return Ts{adaptive_avg_pool2d(v[0], {oh, ow})}; },
               {leaf({2, 2, h, w}, uint64_t(h * 10 + w))});
  }
}

}  // namespace
}  // namespace finch
