// Highway kernels for f32 softmax / log_softmax and their backward: contiguous rows, and the
// strided column form for a softmax dim that is not last. ops/softmax.cc parallelizes.
#include <cmath>
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/softmax_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace finch::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Tails shorter than a vector go through this buffer, padded so the padding cannot change a
// max (−inf) or a sum (exp(−inf) = 0); 64 floats cover every x86/Arm vector width.
constexpr int kBuf = 64;

void SoftmaxRows(const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t rows, int64_t n,
                 bool log) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const float ninf = -std::numeric_limits<float>::infinity();
  HWY_ALIGN float buf[kBuf];
  for (int64_t row = 0; row < rows; ++row) {
    const float* HWY_RESTRICT xr = x + row * n;
    float* HWY_RESTRICT yr = y + row * n;
    const int64_t nv = n - n % N;  // elements covered by whole vectors
    const int64_t tail = n - nv;
    if (tail) {
      for (int64_t j = 0; j < N; ++j) buf[j] = j < tail ? xr[nv + j] : ninf;
    }
    // Pass 1: the row max, subtracted before exp so no term overflows (stable softmax).
    auto m0 = hn::Set(d, ninf), m1 = m0;
    int64_t i = 0;
    for (; i + 2 * N <= nv; i += 2 * N) {
      m0 = hn::Max(m0, hn::LoadU(d, xr + i));
      m1 = hn::Max(m1, hn::LoadU(d, xr + i + N));
    }
    for (; i < nv; i += N) m0 = hn::Max(m0, hn::LoadU(d, xr + i));
    if (tail) m1 = hn::Max(m1, hn::Load(d, buf));
    const auto vm = hn::MaxOfLanes(d, hn::Max(m0, m1));
    // Pass 2: e = exp(x − max) (stored for softmax) and its sum.
    auto s0 = hn::Zero(d), s1 = hn::Zero(d);
    for (i = 0; i + 2 * N <= nv; i += 2 * N) {
      const auto e0 = hn::Exp(d, hn::Sub(hn::LoadU(d, xr + i), vm));
      const auto e1 = hn::Exp(d, hn::Sub(hn::LoadU(d, xr + i + N), vm));
      if (!log) {
        hn::StoreU(e0, d, yr + i);
        hn::StoreU(e1, d, yr + i + N);
      }
      s0 = hn::Add(s0, e0);
      s1 = hn::Add(s1, e1);
    }
    for (; i < nv; i += N) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, xr + i), vm));
      if (!log) hn::StoreU(e, d, yr + i);
      s0 = hn::Add(s0, e);
    }
    if (tail) {
      const auto e = hn::Exp(d, hn::Sub(hn::Load(d, buf), vm));
      s1 = hn::Add(s1, e);
      if (!log) {
        hn::Store(e, d, buf);
        for (int64_t j = 0; j < tail; ++j) yr[nv + j] = buf[j];
      }
    }
    const auto vs = hn::SumOfLanes(d, hn::Add(s0, s1));
    // Pass 3: normalize (log_softmax never takes the log of a tiny ratio).
    if (!log) {
      const auto inv = hn::Div(hn::Set(d, 1.0f), vs);
      for (i = 0; i < nv; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, yr + i), inv), d, yr + i);
      const float invs = hn::GetLane(inv);
      for (; i < n; ++i) yr[i] *= invs;
    } else {
      // (x − max) − log Σ e: x − max is exact for nearby values, while x − (max + log Σ e)
      // would round the sum at the magnitude of max (1e4 loses 3 digits in f32).
      const auto c = hn::Log(d, vs);
      for (i = 0; i < nv; i += N)
        hn::StoreU(hn::Sub(hn::Sub(hn::LoadU(d, xr + i), vm), c), d, yr + i);
      const float cs = hn::GetLane(c), ms = hn::GetLane(vm);
      for (; i < n; ++i) yr[i] = (xr[i] - ms) - cs;
    }
  }
}

void SoftmaxBackwardRows(const float* HWY_RESTRICT dy, const float* HWY_RESTRICT y,
                         float* HWY_RESTRICT dx, int64_t rows, int64_t n, bool log) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  HWY_ALIGN float buf[kBuf];
  for (int64_t row = 0; row < rows; ++row) {
    const float* HWY_RESTRICT g = dy + row * n;
    const float* HWY_RESTRICT yr = y + row * n;
    float* HWY_RESTRICT o = dx + row * n;
    const int64_t nv = n - n % N;
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    int64_t i = 0;
    if (!log) {  // dot = Σ dy·y; dx = y·(dy − dot)
      for (; i + 2 * N <= nv; i += 2 * N) {
        a0 = hn::MulAdd(hn::LoadU(d, g + i), hn::LoadU(d, yr + i), a0);
        a1 = hn::MulAdd(hn::LoadU(d, g + i + N), hn::LoadU(d, yr + i + N), a1);
      }
      for (; i < nv; i += N) a0 = hn::MulAdd(hn::LoadU(d, g + i), hn::LoadU(d, yr + i), a0);
      float dot = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
      for (; i < n; ++i) dot += g[i] * yr[i];
      const auto vd = hn::Set(d, dot);
      for (i = 0; i < nv; i += N)
        hn::StoreU(hn::Mul(hn::LoadU(d, yr + i), hn::Sub(hn::LoadU(d, g + i), vd)), d, o + i);
      for (; i < n; ++i) o[i] = yr[i] * (g[i] - dot);
    } else {  // s = Σ dy; dx = dy − exp(y)·s
      for (; i + 2 * N <= nv; i += 2 * N) {
        a0 = hn::Add(a0, hn::LoadU(d, g + i));
        a1 = hn::Add(a1, hn::LoadU(d, g + i + N));
      }
      for (; i < nv; i += N) a0 = hn::Add(a0, hn::LoadU(d, g + i));
      float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
      for (; i < n; ++i) s += g[i];
      const auto vs = hn::Set(d, s);
      for (i = 0; i < nv; i += N)
        hn::StoreU(hn::NegMulAdd(hn::Exp(d, hn::LoadU(d, yr + i)), vs, hn::LoadU(d, g + i)), d,
                   o + i);
      if (i < n) {
        const int64_t tail = n - i;
        for (int64_t j = 0; j < N; ++j) buf[j] = j < tail ? yr[i + j] : 0.0f;
        hn::Store(hn::Exp(d, hn::Load(d, buf)), d, buf);
        for (int64_t j = 0; j < tail; ++j) o[i + j] = g[i + j] - buf[j] * s;
      }
    }
  }
}

// Columns [k0, k1) of a [R, I] slice: one vector of columns at a time walks R (stride I).
void SoftmaxCols(const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t r, int64_t inner,
                 int64_t k0, int64_t k1, bool log) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t k = k0;
  for (; k + N <= k1; k += N) {
    auto m = hn::Set(d, ninf);
    for (int64_t j = 0; j < r; ++j) m = hn::Max(m, hn::LoadU(d, x + j * inner + k));
    auto s = hn::Zero(d);
    for (int64_t j = 0; j < r; ++j) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + j * inner + k), m));
      if (!log) hn::StoreU(e, d, y + j * inner + k);
      s = hn::Add(s, e);
    }
    if (!log) {
      const auto inv = hn::Div(hn::Set(d, 1.0f), s);
      for (int64_t j = 0; j < r; ++j)
        hn::StoreU(hn::Mul(hn::LoadU(d, y + j * inner + k), inv), d, y + j * inner + k);
    } else {
      const auto c = hn::Log(d, s);
      for (int64_t j = 0; j < r; ++j)
        hn::StoreU(hn::Sub(hn::Sub(hn::LoadU(d, x + j * inner + k), m), c), d, y + j * inner + k);
    }
  }
  for (; k < k1; ++k) {
    float m = ninf;
    for (int64_t j = 0; j < r; ++j) m = std::fmax(m, x[j * inner + k]);
    float s = 0;
    for (int64_t j = 0; j < r; ++j) {
      const float e = std::exp(x[j * inner + k] - m);
      if (!log) y[j * inner + k] = e;
      s += e;
    }
    if (!log) {
      const float inv = 1.0f / s;
      for (int64_t j = 0; j < r; ++j) y[j * inner + k] *= inv;
    } else {
      const float c = std::log(s);
      for (int64_t j = 0; j < r; ++j) y[j * inner + k] = (x[j * inner + k] - m) - c;
    }
  }
}

void SoftmaxBackwardCols(const float* HWY_RESTRICT dy, const float* HWY_RESTRICT y,
                         float* HWY_RESTRICT dx, int64_t r, int64_t inner, int64_t k0, int64_t k1,
                         bool log) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t k = k0;
  for (; k + N <= k1; k += N) {
    auto a = hn::Zero(d);
    if (!log) {
      for (int64_t j = 0; j < r; ++j)
        a = hn::MulAdd(hn::LoadU(d, dy + j * inner + k), hn::LoadU(d, y + j * inner + k), a);
      for (int64_t j = 0; j < r; ++j) {
        const int64_t o = j * inner + k;
        hn::StoreU(hn::Mul(hn::LoadU(d, y + o), hn::Sub(hn::LoadU(d, dy + o), a)), d, dx + o);
      }
    } else {
      for (int64_t j = 0; j < r; ++j) a = hn::Add(a, hn::LoadU(d, dy + j * inner + k));
      for (int64_t j = 0; j < r; ++j) {
        const int64_t o = j * inner + k;
        hn::StoreU(hn::NegMulAdd(hn::Exp(d, hn::LoadU(d, y + o)), a, hn::LoadU(d, dy + o)), d,
                   dx + o);
      }
    }
  }
  for (; k < k1; ++k) {
    float a = 0;
    if (!log) {
      for (int64_t j = 0; j < r; ++j) a += dy[j * inner + k] * y[j * inner + k];
      for (int64_t j = 0; j < r; ++j) dx[j * inner + k] = y[j * inner + k] * (dy[j * inner + k] - a);
    } else {
      for (int64_t j = 0; j < r; ++j) a += dy[j * inner + k];
      for (int64_t j = 0; j < r; ++j)
        dx[j * inner + k] = dy[j * inner + k] - std::exp(y[j * inner + k]) * a;
    }
  }
}

}  // namespace finch::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "ops/softmax.h"

namespace finch::ops {
HWY_EXPORT(SoftmaxRows);
HWY_EXPORT(SoftmaxBackwardRows);
HWY_EXPORT(SoftmaxCols);
HWY_EXPORT(SoftmaxBackwardCols);

void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  FINCH_DISPATCH(SoftmaxRows)(x, y, rows, n, log);
}
void softmax_backward_rows_f32(const float* dy, const float* y, float* dx, int64_t rows, int64_t n,
                               bool log) {
  FINCH_DISPATCH(SoftmaxBackwardRows)(dy, y, dx, rows, n, log);
}
void softmax_cols_f32(const float* x, float* y, int64_t r, int64_t inner, int64_t k0, int64_t k1,
                      bool log) {
  FINCH_DISPATCH(SoftmaxCols)(x, y, r, inner, k0, k1, log);
}
void softmax_backward_cols_f32(const float* dy, const float* y, float* dx, int64_t r,
                               int64_t inner, int64_t k0, int64_t k1, bool log) {
  FINCH_DISPATCH(SoftmaxBackwardCols)(dy, y, dx, r, inner, k0, k1, log);
}
}  // namespace finch::ops
#endif
