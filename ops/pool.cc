// Pooling kernels: each output window's bounds are computed once per row/column, planes run in
// parallel (N·C independent planes), and the references recompute everything per output.
#include "ops/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "framework/checked_math.h"
#include "framework/parallel.h"

namespace finch::ops {

namespace {

struct Planes {
  int64_t P, H, W;  // planes (N·C), height, width
  Shape lead;       // [N, C] or [C]
};

Planes planes_of(const char* op, const Tensor& x) {
  if (x.dim() != 3 && x.dim() != 4)
    fail(op, ": expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape ", shape_str(x.shape()));
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 input, got ", dtype_name(x.dtype()));
  Planes pl;
  pl.H = x.size(-2), pl.W = x.size(-1);
  pl.lead = Shape(x.shape().begin(), x.shape().end() - 2);
  pl.P = shape_numel(pl.lead);
  return pl;
}

Shape with_hw(Shape lead, int64_t h, int64_t w) {
  lead.push_back(h);
  lead.push_back(w);
  return lead;
}

void check_pool(const char* op, const Pool2dParams& p, int64_t H, int64_t W, int64_t& OH,
                int64_t& OW) {
  if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0)
    fail(op, ": expected kernel >= 1, stride >= 1 and padding >= 0, got kernel (", p.kh, ", ", p.kw,
         "), stride (", p.sh, ", ", p.sw, "), padding (", p.ph, ", ", p.pw, ")");
  if (2 * p.ph > p.kh || 2 * p.pw > p.kw)
    fail(op, ": expected padding at most half the kernel size, got padding (", p.ph, ", ", p.pw,
         ") for kernel (", p.kh, ", ", p.kw, ")");
  OH = pool_out_size(H, p.kh, p.sh, p.ph, p.ceil_mode);
  OW = pool_out_size(W, p.kw, p.sw, p.pw, p.ceil_mode);
  if (OH < 1 || OW < 1)
    fail(op, ": the input [", H, ", ", W, "] is too small for kernel (", p.kh, ", ", p.kw,
         ") with padding (", p.ph, ", ", p.pw, "): the output would be empty");
}

using Window = PoolWindow;

int64_t plane_grain(int64_t work_per_plane) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(work_per_plane, 1));
}

template <typename T>
void max_pool_impl(const T* x, const Planes& pl, const std::vector<Window>& wh,
                   const std::vector<Window>& ww, T* y, int64_t* idx) {
  const int64_t OH = int64_t(wh.size()), OW = int64_t(ww.size()), HW = pl.H * pl.W;
  parallel_for(0, pl.P, plane_grain(OH * OW * 4), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Window &h = wh[size_t(oh)], &w = ww[size_t(ow)];
          int64_t best = h.lo * pl.W + w.lo;
          T m = -std::numeric_limits<T>::infinity();
          for (int64_t ih = h.lo; ih < h.hi; ++ih)
            for (int64_t iw = w.lo; iw < w.hi; ++iw) {
              const T v = xp[ih * pl.W + iw];
              // NaN propagates (as torch): a NaN beats everything after it.
              if (v > m || std::isnan(v)) {
                m = v;
                best = ih * pl.W + iw;
                if (std::isnan(v)) goto done;
              }
            }
        done:
          y[(p * OH + oh) * OW + ow] = m;
          idx[(p * OH + oh) * OW + ow] = best;
        }
    }
  });
}

// Mean over windows; `inclusive` divides by the padded span, else by the clipped area.
template <typename T>
void avg_pool_impl(const T* x, const Planes& pl, const std::vector<Window>& wh,
                   const std::vector<Window>& ww, bool inclusive, T* y) {
  const int64_t OH = int64_t(wh.size()), OW = int64_t(ww.size()), HW = pl.H * pl.W;
  if (OH == 1 && OW == 1 && wh[0].lo == 0 && wh[0].hi == pl.H && ww[0].lo == 0 && ww[0].hi == pl.W) {
    // Global pooling (a classifier head): the loop below sums each plane as one dependent chain
    // of adds, latency-bound; here 8 planes advance together, each still summed in the same
    // order (row by row), so the results are bit-identical.
    const int64_t div = inclusive ? wh[0].span * ww[0].span : HW;
    parallel_for(0, (pl.P + 7) / 8, plane_grain(HW * 8), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t p0 = b * 8, n = std::min<int64_t>(8, pl.P - p0);
        T acc[8] = {};
        for (int64_t i = 0; i < HW; ++i)
          for (int64_t k = 0; k < 8; ++k)
            if (k < n) acc[k] += x[(p0 + k) * HW + i];
        for (int64_t k = 0; k < n; ++k) y[p0 + k] = div > 0 ? acc[k] / T(div) : T(0);
      }
    });
    return;
  }
  parallel_for(0, pl.P, plane_grain(OH * OW * 4), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Window &h = wh[size_t(oh)], &w = ww[size_t(ow)];
          T acc = 0;
          for (int64_t ih = h.lo; ih < h.hi; ++ih)
            for (int64_t iw = w.lo; iw < w.hi; ++iw) acc += xp[ih * pl.W + iw];
          const int64_t div = inclusive ? h.span * w.span : (h.hi - h.lo) * (w.hi - w.lo);
          y[(p * OH + oh) * OW + ow] = div > 0 ? acc / T(div) : T(0);
        }
    }
  });
}

template <typename T>
void avg_pool_backward_impl(const T* dy, const Planes& pl, const std::vector<Window>& wh,
                            const std::vector<Window>& ww, bool inclusive, T* dx) {
  const int64_t OH = int64_t(wh.size()), OW = int64_t(ww.size()), HW = pl.H * pl.W;
  parallel_for(0, pl.P, plane_grain(OH * OW * 4), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Window &h = wh[size_t(oh)], &w = ww[size_t(ow)];
          const int64_t div = inclusive ? h.span * w.span : (h.hi - h.lo) * (w.hi - w.lo);
          if (div <= 0) continue;
          const T g = dy[(p * OH + oh) * OW + ow] / T(div);
          for (int64_t ih = h.lo; ih < h.hi; ++ih)
            for (int64_t iw = w.lo; iw < w.hi; ++iw) dxp[ih * pl.W + iw] += g;
        }
    }
  });
}

template <typename F>
void by_dtype(DType dt, F&& f) {
  if (dt == DType::f32) f(float{});
  else f(double{});
}

}  // namespace

int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  if (in < 0 || k < 1 || stride < 1 || pad < 0)
    fail("pool2d: expected input ≥ 0, kernel ≥ 1, stride ≥ 1 and padding ≥ 0, found ", in, ", ", k, ", ", stride,
         ", ", pad);
  const int64_t span = checked_add(in, checked_mul(2, pad, "pool2d (padding)"), "pool2d (padded input)") - k;
  if (span < 0) return 0;
  int64_t out = span / stride + 1 + (ceil_mode && span % stride != 0 ? 1 : 0);
  // The last window must start inside the input or its left padding: (out − 1)·stride < in + pad,
  // compared without forming the product (stride can be as large as a file makes it).
  const int64_t start_limit = in + pad;  // ≤ the padded size checked above
  if (ceil_mode && (start_limit <= 0 || out - 1 > (start_limit - 1) / stride)) --out;
  return out;
}

MaxPoolResult max_pool2d(const Tensor& xin, const Pool2dParams& p) {
  const Planes pl = planes_of("max_pool2d", xin);
  int64_t OH, OW;
  check_pool("max_pool2d", p, pl.H, pl.W, OH, OW);
  const Tensor x = xin.contiguous();
  MaxPoolResult r{empty(with_hw(pl.lead, OH, OW), x.dtype()), empty(with_hw(pl.lead, OH, OW), DType::i64)};
  const auto wh = pool_windows(OH, pl.H, p.kh, p.sh, p.ph), ww = pool_windows(OW, pl.W, p.kw, p.sw, p.pw);
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool_impl(x.data<T>(), pl, wh, ww, r.y.data<T>(), r.indices.data<int64_t>());
  });
  return r;
}

Tensor max_pool2d_backward(const Tensor& dyin, const Tensor& indices, const Shape& x_shape) {
  if (dyin.shape() != indices.shape() || indices.dtype() != DType::i64 || x_shape.size() < 2)
    fail("max_pool2d_backward: expected a gradient and i64 indices of one shape, got ",
         shape_str(dyin.shape()), " and ", shape_str(indices.shape()), " ", dtype_name(indices.dtype()));
  const Tensor dy = dyin.contiguous(), idx = indices.contiguous();
  Tensor dx = zeros(x_shape, dy.dtype());
  const int64_t HW = x_shape[x_shape.size() - 1] * x_shape[x_shape.size() - 2];
  const int64_t O = dy.size(-1) * dy.size(-2), P = HW == 0 ? 0 : dx.numel() / HW;
  by_dtype(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = dy.data<T>();
    const int64_t* ix = idx.data<int64_t>();
    T* d = dx.data<T>();
    parallel_for(0, P, plane_grain(O), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t o = 0; o < O; ++o) d[p * HW + ix[p * O + o]] += g[p * O + o];
    });
  });
  return dx;
}

// For each output: scan kernel positions in row-major order, skip padding, keep the first max.
MaxPoolResult max_pool2d_reference(const Tensor& x, const Pool2dParams& p) {
  const Planes pl = planes_of("max_pool2d_reference", x);
  int64_t OH, OW;
  check_pool("max_pool2d_reference", p, pl.H, pl.W, OH, OW);
  const auto X = x.to_vector<double>();
  std::vector<double> y(size_t(pl.P * OH * OW));
  std::vector<int64_t> ind(y.size());
  for (int64_t c = 0; c < pl.P; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double m = -INFINITY;
        int64_t best = -1;
        for (int64_t kh = 0; kh < p.kh; ++kh)
          for (int64_t kw = 0; kw < p.kw; ++kw) {
            const int64_t ih = oh * p.sh - p.ph + kh, iw = ow * p.sw - p.pw + kw;
            if (ih < 0 || ih >= pl.H || iw < 0 || iw >= pl.W) continue;
            const double v = X[size_t((c * pl.H + ih) * pl.W + iw)];
            if (best < 0 || v > m) m = v, best = ih * pl.W + iw;
          }
        y[size_t((c * OH + oh) * OW + ow)] = m;
        ind[size_t((c * OH + oh) * OW + ow)] = best;
      }
  return {from_vector(y, with_hw(pl.lead, OH, OW)).to(x.dtype()), from_vector(ind, with_hw(pl.lead, OH, OW))};
}

Tensor avg_pool2d(const Tensor& xin, const Pool2dParams& p) {
  const Planes pl = planes_of("avg_pool2d", xin);
  int64_t OH, OW;
  check_pool("avg_pool2d", p, pl.H, pl.W, OH, OW);
  const Tensor x = xin.contiguous();
  Tensor y = empty(with_hw(pl.lead, OH, OW), x.dtype());
  const auto wh = pool_windows(OH, pl.H, p.kh, p.sh, p.ph), ww = pool_windows(OW, pl.W, p.kw, p.sw, p.pw);
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool_impl(x.data<T>(), pl, wh, ww, p.count_include_pad, y.data<T>());
  });
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dyin, const Shape& x_shape, const Pool2dParams& p) {
  const Planes pl = planes_of("avg_pool2d_backward", empty(x_shape, dyin.dtype()));
  int64_t OH, OW;
  check_pool("avg_pool2d_backward", p, pl.H, pl.W, OH, OW);
  if (dyin.shape() != with_hw(pl.lead, OH, OW))
    fail("avg_pool2d_backward: expected a gradient of shape ", shape_str(with_hw(pl.lead, OH, OW)),
         ", got ", shape_str(dyin.shape()));
  const Tensor dy = dyin.contiguous();
  Tensor dx = zeros(x_shape, dy.dtype());
  const auto wh = pool_windows(OH, pl.H, p.kh, p.sh, p.ph), ww = pool_windows(OW, pl.W, p.kw, p.sw, p.pw);
  by_dtype(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool_backward_impl(dy.data<T>(), pl, wh, ww, p.count_include_pad, dx.data<T>());
  });
  return dx;
}

// Per output: sum the in-bounds kernel cells; the divisor counts the cells inside input+padding
// (count_include_pad) or only those inside the input.
namespace {
double avg_divisor(int64_t o, int64_t in, int64_t k, int64_t s, int64_t pad, int64_t& lo, int64_t& hi) {
  const int64_t start = o * s - pad;
  int64_t span = 0;
  lo = in, hi = 0;
  for (int64_t t = 0; t < k; ++t) {
    const int64_t i = start + t;
    if (i < in + pad) ++span;  // cells past the right padding are outside (ceil_mode windows)
    if (i >= 0 && i < in) lo = std::min(lo, i), hi = std::max(hi, i + 1);
  }
  return double(span);
}
}  // namespace

Tensor avg_pool2d_reference(const Tensor& x, const Pool2dParams& p) {
  const Planes pl = planes_of("avg_pool2d_reference", x);
  int64_t OH, OW;
  check_pool("avg_pool2d_reference", p, pl.H, pl.W, OH, OW);
  const auto X = x.to_vector<double>();
  std::vector<double> y(size_t(pl.P * OH * OW));
  for (int64_t c = 0; c < pl.P; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t hlo, hhi, wlo, whi;
        const double sh = avg_divisor(oh, pl.H, p.kh, p.sh, p.ph, hlo, hhi);
        const double sw = avg_divisor(ow, pl.W, p.kw, p.sw, p.pw, wlo, whi);
        double acc = 0;
        int64_t count = 0;
        for (int64_t ih = hlo; ih < hhi; ++ih)
          for (int64_t iw = wlo; iw < whi; ++iw) acc += X[size_t((c * pl.H + ih) * pl.W + iw)], ++count;
        const double div = p.count_include_pad ? sh * sw : double(count);
        y[size_t((c * OH + oh) * OW + ow)] = div > 0 ? acc / div : 0.0;
      }
  return from_vector(y, with_hw(pl.lead, OH, OW)).to(x.dtype());
}

Tensor avg_pool2d_backward_reference(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p) {
  const Planes pl = planes_of("avg_pool2d_backward_reference", empty(x_shape, dy.dtype()));
  int64_t OH, OW;
  check_pool("avg_pool2d_backward_reference", p, pl.H, pl.W, OH, OW);
  const auto DY = dy.to_vector<double>();
  std::vector<double> dx(size_t(shape_numel(x_shape)));
  for (int64_t c = 0; c < pl.P; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t hlo, hhi, wlo, whi;
        const double sh = avg_divisor(oh, pl.H, p.kh, p.sh, p.ph, hlo, hhi);
        const double sw = avg_divisor(ow, pl.W, p.kw, p.sw, p.pw, wlo, whi);
        const double count = double(std::max<int64_t>(hhi - hlo, 0) * std::max<int64_t>(whi - wlo, 0));
        const double div = p.count_include_pad ? sh * sw : count;
        if (div <= 0) continue;
        for (int64_t ih = hlo; ih < hhi; ++ih)
          for (int64_t iw = wlo; iw < whi; ++iw)
            dx[size_t((c * pl.H + ih) * pl.W + iw)] += DY[size_t((c * OH + oh) * OW + ow)] / div;
      }
  return from_vector(dx, x_shape).to(dy.dtype());
}

Tensor adaptive_avg_pool2d(const Tensor& xin, int64_t OH, int64_t OW) {
  const Planes pl = planes_of("adaptive_avg_pool2d", xin);
  if (OH < 1 || OW < 1)
    fail("adaptive_avg_pool2d: expected an output size >= 1, got (", OH, ", ", OW, ")");
  if (pl.H < 1 || pl.W < 1)
    fail("adaptive_avg_pool2d: expected a non-empty input plane, got shape ", shape_str(xin.shape()));
  const Tensor x = xin.contiguous();
  Tensor y = empty(with_hw(pl.lead, OH, OW), x.dtype());
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool_impl(x.data<T>(), pl, adaptive_pool_windows(OH, pl.H), adaptive_pool_windows(OW, pl.W), true,
                  y.data<T>());
  });
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dyin, const Shape& x_shape) {
  const Planes pl = planes_of("adaptive_avg_pool2d_backward", empty(x_shape, dyin.dtype()));
  if (dyin.dim() != int64_t(x_shape.size()))
    fail("adaptive_avg_pool2d_backward: expected a gradient with ", x_shape.size(), " dims, got shape ",
         shape_str(dyin.shape()));
  const int64_t OH = dyin.size(-2), OW = dyin.size(-1);
  const Tensor dy = dyin.contiguous();
  Tensor dx = zeros(x_shape, dy.dtype());
  by_dtype(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool_backward_impl(dy.data<T>(), pl, adaptive_pool_windows(OH, pl.H), adaptive_pool_windows(OW, pl.W),
                           true, dx.data<T>());
  });
  return dx;
}

// Cell (oh, ow) averages rows floor(oh·H/OH) .. ceil((oh+1)·H/OH) − 1, computed in floating point.
Tensor adaptive_avg_pool2d_reference(const Tensor& x, int64_t OH, int64_t OW) {
  const Planes pl = planes_of("adaptive_avg_pool2d_reference", x);
  const auto X = x.to_vector<double>();
  std::vector<double> y(size_t(pl.P * OH * OW));
  for (int64_t c = 0; c < pl.P; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * pl.H) / double(OH)));
        const int64_t h1 = int64_t(std::ceil(double((oh + 1) * pl.H) / double(OH)));
        const int64_t w0 = int64_t(std::floor(double(ow * pl.W) / double(OW)));
        const int64_t w1 = int64_t(std::ceil(double((ow + 1) * pl.W) / double(OW)));
        double acc = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) acc += X[size_t((c * pl.H + ih) * pl.W + iw)];
        y[size_t((c * OH + oh) * OW + ow)] = acc / double((h1 - h0) * (w1 - w0));
      }
  return from_vector(y, with_hw(pl.lead, OH, OW)).to(x.dtype());
}

std::vector<PoolWindow> pool_windows(int64_t out, int64_t in, int64_t k, int64_t s, int64_t pad) {
  std::vector<PoolWindow> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t start = o * s - pad, end = std::min(start + k, in + pad);
    w[size_t(o)] = PoolWindow{std::max<int64_t>(start, 0), std::min(end, in), end - start};
  }
  return w;
}

std::vector<PoolWindow> adaptive_pool_windows(int64_t out, int64_t in) {
  std::vector<PoolWindow> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t lo = (o * in) / out, hi = ((o + 1) * in + out - 1) / out;
    w[size_t(o)] = PoolWindow{lo, hi, hi - lo};
  }
  return w;
}

}  // namespace finch::ops
