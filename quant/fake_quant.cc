// Differentiable fake quantization (straight-through and LSQ rules).
// Shape vocabulary: x viewed as [O, C, I] around the quantization axis (per-tensor: C = 1).
#include "quant/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "ops/elementwise.h"
#include "kernels/quantize.h"

namespace finch::quant {

namespace {

struct Dims {
  int64_t O = 1, C = 1, I = 1;
};

Dims dims_of(const Tensor& x, const QParams& p) {
  Dims d;
  if (!p.per_channel()) {
    d.I = x.numel();
    return d;
  }
  if (p.axis >= x.dim())
    fail("fake_quant: per-channel axis ", p.axis, " is out of range for a ", x.dim(), "-D tensor");
  for (int64_t i = 0; i < p.axis; ++i) d.O *= x.size(i);
  d.C = x.size(p.axis);
  for (int64_t i = p.axis + 1; i < x.dim(); ++i) d.I *= x.size(i);
  if (d.C != p.channels())
    fail("fake_quant: the tensor has ", d.C, " channels along axis ", p.axis, " but the parameters have ",
         p.channels());
  return d;
}

void check_input(const Tensor& x, const char* op) {
  if (x.dtype() != DType::f32) fail(op, ": expected an f32 tensor, got ", dtype_name(x.dtype()));
}

}  // namespace

Tensor fake_quant(const Tensor& x, const QParams& p) {
  check_input(x, "fake_quant");
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  const Tensor xc = x.contiguous();
  Tensor y = fake_quantize(xc, p);
  if (rec) {
    const Tensor mask = fake_quantize_mask(xc, p);
    autograd::record("fake_quantize", {x}, {y}, [mask](const autograd::Grads& g, const autograd::Needs&) {
      return autograd::Grads{ops::where(mask, g[0], zeros_like(g[0]))};
    });
  }
  return y;
}

Tensor fake_quant_lsq(const Tensor& x, const Tensor& scale, const QParams& p) {
  check_input(x, "fake_quant_lsq");
  if (scale.dtype() != DType::f32 || scale.dim() != 1 || scale.numel() != p.channels())
    fail("fake_quant_lsq: expected an f32 scale of shape [", p.channels(), "], got ", dtype_name(scale.dtype()),
         " ", shape_str(scale.shape()));
  const bool rec = autograd::should_record({x, scale});
  NoGradGuard ng;
  QParams q = p;
  const std::vector<float> s = scale.contiguous().to_vector<float>();
  for (float v : s)
    if (!(v > 0) || !std::isfinite(v)) fail("fake_quant_lsq: scales must be positive and finite, got ", v);
  q.scale = s;
  const Tensor xc = x.contiguous();
  Tensor y = fake_quantize(xc, q);
  if (!rec) return y;
  const Dims d = dims_of(xc, q);
  autograd::record(
      "fake_quantize_lsq", {x, scale}, {y},
      [xc, q, d](const autograd::Grads& g, const autograd::Needs& needs) {
        const Tensor dy = g[0].contiguous();
        const float* px = xc.data<float>();
        const float* pdy = dy.data<float>();
        Tensor dx = needs[0] ? empty(xc.shape()) : Tensor();
        float* pdx = needs[0] ? dx.data<float>() : nullptr;
        // Per channel: sum in double (the sums run over whole activations), one task per channel.
        std::vector<double> ds(size_t(d.C), 0.0);
        parallel_for(0, d.C, 1, [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c) {
            const float sc = q.scale[size_t(c)];
            const int64_t z = q.zero_point[size_t(c)];
            double acc = 0;
            for (int64_t o = 0; o < d.O; ++o) {
              const int64_t base = (o * d.C + c) * d.I;
              for (int64_t i = 0; i < d.I; ++i) {
                const float u = px[base + i] / sc;
                const float r = std::nearbyint(u);
                const double qz = double(r) + double(z);
                const bool inside = qz >= double(q.qmin) && qz <= double(q.qmax);
                if (pdx) pdx[base + i] = inside ? pdy[base + i] : 0.f;
                const double dq = inside ? double(r) - double(u)
                                         : double(qz < double(q.qmin) ? q.qmin : q.qmax) - double(z);
                acc += double(pdy[base + i]) * dq;
              }
            }
            const double n = double(d.O * d.I);
            const double qpos = std::max<double>(1.0, double(q.qmax - z));
            ds[size_t(c)] = acc / std::sqrt(n * qpos);
          }
        });
        Tensor dscale;
        if (needs[1]) {
          dscale = empty({d.C});
          for (int64_t c = 0; c < d.C; ++c) dscale.data<float>()[c] = float(ds[size_t(c)]);
        }
        return autograd::Grads{dx, dscale};
      });
  return y;
}

}  // namespace finch::quant
