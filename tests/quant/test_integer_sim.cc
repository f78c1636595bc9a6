// The simulated model's exact integer units against an independent scalar integer reference:
// codes, int64 accumulation loops, int32 bias and requantize() of kernels/requant.h — equal bit for
// bit (the outputs are compared as codes and as floats with EXPECT_EQ).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "autograd/functional.h"
#include "framework/random.h"
#include "quant/integer_sim.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "kernels/requant.h"

using namespace finch;
using namespace finch::quant;

namespace {

QParams act(float lo, float hi) { return qparams(QSpec{8, true, false, false, -1}, {lo}, {hi}); }

// Weights per output channel, symmetric narrow int8.
QParams weight_params(const Tensor& w) {
  const int64_t oc = w.size(0), k = w.numel() / oc;
  const auto v = w.to_vector<float>();
  std::vector<float> lo(static_cast<size_t>(oc)), hi(static_cast<size_t>(oc));
  for (int64_t c = 0; c < oc; ++c) {
    lo[size_t(c)] = hi[size_t(c)] = 0;
    for (int64_t i = 0; i < k; ++i) {
      lo[size_t(c)] = std::min(lo[size_t(c)], v[size_t(c * k + i)]);
      hi[size_t(c)] = std::max(hi[size_t(c)], v[size_t(c * k + i)]);
    }
  }
  return qparams(QSpec{8, true, true, true, 0}, lo, hi);
}

}  // namespace

TEST(IntegerSim, Conv2dEqualsScalarIntegerReference) {
  Generator g(21);
  for (const auto& [groups, stride, pad] : {std::tuple{1, 1, 1}, std::tuple{1, 2, 0}, std::tuple{4, 1, 1}}) {
    const int64_t n = 2, c = 4, h = 7, w = 6, oc = 8, k = 3;
    const QParams in = act(-1.5f, 2.5f), out = act(-4.f, 6.f);
    const Tensor x = fake_quantize(mul(randn({n, c, h, w}, g), 1.2), in);  // on the input grid
    const Tensor wt = mul(randn({oc, c / groups, k, k}, g), 0.3);
    const Tensor b = mul(randn({oc}, g), 0.5);
    const QParams wq = weight_params(wt);
    Conv2dParams opt;
    opt.sh = opt.sw = stride;
    opt.ph = opt.pw = pad;
    opt.groups = groups;
    const Tensor y = integer_conv2d(x, in, wt, wq, b, out, opt);

    const auto xq = quantize(x, in).to_vector<int8_t>();
    const auto wqv = quantize(wt, wq).to_vector<int8_t>();
    const auto bv = b.to_vector<float>();
    const int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    ASSERT_EQ(y.shape(), (Shape{n, oc, oh, ow}));
    const auto yv = y.to_vector<float>();
    const int64_t cpg = c / groups, opg = oc / groups;
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t o = 0; o < oc; ++o) {
        const int32_t bq = quantize_bias(bv[size_t(o)], in.scale[0], wq.scale[size_t(o)]);
        const FixedPointMultiplier m =
            quantize_multiplier(double(in.scale[0]) * double(wq.scale[size_t(o)]) / double(out.scale[0]));
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx) {
            int64_t acc = bq;
            const int64_t gi = o / opg;
            for (int64_t ci = 0; ci < cpg; ++ci)
              for (int64_t ky = 0; ky < k; ++ky)
                for (int64_t kx = 0; kx < k; ++kx) {
                  const int64_t iy = yy * stride - pad + ky, ix = xx * stride - pad + kx;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;  // padding is the zero point
                  const int64_t qx = xq[size_t(((ni * c + gi * cpg + ci) * h + iy) * w + ix)] - in.zero_point[0];
                  acc += qx * wqv[size_t(((o * cpg + ci) * k + ky) * k + kx)];
                }
            const int32_t code = requantize(int32_t(acc), m, out.zero_point[0], int32_t(out.qmin), int32_t(out.qmax));
            EXPECT_EQ(yv[size_t(((ni * oc + o) * oh + yy) * ow + xx)], float(code - out.zero_point[0]) * out.scale[0])
                << "groups " << groups << " at " << ni << "," << o << "," << yy << "," << xx;
          }
      }
  }
}

TEST(IntegerSim, LinearEqualsScalarIntegerReference) {
  Generator g(22);
  const int64_t n = 5, in_f = 33, out_f = 7;
  const QParams in = act(-3.f, 3.f), out = act(-10.f, 8.f);
  const Tensor x = fake_quantize(mul(randn({n, in_f}, g), 1.5), in);
  const Tensor w = mul(randn({out_f, in_f}, g), 0.2), b = randn({out_f}, g);
  const QParams wq = weight_params(w);
  const auto yv = integer_linear(x, in, w, wq, b, out).to_vector<float>();
  const auto xq = quantize(x, in).to_vector<int8_t>();
  const auto wv = quantize(w, wq).to_vector<int8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out_f; ++o) {
      int64_t acc = quantize_bias(b.to_vector<float>()[size_t(o)], in.scale[0], wq.scale[size_t(o)]);
      for (int64_t j = 0; j < in_f; ++j) acc += int64_t(xq[size_t(i * in_f + j)] - in.zero_point[0]) * wv[size_t(o * in_f + j)];
      const FixedPointMultiplier m =
          quantize_multiplier(double(in.scale[0]) * double(wq.scale[size_t(o)]) / double(out.scale[0]));
      const int32_t code = requantize(int32_t(acc), m, out.zero_point[0], int32_t(out.qmin), int32_t(out.qmax));
      EXPECT_EQ(yv[size_t(i * out_f + o)], float(code - out.zero_point[0]) * out.scale[0]) << i << "," << o;
    }
}
