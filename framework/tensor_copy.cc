// Copies between layouts and dtypes, element access, and the tensor factories.
#include <cmath>

#include "framework/checked_math.h"
#include "framework/f16_convert.h"
#include "framework/grad_mode.h"
#include "framework/tensor.h"

namespace finch {

namespace {

// dst[i] = convert(src[i]) over a shared shape, both strided. The innermost dim is a plain loop
// (the hot part); outer dims are walked with an odometer so any rank works.
template <typename D, typename S>
void strided_copy(D* dst, const Shape& dst_st, const S* src, const Shape& src_st, const Shape& shape) {
  const int64_t nd = int64_t(shape.size());
  if (nd == 0) {
    dst[0] = from_double<D>(to_double(src[0]));
    return;
  }
  if (shape_numel(shape) == 0) return;
  const int64_t inner = shape.back(), ds = dst_st.back(), ss = src_st.back();
  Shape idx(size_t(nd), 0);
  const int64_t outer = shape_numel(shape) / inner;
  for (int64_t o = 0; o < outer; ++o) {
    int64_t doff = 0, soff = 0;
    for (int64_t d = 0; d < nd - 1; ++d) {
      doff += idx[size_t(d)] * dst_st[size_t(d)];
      soff += idx[size_t(d)] * src_st[size_t(d)];
    }
    D* dp = dst + doff;
    const S* sp = src + soff;
    if constexpr (std::is_same_v<D, S>) {
      for (int64_t i = 0; i < inner; ++i) dp[i * ds] = sp[i * ss];
    } else {
      for (int64_t i = 0; i < inner; ++i) dp[i * ds] = from_double<D>(to_double(sp[i * ss]));
    }
    for (int64_t d = nd - 2; d >= 0; --d) {
      if (++idx[size_t(d)] < shape[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
  }
}

int64_t linear_offset(const Tensor& t, const Shape& index, const char* op) {
  if (int64_t(index.size()) != t.dim())
    fail(op, ": index ", shape_str(index), " has ", index.size(), " entries for a ", t.dim(),
         "-d tensor");
  int64_t off = 0;
  for (size_t d = 0; d < index.size(); ++d) {
    int64_t i = index[d];
    const int64_t n = t.shape()[d];
    if (i < -n || i >= n)
      fail(op, ": index ", shape_str(index), " is out of range for shape ", shape_str(t.shape()));
    if (i < 0) i += n;
    off += i * t.strides()[d];
  }
  return off;
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  if (requires_grad() && GradMode::enabled())
    fail("copy_ into a tensor that requires grad; run it under NoGradGuard");
  const Tensor s = src.dim() == dim() && src.shape() == shape() ? src : src.detach().expand(shape());
  if (dtype() == s.dtype() && is_contiguous() && s.is_contiguous()) {
    if (raw_data() != s.raw_data()) std::memmove(raw_data(), s.raw_data(), nbytes());
    return *this;
  }
  // f16 <-> f32 (fp16 programs, mixed precision) on the CPU's conversion instructions.
  if (is_contiguous() && s.is_contiguous() && dtype() == DType::f32 && s.dtype() == DType::f16) {
    f16_to_f32_array(static_cast<const f16*>(s.raw_data()), numel(), static_cast<float*>(raw_data()));
    return *this;
  }
  if (is_contiguous() && s.is_contiguous() && dtype() == DType::f16 && s.dtype() == DType::f32) {
    f32_to_f16_array(static_cast<const float*>(s.raw_data()), numel(), static_cast<f16*>(raw_data()));
    return *this;
  }
  visit_dtype(dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    visit_dtype(s.dtype(), [&](auto stag) {
      using S = decltype(stag);
      strided_copy(static_cast<D*>(raw_data()), strides(), static_cast<const S*>(s.raw_data()),
                   s.strides(), shape());
    });
  });
  return *this;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype());
  out.copy_(detach());
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  check_no_grad_view("contiguous");
  return clone();
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  check_no_grad_view("to");
  Tensor out = empty(shape(), t);
  out.copy_(detach());
  return out;
}

Tensor& Tensor::fill_(double value) {
  if (requires_grad() && GradMode::enabled())
    fail("fill_ on a tensor that requires grad; run it under NoGradGuard");
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = from_double<T>(value);
    T* p = static_cast<T*>(raw_data());
    if (is_contiguous()) {
      const int64_t n = numel();
      for (int64_t i = 0; i < n; ++i) p[i] = v;
    } else {
      for_each_index(shape(), [&](int64_t, const Shape& idx) {
        int64_t off = 0;
        for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides()[d];
        p[off] = v;
      });
    }
  });
  return *this;
}

double Tensor::item() const {
  if (numel() != 1) fail("item: the tensor has ", numel(), " elements (shape ", shape_str(shape()), "), expected 1");
  return visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    return to_double(*static_cast<const T*>(raw_data()));
  });
}

double Tensor::get(const Shape& index) const {
  const int64_t off = linear_offset(*this, index, "Tensor::get");
  return visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    return to_double(static_cast<const T*>(raw_data())[off]);
  });
}

void Tensor::set(const Shape& index, double value) const {
  const int64_t off = linear_offset(*this, index, "Tensor::set");
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(raw_data())[off] = from_double<T>(value);
  });
}

// --- factories ---

Tensor empty(const Shape& shape, DType dtype) {
  const int64_t bytes = checked_mul(checked_numel(shape, "empty"), int64_t(dtype_size(dtype)), "empty (bytes)");
  auto storage = std::make_shared<Storage>(size_t(bytes));
  return Tensor(std::move(storage), dtype, shape, contiguous_strides(shape), 0);
}

Tensor zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }

Tensor arange(double start, double end, double step, DType dtype) {
  if (step == 0) fail("arange: step must be non-zero");
  const double span = (end - start) / step;
  const int64_t n = span > 0 ? int64_t(std::ceil(span)) : 0;
  Tensor t = empty({n}, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = from_double<T>(start + double(i) * step);
  });
  return t;
}

Tensor scalar_tensor(double value, DType dtype) { return full({}, value, dtype); }

int64_t first_non_finite(const Tensor& t) {
  if (!is_floating(t.dtype())) return -1;
  const Tensor f = t.dtype() == DType::f32 || t.dtype() == DType::f64 ? t.contiguous() : t.to(DType::f32).contiguous();
  const int64_t n = f.numel();
  if (f.dtype() == DType::f64) {
    const double* p = f.data<double>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return i;
  } else {
    const float* p = f.data<float>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return i;
  }
  return -1;
}

}  // namespace finch
