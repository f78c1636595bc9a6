// Course example 05 (docs/course/05-quantization.md): one int8 convolution by hand — qparams,
// int8 codes, int32 accumulation, requantization with a fixed-point multiplier — compared with
// the float result, with finch's reference kernel and with its optimized kernel.
//
// Shapes: x [N=1, C=3, H=8, W=8], w [OC=4, C, KH=3, KW=3], padding 1 → y [1, OC, 8, 8].
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "kernels/qparams.h"
#include "kernels/qs8_conv.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "kernels/requant.h"

using namespace finch;
using namespace finch::quant;

namespace {
constexpr int64_t C = 3, H = 8, W = 8, OC = 4, K = 3;

std::pair<float, float> range_of(const float* p, int64_t n) {
  float lo = p[0], hi = p[0];
  for (int64_t i = 1; i < n; ++i) lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
  return {lo, hi};
}
int64_t differing(const Tensor& a, const Tensor& b) {
  const std::vector<int64_t> va = a.to_vector<int64_t>(), vb = b.to_vector<int64_t>();
  int64_t d = 0;
  for (size_t i = 0; i < va.size(); ++i) d += va[i] != vb[i];
  return d;
}
}  // namespace

int main() {
  set_num_threads(1);
  NoGradGuard ng;
  Generator gen(5);
  const Tensor x = rand({1, C, H, W}, gen) * 4.0 - 1.0;  // activations in [-1, 3): not symmetric
  const Tensor w = randn({OC, C, K, K}, gen) * 0.3;
  const Tensor b = randn({OC}, gen) * 0.1;
  Conv2dParams cp;
  cp.ph = cp.pw = 1;
  const Tensor y = conv2d(x, w, b, cp);  // the float answer we approximate

  // 1. qparams: a range [lo, hi] → scale s and zero point z, so that x ≈ s·(q − z).
  //    Activations: affine int8, s = (hi − lo)/255, z = −128 − round(lo/s).
  //    Weights: symmetric per output channel, narrow (−127..127), s = max|w|/127, z = 0.
  QSpec act;  // int8, affine, per-tensor
  QSpec wsp;
  wsp.symmetric = true, wsp.narrow = true, wsp.axis = 0;
  auto [xlo, xhi] = range_of(x.data<float>(), x.numel());
  auto [ylo, yhi] = range_of(y.data<float>(), y.numel());
  const QParams px = qparams(act, {xlo}, {xhi}), py = qparams(act, {ylo}, {yhi});
  std::vector<float> wlo(OC), whi(OC);
  for (int64_t o = 0; o < OC; ++o) std::tie(wlo[o], whi[o]) = range_of(w.data<float>() + o * C * K * K, C * K * K);
  const QParams pw = qparams(wsp, wlo, whi);
  std::printf("x range [%.4f, %.4f] -> s_x %.6f z_x %d\n", xlo, xhi, px.scale[0], px.zero_point[0]);
  std::printf("y range [%.4f, %.4f] -> s_y %.6f z_y %d\n", ylo, yhi, py.scale[0], py.zero_point[0]);
  for (int64_t o = 0; o < OC; ++o) std::printf("w[%lld] max|w| %.4f -> s_w %.6f\n", static_cast<long long>(o),
                                               std::max(-wlo[o], whi[o]), pw.scale[o]);

  // 2. Codes by hand: q = clamp(round_half_even(x / s) + z, −128, 127), the division in f32.
  const float sx = px.scale[0];
  const int32_t zx = px.zero_point[0];
  Tensor qx = empty(x.shape(), DType::i8), qw = empty(w.shape(), DType::i8);
  for (int64_t i = 0; i < x.numel(); ++i)
    qx.data<int8_t>()[i] = int8_t(std::clamp<float>(std::nearbyint(x.data<float>()[i] / sx) + float(zx), -128, 127));
  for (int64_t i = 0; i < w.numel(); ++i)
    qw.data<int8_t>()[i] = int8_t(std::clamp<float>(std::nearbyint(w.data<float>()[i] / pw.scale[i / (C * K * K)]), -127, 127));
  std::printf("x[0,0,0,0:4] = %.4f %.4f %.4f %.4f -> codes %d %d %d %d\n", x.get({0, 0, 0, 0}), x.get({0, 0, 0, 1}),
              x.get({0, 0, 0, 2}), x.get({0, 0, 0, 3}), int(qx.get({0, 0, 0, 0})), int(qx.get({0, 0, 0, 1})),
              int(qx.get({0, 0, 0, 2})), int(qx.get({0, 0, 0, 3})));
  std::printf("codes differing from finch's quantize(): x %lld, w %lld\n",
              static_cast<long long>(differing(qx, quantize(x, px))), static_cast<long long>(differing(qw, quantize(w, pw))));

  // 3. int32 accumulation: y ≈ s_x·s_w·acc with acc = Σ (q_x − z_x)·q_w + q_b and the bias
  //    quantized at scale s_x·s_w (zero point 0) so it adds straight into the accumulator.
  //    Padded positions are skipped: they stand for x = 0, i.e. q_x = z_x, which adds nothing.
  std::vector<int32_t> qb(OC), acc(size_t(OC * H * W));
  for (int64_t o = 0; o < OC; ++o) qb[size_t(o)] = int32_t(std::nearbyint(double(b.data<float>()[o]) / (double(sx) * double(pw.scale[o]))));
  int32_t acc_max = 0;
  for (int64_t o = 0; o < OC; ++o)
    for (int64_t oh = 0; oh < H; ++oh)
      for (int64_t ow = 0; ow < W; ++ow) {
        int32_t a = qb[size_t(o)];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t kh = 0; kh < K; ++kh)
            for (int64_t kw = 0; kw < K; ++kw) {
              const int64_t ih = oh + kh - 1, iw = ow + kw - 1;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              a += (int32_t(qx.data<int8_t>()[(c * H + ih) * W + iw]) - zx) *
                   int32_t(qw.data<int8_t>()[((o * C + c) * K + kh) * K + kw]);
            }
        acc[size_t((o * H + oh) * W + ow)] = a;
        acc_max = std::max(acc_max, std::abs(a));
      }
  std::printf("bias codes %d %d %d %d; acc[0,0,0,0:4] = %d %d %d %d; max|acc| %d (int32 holds 2^31)\n", qb[0], qb[1],
              qb[2], qb[3], acc[0], acc[1], acc[2], acc[3], acc_max);

  // 4. Requantization: q_y = z_y + round(M·acc), M = s_x·s_w / s_y < 1, done in integers as
  //    M ≈ m·2^−(31+shift) with m a 31-bit integer: one 64-bit product, one rounding shift.
  Tensor qy = empty(y.shape(), DType::i8);
  const int32_t zy = py.zero_point[0];
  std::vector<FixedPointMultiplier> fm(OC);
  for (int64_t o = 0; o < OC; ++o) {
    const double M = double(sx) * double(pw.scale[o]) / double(py.scale[0]);
    fm[size_t(o)] = quantize_multiplier(M);
    std::printf("channel %lld: M = %.9f = %d * 2^-%d\n", static_cast<long long>(o), M, fm[size_t(o)].multiplier,
                fm[size_t(o)].total_shift());
    for (int64_t p = 0; p < H * W; ++p) {
      const int64_t prod = int64_t(acc[size_t(o * H * W + p)]) * fm[size_t(o)].multiplier;
      const int n = fm[size_t(o)].total_shift();
      const int64_t r = (prod + (int64_t(1) << (n - 1))) >> n;  // round half toward +infinity
      qy.data<int8_t>()[o * H * W + p] = int8_t(std::clamp<int64_t>(zy + r, -128, 127));
    }
  }

  // 5. Compare. Float: the int8 result dequantized, against the float conv, in units of s_y.
  const Tensor yhat = dequantize(qy, py);
  double worst = 0, mean_err = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double e = std::fabs(double(yhat.data<float>()[i]) - double(y.data<float>()[i])) / py.scale[0];
    worst = std::max(worst, e), mean_err += e / double(y.numel());
  }
  std::printf("int8 vs float: max error %.3f s_y, mean %.3f s_y (s_y = %.6f)\n", worst, mean_err, py.scale[0]);
  // Exact: finch's scalar reference kernel and its optimized kernel must give the same codes.
  const Tensor bias_t = from_vector<int32_t>(qb, {OC});
  const Tensor ref = reference::qconv2d(qx, zx, qw, bias_t, reference::rq_tensor(fm), cp, zy, -128, 127, DType::i8);
  const kernels::QConv2d fast(qw, bias_t, fm, cp, DType::i8, zx, zy, -128, 127, DType::i8);
  std::printf("codes differing from reference::qconv2d: %lld of %lld\n", static_cast<long long>(differing(qy, ref)),
              static_cast<long long>(qy.numel()));
  std::printf("codes differing from kernels::QConv2d:   %lld of %lld\n",
              static_cast<long long>(differing(qy, fast.run(qx))), static_cast<long long>(qy.numel()));
  return differing(qy, ref) == 0 && differing(qy, fast.run(qx)) == 0 ? 0 : 1;
}
