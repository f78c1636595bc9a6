// quantize / dequantize / fake_quantize / fake_quantize_mask: argument checks, the [outer, C,
// inner] walk for per-channel parameters, the thread-pool split, and the scalar references.
//
// Shapes: x is viewed as [outer, C, inner] around the quantization axis (per-tensor: C = 1,
// inner = numel). The Highway kernels (quant/quantize_hwy.cc) see contiguous runs with either one
// (scale, zero point) or one per element; the split below only picks which.
#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/quantize_kernels.h"

namespace finch::quant {
namespace {

// Work per element for the pool's cost model: a float read, a code written (at most 4 bytes).
const Work kPerElement = Work::bytes(8);
// Rows shorter than this are expanded into per-element parameter arrays (one [C, inner] block)
// so the kernel still runs full vectors when the axis is the last or nearly the last one.
constexpr int64_t kMinRow = 64;

struct Layout {
  int64_t outer = 1, channels = 1, inner = 1;
};

// Checks p against itself and against a tensor of shape `shape`; returns the [outer, C, inner]
// view. `op` names the caller in the error sentence.
Layout check_params(const char* op, const Shape& shape, const QParams& p) {
  const int64_t C = p.channels();
  if (C < 1 || p.zero_point.size() != p.scale.size())
    fail(op, ": expected as many zero points as scales (at least one), got ", p.scale.size(),
         " scales and ", p.zero_point.size(), " zero points");
  if (p.qmin > p.qmax || p.qmin < -(int64_t(1) << 24) || p.qmax > (int64_t(1) << 24))
    fail(op, ": expected a code range qmin <= qmax within +-2^24, got [", p.qmin, ", ", p.qmax, "]");
  for (int64_t c = 0; c < C; ++c) {
    if (!(std::isfinite(p.scale[size_t(c)]) && p.scale[size_t(c)] > 0))
      fail(op, ": expected positive finite scales, got ", p.scale[size_t(c)], " for channel ", c);
    if (p.zero_point[size_t(c)] < p.qmin || p.zero_point[size_t(c)] > p.qmax)
      fail(op, ": expected zero points inside [", p.qmin, ", ", p.qmax, "], got ", p.zero_point[size_t(c)],
           " for channel ", c);
  }
  Layout l;
  if (!p.per_channel()) {
    if (C != 1) fail(op, ": per-tensor parameters (axis -1) must hold one scale, got ", C);
    l.inner = shape_numel(shape);
    return l;
  }
  const int64_t nd = int64_t(shape.size());
  if (p.axis >= nd)
    fail(op, ": per-channel axis ", p.axis, " is out of range for a tensor of shape ", shape_str(shape));
  if (shape[size_t(p.axis)] != C)
    fail(op, ": expected ", C, " channels along axis ", p.axis, ", got shape ", shape_str(shape));
  for (int64_t d = 0; d < p.axis; ++d) l.outer *= shape[size_t(d)];
  l.channels = C;
  for (int64_t d = p.axis + 1; d < nd; ++d) l.inner *= shape[size_t(d)];
  return l;
}

Tensor check_input(const char* op, const Tensor& x) {
  if (!x.defined()) fail(op, ": expected a defined f32 tensor, got an undefined one");
  if (x.dtype() != DType::f32) fail(op, ": expected an f32 tensor, got ", dtype_name(x.dtype()));
  return x.contiguous();
}

// The codes' dtype: the narrowest of i8, u8, i16, i32 that holds [qmin, qmax].
DType code_dtype(const QParams& p) {
  if (p.qmin >= -128 && p.qmax <= 127) return DType::i8;
  if (p.qmin >= 0 && p.qmax <= 255) return DType::u8;
  if (p.qmin >= -32768 && p.qmax <= 32767) return DType::i16;
  return DType::i32;
}

// Calls run(offset, count, args) over the whole tensor, each call a contiguous run with
// uniform or per-element parameters, split over the thread pool.
template <class Run>
void for_runs(const Layout& l, const QParams& p, const Run& run) {
  const int64_t C = l.channels, n = l.outer * C * l.inner;
  if (n == 0) return;
  std::vector<float> zf(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) zf[size_t(c)] = float(p.zero_point[size_t(c)]);
  const float lo = float(p.qmin), hi = float(p.qmax);
  if (C == 1 || l.inner >= kMinRow) {
    // Segments of `inner` elements (a per-tensor tensor is one segment) share one parameter pair.
    const int64_t seg = C == 1 ? n : l.inner;
    parallel_for(0, n, kPerElement, [&](int64_t b, int64_t e) {
      while (b < e) {
        const int64_t k = b / seg, end = std::min(e, (k + 1) * seg);
        const size_t c = size_t(k % C);
        run(b, end - b, kernels::QuantArgs{&p.scale[c], &zf[c], false, lo, hi});
        b = end;
      }
    });
    return;
  }
  // Short rows: expand the parameters over one [C, inner] block and walk the blocks.
  const int64_t block = C * l.inner;
  std::vector<float> se(static_cast<size_t>(block)), ze(static_cast<size_t>(block));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < l.inner; ++j) {
      se[size_t(c * l.inner + j)] = p.scale[size_t(c)];
      ze[size_t(c * l.inner + j)] = zf[size_t(c)];
    }
  parallel_for(0, n, kPerElement, [&](int64_t b, int64_t e) {
    while (b < e) {
      const int64_t j = b % block, end = std::min(e, b - j + block);
      run(b, end - b, kernels::QuantArgs{&se[size_t(j)], &ze[size_t(j)], true, lo, hi});
      b = end;
    }
  });
}

// The scalar rule, in the same f32 operations as the kernels: round_half_even(x / s) + z as a
// float, clamped; NaN -> z. Returns the clamped code as a float (an integer value).
float ref_code(float x, float s, float z, float lo, float hi) {
  if (std::isnan(x)) return z;
  const float r = std::nearbyint(x / s) + z;
  return std::min(std::max(r, lo), hi);
}

}  // namespace

Tensor quantize(const Tensor& x_in, const QParams& p) {
  const Tensor x = check_input("quantize", x_in);
  const Layout l = check_params("quantize", x.shape(), p);
  Tensor q = empty(x.shape(), code_dtype(p));
  const float* xp = x.data<float>();
  visit_dtype(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t> || std::is_same_v<T, int16_t> ||
                  std::is_same_v<T, int32_t>) {
      T* qp = q.data<T>();
      for_runs(l, p, [&](int64_t off, int64_t n, const kernels::QuantArgs& a) {
        if constexpr (std::is_same_v<T, int8_t>) kernels::quantize_f32_i8(xp + off, qp + off, n, a);
        else if constexpr (std::is_same_v<T, uint8_t>) kernels::quantize_f32_u8(xp + off, qp + off, n, a);
        else if constexpr (std::is_same_v<T, int16_t>) kernels::quantize_f32_i16(xp + off, qp + off, n, a);
        else kernels::quantize_f32_i32(xp + off, qp + off, n, a);
      });
    }
  });
  return q;
}

Tensor dequantize(const Tensor& q_in, const QParams& p) {
  if (!q_in.defined()) fail("dequantize: expected a defined integer tensor, got an undefined one");
  const DType dt = q_in.dtype();
  if (dt != DType::i8 && dt != DType::u8 && dt != DType::i16 && dt != DType::i32 && dt != DType::i64)
    fail("dequantize: expected integer codes (I8, U8, I16, I32 or I64), got ", dtype_name(dt));
  const Tensor q = q_in.contiguous();
  const Layout l = check_params("dequantize", q.shape(), p);
  Tensor y = empty(q.shape(), DType::f32);
  float* yp = y.data<float>();
  const int64_t inner = l.inner, C = l.channels, rows = l.outer * C;
  visit_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const T* qp = q.data<T>();
      parallel_for(0, rows, kPerElement * double(inner), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const size_t c = size_t(r % C);
          const int64_t z = p.zero_point[c];
          const float s = p.scale[c];
          if constexpr (sizeof(T) <= 2) {
            // 8- and 16-bit codes: q − z is exact in int32 and in float (|q − z| < 2^17), the same
            // value as the int64 form, and the loop vectorizes.
            const int32_t z32 = int32_t(z);
            for (int64_t j = r * inner; j < (r + 1) * inner; ++j) yp[j] = float(int32_t(qp[j]) - z32) * s;
          } else {
            for (int64_t j = r * inner; j < (r + 1) * inner; ++j) yp[j] = float(int64_t(qp[j]) - z) * s;
          }
        }
      });
    }
  });
  return y;
}

Tensor fake_quantize(const Tensor& x_in, const QParams& p) {
  const Tensor x = check_input("fake_quantize", x_in);
  const Layout l = check_params("fake_quantize", x.shape(), p);
  Tensor y = empty(x.shape(), DType::f32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for_runs(l, p, [&](int64_t off, int64_t n, const kernels::QuantArgs& a) {
    kernels::fake_quantize_f32(xp + off, yp + off, n, a);
  });
  return y;
}

Tensor fake_quantize_mask(const Tensor& x_in, const QParams& p) {
  const Tensor x = check_input("fake_quantize_mask", x_in);
  const Layout l = check_params("fake_quantize_mask", x.shape(), p);
  Tensor m = empty(x.shape(), DType::b8);
  const float* xp = x.data<float>();
  uint8_t* mp = reinterpret_cast<uint8_t*>(m.data<bool>());  // b8 is one byte holding 0 or 1
  for_runs(l, p, [&](int64_t off, int64_t n, const kernels::QuantArgs& a) {
    kernels::fake_quantize_mask_f32(xp + off, mp + off, n, a);
  });
  return m;
}

namespace reference {

// x: [outer, C, inner] (contiguous copy); q: same shape, dtype per code_dtype().
Tensor quantize(const Tensor& x_in, const QParams& p) {
  const Tensor x = check_input("quantize", x_in);
  const Layout l = check_params("quantize", x.shape(), p);
  Tensor q = empty(x.shape(), code_dtype(p));
  const float* xp = x.data<float>();
  visit_dtype(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      T* qp = q.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const size_t c = size_t((i / l.inner) % l.channels);
        qp[i] = T(ref_code(xp[i], p.scale[c], float(p.zero_point[c]), float(p.qmin), float(p.qmax)));
      }
    }
  });
  return q;
}

// x, y: [outer, C, inner]; y = (code - z) * s, NaN stays NaN.
Tensor fake_quantize(const Tensor& x_in, const QParams& p) {
  const Tensor x = check_input("fake_quantize", x_in);
  const Layout l = check_params("fake_quantize", x.shape(), p);
  Tensor y = empty(x.shape(), DType::f32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const size_t c = size_t((i / l.inner) % l.channels);
    const float z = float(p.zero_point[c]);
    const float code = ref_code(xp[i], p.scale[c], z, float(p.qmin), float(p.qmax));
    yp[i] = std::isnan(xp[i]) ? xp[i] : (code - z) * p.scale[c];
  }
  return y;
}

}  // namespace reference
}  // namespace finch::quant
