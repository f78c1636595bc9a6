// The elementwise optimizer update kernels: a scalar reference (F32/F64, plain loops) and the
// Highway F32 kernel checked against it. One pass over p, g and the state buffers.
// Shapes: every pointer addresses n contiguous elements.
#pragma once

#include <cstdint>

namespace finch::optim::kernels {

struct AdamScalars {
  double decay;      // AdamW's 1 − lr·wd (1 for Adam)
  double l2;         // Adam's wd (0 for AdamW)
  double beta1, beta2;
  double step_size;  // lr / (1 − β1ᵗ)
  double bc2_sqrt;   // √(1 − β2ᵗ)
  double eps;
};

// p = p·decay;  g' = g + l2·p;  m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'·g';
// v̂ = max(v̂, v) when vmax is given (amsgrad);  p = p − step_size·m / (√v̂ / bc2_sqrt + eps).
// Scalars are cast to T first and no operation is fused, as in torch's kernels, so the
// Highway kernel (no FMA either) matches this loop bit for bit.
template <typename T>
void adam_reference(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamScalars& s) {
  const T decay = T(s.decay), l2 = T(s.l2), b1 = T(s.beta1), b2 = T(s.beta2);
  const T one_m_b1 = T(1.0 - s.beta1), one_m_b2 = T(1.0 - s.beta2);
  const T neg_step = T(-s.step_size), bc2 = T(s.bc2_sqrt), eps = T(s.eps);
  for (int64_t i = 0; i < n; ++i) {
    const T pi = p[i] * decay;
    const T gi = g[i] + l2 * pi;
    const T mi = m[i] * b1 + one_m_b1 * gi;
    const T vi = v[i] * b2 + (one_m_b2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    T vu = vi;
    if (vmax) {
      vu = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vu;
    }
    const T denom = T(__builtin_sqrt(double(vu))) / bc2 + eps;  // sqrt of a float is exact in double
    p[i] = pi + neg_step * (mi / denom);
  }
}

// The Highway kernel (F32, best target at run time). vmax may be null.
void adam_f32(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, const AdamScalars& s);

}  // namespace finch::optim::kernels
