// Exact integer Conv2d/Linear units for the simulated model (see integer_sim.h).
#include "quant/integer_sim.h"

#include <cmath>
#include <vector>

#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "kernels/quantize.h"
#include "kernels/requant.h"

namespace finch::quant {

namespace {

// Per output channel scales of a weight (per-tensor: repeated).
std::vector<float> channel_scales(const QParams& wq, int64_t oc) {
  if (wq.per_channel()) {
    if (wq.axis != 0 || wq.channels() != oc)
      fail("integer unit: weights must be quantized per output channel (axis 0), got axis ", wq.axis);
    return wq.scale;
  }
  return std::vector<float>(size_t(oc), wq.scale[0]);
}

// Codes minus the zero point, as f64 (exact).
Tensor centered_codes(const Tensor& x_hat, const QParams& in) {
  const Tensor q = quantize(x_hat.contiguous(), in).to(DType::f64);
  return add(q, -double(in.zero_point[0]));
}

// acc [N, OC, ...] (f64, integer valued) + int32 bias -> requantized codes -> dequantized f32.
Tensor requantize_output(const Tensor& acc, const std::vector<int32_t>& bias_q,
                         const std::vector<FixedPointMultiplier>& m, const QParams& out) {
  const Tensor a = acc.contiguous();
  const int64_t n = a.size(0), oc = a.size(1), inner = a.numel() / (n * oc);
  Tensor y = empty(a.shape());
  const double* pa = a.data<double>();
  float* py = y.data<float>();
  const float s = out.scale[0];
  const int32_t z = out.zero_point[0];
  parallel_for(0, n * oc, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % oc;
      for (int64_t i = 0; i < inner; ++i) {
        // The accumulator rule (docs/quantization.md §10): the exact Σ + bias (the f64 sum is
        // exact, |Σ| < 2^53) reduced modulo 2^32, as the kernels' int32 lanes compute it. The
        // loader refuses programs that could reach the wrap; a hand-made unit still agrees.
        const int64_t v = int64_t(pa[r * inner + i]) + int64_t(bias_q[size_t(c)]);
        const auto acc32 = int32_t(uint32_t(uint64_t(v)));
        const int32_t code = requantize(acc32, m[size_t(c)], z, int32_t(out.qmin), int32_t(out.qmax));
        py[r * inner + i] = float(code - z) * s;
      }
    }
  });
  return y;
}

void check_params(const QParams& in, const QParams& out) {
  if (in.per_channel() || out.per_channel())
    fail("integer unit: activations must be quantized per tensor");
}

}  // namespace

Tensor integer_conv2d(const Tensor& x_hat, const QParams& in, const Tensor& w, const QParams& wq,
                      const Tensor& bias, const QParams& out, const Conv2dParams& opt) {
  check_params(in, out);
  NoGradGuard ng;
  const int64_t oc = w.size(0);
  const std::vector<float> sw = channel_scales(wq, oc);
  const Tensor qw = quantize(w.detach().contiguous(), wq).to(DType::f64);
  const Tensor acc = conv2d(centered_codes(x_hat, in), qw, Tensor(), opt);
  std::vector<float> b(size_t(oc), 0.f);
  if (bias.defined()) b = bias.detach().contiguous().to_vector<float>();
  const std::vector<int32_t> bq = quantize_bias(b, in.scale[0], sw);
  return requantize_output(acc, bq, quantize_multipliers(requant_multipliers(in.scale[0], sw, out.scale[0])), out);
}

Tensor integer_linear(const Tensor& x_hat, const QParams& in, const Tensor& w, const QParams& wq,
                      const Tensor& bias, const QParams& out) {
  check_params(in, out);
  NoGradGuard ng;
  const int64_t oc = w.size(0);
  const std::vector<float> sw = channel_scales(wq, oc);
  const Tensor qw = quantize(w.detach().contiguous(), wq).to(DType::f64);
  const Shape shape = x_hat.shape();
  const Tensor x2 = centered_codes(x_hat, in).reshape({x_hat.numel() / shape.back(), shape.back()});
  const Tensor acc = linear(x2, qw, Tensor());
  std::vector<float> b(size_t(oc), 0.f);
  if (bias.defined()) b = bias.detach().contiguous().to_vector<float>();
  const std::vector<int32_t> bq = quantize_bias(b, in.scale[0], sw);
  Tensor y = requantize_output(acc, bq, quantize_multipliers(requant_multipliers(in.scale[0], sw, out.scale[0])), out);
  Shape os = shape;
  os.back() = oc;
  return y.reshape(os);
}

}  // namespace finch::quant
