// cat, index_select, pad and their backward kernels; a parallel strided copy; references.
#include "ops/shape.h"

#include <algorithm>
#include <cstring>

#include "framework/parallel.h"

namespace finch::ops {

namespace {

// Calls fn with an unsigned integer type of the element's size: copies only move bytes.
template <typename F>
void visit_bytes(DType t, F&& fn) {
  switch (dtype_size(t)) {
    case 1: fn(uint8_t{}); break;
    case 2: fn(uint16_t{}); break;
    case 4: fn(uint32_t{}); break;
    default: fn(uint64_t{}); break;
  }
}

void check_float(const Tensor& x, const char* op) {
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 tensor, got ", dtype_name(x.dtype()));
}

// The indices as i64, each checked against [-size, size) and wrapped (torch rejects negative
// indices in index_select; we do too, to match).
std::vector<int64_t> read_index(const Tensor& index, int64_t size, const char* op) {
  if (index.dtype() != DType::i64 && index.dtype() != DType::i32)
    fail(op, ": expected an I64 or I32 index, got ", dtype_name(index.dtype()));
  if (index.dim() > 1) fail(op, ": expected a 1-D or 0-d index, got shape ", shape_str(index.shape()));
  std::vector<int64_t> idx = index.to_vector<int64_t>();
  for (int64_t i : idx)
    if (i < 0 || i >= size) fail(op, ": index ", i, " is out of range for a dim of size ", size);
  return idx;
}

void split_at(const Shape& s, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[size_t(i)];
  for (int64_t i = dim + 1; i < int64_t(s.size()); ++i) inner *= s[size_t(i)];
}

// Per padded dim: the source index of each output position (-1 = the constant value).
struct PadPlan {
  Shape out_shape;
  std::vector<std::vector<int64_t>> map;  // one per dim
};

PadPlan plan_pad(const Shape& in, const std::vector<int64_t>& pads, const std::string& mode) {
  const int64_t nd = int64_t(in.size());
  if (pads.size() % 2 != 0 || int64_t(pads.size()) > 2 * nd)
    fail("pad: expected an even number of pads, at most 2 per dim (", 2 * nd, " for shape ",
         shape_str(in), "), got ", pads.size());
  if (mode != "constant" && mode != "reflect" && mode != "replicate")
    fail("pad: expected mode \"constant\", \"reflect\" or \"replicate\", got \"", mode, "\"");
  PadPlan p;
  p.out_shape = in;
  p.map.resize(size_t(nd));
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t i = nd - 1 - d;  // pads run from the last dim backwards
    const int64_t lo = 2 * i < int64_t(pads.size()) ? pads[size_t(2 * i)] : 0;
    const int64_t hi = 2 * i + 1 < int64_t(pads.size()) ? pads[size_t(2 * i + 1)] : 0;
    const int64_t n = in[size_t(d)], on = n + lo + hi;
    if (on < 0) fail("pad: pads (", lo, ", ", hi, ") make dim ", d, " of size ", n, " negative");
    if (mode != "constant" && (lo < 0 || hi < 0))
      fail("pad: negative pads are only supported in constant mode, got (", lo, ", ", hi, ")");
    if (mode == "reflect" && (lo >= n || hi >= n) && (lo > 0 || hi > 0))
      fail("pad: reflect padding (", lo, ", ", hi, ") must be less than the size ", n, " of dim ", d);
    if (mode == "replicate" && n == 0 && (lo > 0 || hi > 0))
      fail("pad: replicate padding needs a non-empty dim ", d);
    p.out_shape[size_t(d)] = on;
    auto& m = p.map[size_t(d)];
    m.resize(size_t(on));
    for (int64_t o = 0; o < on; ++o) {
      int64_t s = o - lo;
      if (mode == "constant") {
        if (s < 0 || s >= n) s = -1;
      } else if (mode == "reflect") {
        if (s < 0) s = -s;
        if (s >= n) s = 2 * (n - 1) - s;
      } else {
        s = std::clamp<int64_t>(s, 0, n - 1);
      }
      m[size_t(o)] = s;
    }
  }
  return p;
}

// Source offset (in x's contiguous strides) of output row `row` (all dims but the last), or
// -1 when the row lies in constant padding.
int64_t pad_row_offset(const PadPlan& p, const Shape& xst, int64_t row) {
  int64_t off = 0;
  for (int64_t d = int64_t(p.out_shape.size()) - 2; d >= 0; --d) {
    const int64_t n = p.out_shape[size_t(d)];
    const int64_t s = p.map[size_t(d)][size_t(row % n)];
    row /= n;
    if (s < 0) return -1;
    off += s * xst[size_t(d)];
  }
  return off;
}

}  // namespace

void strided_copy(const Tensor& dst, const Tensor& src) {
  FINCH_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), "strided_copy: ",
              shape_str(dst.shape()), " vs ", shape_str(src.shape()));
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int64_t nd = dst.dim();
  if (nd == 0 || (dst.is_contiguous() && src.is_contiguous())) {
    std::memcpy(dst.raw_data(), src.raw_data(), dst.nbytes());
    return;
  }
  const Shape& sh = dst.shape();
  const int64_t inner = sh.back(), rows = n / inner;
  const int64_t ds = dst.strides().back(), ss = src.strides().back();
  visit_bytes(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* pd = static_cast<T*>(dst.raw_data());
    const T* ps = static_cast<const T*>(src.raw_data());
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t rem = r, od = 0, os = 0;
        for (int64_t d = nd - 2; d >= 0; --d) {
          const int64_t i = rem % sh[size_t(d)];
          rem /= sh[size_t(d)];
          od += i * dst.strides()[size_t(d)];
          os += i * src.strides()[size_t(d)];
        }
        T* o = pd + od;
        const T* s = ps + os;
        if (ds == 1 && ss == 1) {
          std::memcpy(o, s, size_t(inner) * sizeof(T));
        } else {
          for (int64_t k = 0; k < inner; ++k) o[k * ds] = s[k * ss];
        }
      }
    });
  });
}

Tensor cat(const std::vector<Tensor>& xs_in, int64_t dim_in) {
  if (xs_in.empty()) fail("cat: expected a non-empty list of tensors");
  // torch's legacy rule: 1-D empty tensors are ignored whatever the other shapes are.
  std::vector<Tensor> xs;
  for (const auto& x : xs_in)
    if (!(x.dim() == 1 && x.numel() == 0)) xs.push_back(x);
  if (xs.empty()) return empty({0}, xs_in[0].dtype());
  const Tensor& ref = xs[0];
  if (ref.dim() == 0) fail("cat: zero-dimensional tensors cannot be concatenated");
  const int64_t dim = wrap_dim(dim_in, ref.dim(), "cat");
  Shape out_shape = ref.shape();
  out_shape[size_t(dim)] = 0;
  for (size_t t = 0; t < xs.size(); ++t) {
    const Tensor& x = xs[t];
    if (x.dtype() != ref.dtype())
      fail("cat: expected every tensor to be ", dtype_name(ref.dtype()), ", tensor ", t, " is ",
           dtype_name(x.dtype()));
    bool ok = x.dim() == ref.dim();
    for (int64_t d = 0; ok && d < ref.dim(); ++d) ok = d == dim || x.size(d) == ref.size(d);
    if (!ok)
      fail("cat: expected shapes matching ", shape_str(ref.shape()), " except in dim ", dim,
           ", tensor ", t, " has shape ", shape_str(x.shape()));
    out_shape[size_t(dim)] += x.size(dim);
  }
  Tensor out = empty(out_shape, ref.dtype());
  int64_t off = 0;
  for (const auto& x : xs) {
    const int64_t n = x.size(dim);
    if (n) strided_copy(out.narrow(dim, off, n), x.detach());
    off += n;
  }
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& index) {
  const int64_t dim = x.dim() == 0 ? 0 : wrap_dim(dim_in, x.dim(), "index_select");
  const Shape xs = x.dim() == 0 ? Shape{1} : x.shape();
  const std::vector<int64_t> idx = read_index(index, xs[size_t(dim)], "index_select");
  Shape os = xs;
  os[size_t(dim)] = int64_t(idx.size());
  if (x.dim() == 0) os = index.dim() == 0 ? Shape{} : Shape{int64_t(idx.size())};
  Tensor out = empty(os, x.dtype());
  if (out.numel() == 0) return out;
  const Tensor xc = x.detach().contiguous();
  int64_t outer, inner;
  split_at(xs, dim, outer, inner);
  const int64_t D = xs[size_t(dim)], J = int64_t(idx.size());
  const size_t es = dtype_size(x.dtype());
  const char* px = static_cast<const char*>(xc.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  parallel_for(0, outer * J, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / J, j = t % J;
      std::memcpy(po + size_t(t * inner) * es, px + size_t((o * D + idx[size_t(j)]) * inner) * es,
                  size_t(inner) * es);
    }
  });
  return out;
}

Tensor index_select_backward(const Tensor& dy, const Shape& in_shape, int64_t dim_in,
                             const Tensor& index) {
  check_float(dy, "index_select_backward");
  const Shape xs = in_shape.empty() ? Shape{1} : in_shape;
  const int64_t dim = in_shape.empty() ? 0 : wrap_dim(dim_in, int64_t(in_shape.size()), "index_select_backward");
  const std::vector<int64_t> idx = read_index(index, xs[size_t(dim)], "index_select_backward");
  Tensor dx = zeros(in_shape, dy.dtype());
  if (dx.numel() == 0 || idx.empty()) return dx;
  const Tensor g = dy.detach().contiguous();
  int64_t outer, inner;
  split_at(xs, dim, outer, inner);
  const int64_t D = xs[size_t(dim)], J = int64_t(idx.size());
  // Tasks own disjoint (outer, inner-chunk) pieces of dx and walk j in order, so repeated
  // indices add up in the same order whatever the thread count.
  constexpr int64_t kChunk = 2048;
  const int64_t nic = (inner + kChunk - 1) / kChunk;
  visit_dtype(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* pd = dx.data<T>();
      const T* pg = g.data<T>();
      parallel_for(0, outer * nic, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, J * std::min(inner, kChunk))),
                   [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t o = t / nic, k0 = (t % nic) * kChunk, k1 = std::min(inner, k0 + kChunk);
          for (int64_t j = 0; j < J; ++j) {
            T* dst = pd + (o * D + idx[size_t(j)]) * inner;
            const T* src = pg + (o * J + j) * inner;
            for (int64_t k = k0; k < k1; ++k) dst[k] += src[k];
          }
        }
      });
    }
  });
  return dx;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, double value) {
  const PadPlan p = plan_pad(x.shape(), pads, mode);
  Tensor out = empty(p.out_shape, x.dtype());
  if (out.numel() == 0) return out;
  const Tensor xc = x.detach().contiguous();
  if (x.dim() == 0) return out.copy_(xc);
  const Shape xst = contiguous_strides(x.shape());
  const auto& last = p.map.back();
  const int64_t W = p.out_shape.back(), rows = out.numel() / W;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = from_double<T>(value);
    const T* px = static_cast<const T*>(xc.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / W), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        T* o = po + r * W;
        const int64_t off = pad_row_offset(p, xst, r);
        if (off < 0) {
          std::fill(o, o + W, v);
          continue;
        }
        const T* s = px + off;
        for (int64_t j = 0; j < W; ++j) {
          const int64_t sj = last[size_t(j)];
          o[j] = sj < 0 ? v : s[sj];
        }
      }
    });
  });
  return out;
}

Tensor pad_backward(const Tensor& dy, const Shape& in_shape, const std::vector<int64_t>& pads,
                    const std::string& mode) {
  check_float(dy, "pad_backward");
  const PadPlan p = plan_pad(in_shape, pads, mode);
  if (dy.shape() != p.out_shape)
    fail("pad_backward: expected dy of shape ", shape_str(p.out_shape), ", got ", shape_str(dy.shape()));
  Tensor dx = zeros(in_shape, dy.dtype());
  if (dx.numel() == 0 || dy.numel() == 0) return dx;
  const Tensor g = dy.detach().contiguous();
  if (in_shape.empty()) return dx.copy_(g);
  const Shape xst = contiguous_strides(in_shape);
  const auto& last = p.map.back();
  const int64_t W = p.out_shape.back(), rows = g.numel() / W;
  // Reflect/replicate read one input row from several output rows, so rows are summed in order;
  // when dim 0 is not padded its slices are independent and run in parallel.
  const int64_t nd = int64_t(in_shape.size());
  const bool dim0_free = nd >= 2 && int64_t(pads.size()) < 2 * nd;
  const int64_t groups = dim0_free ? p.out_shape[0] : 1, per = rows / groups;
  visit_dtype(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* pg = g.data<T>();
      T* pd = dx.data<T>();
      parallel_for(0, groups, 1, [&](int64_t b, int64_t e) {
        for (int64_t r = b * per; r < e * per; ++r) {
          const int64_t off = pad_row_offset(p, xst, r);
          if (off < 0) continue;
          const T* s = pg + r * W;
          T* o = pd + off;
          for (int64_t j = 0; j < W; ++j) {
            const int64_t sj = last[size_t(j)];
            if (sj >= 0) o[sj] += s[j];
          }
        }
      });
    }
  });
  return dx;
}

Tensor pad_reference(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode,
                     double value) {
  // out[i] = x[src(i)] per dim: src = i − lo, reflected about the edges, clamped, or the value.
  const int64_t nd = x.dim();
  Shape os = x.shape();
  std::vector<int64_t> lo(size_t(nd), 0);
  for (size_t i = 0; 2 * i < pads.size(); ++i) {
    const size_t d = size_t(nd - 1 - int64_t(i));
    lo[d] = pads[2 * i];
    os[d] += pads[2 * i] + pads[2 * i + 1];
  }
  Tensor out = empty(os, x.dtype());
  for_each_index(os, [&](int64_t, const Shape& idx) {
    Shape src(idx.size());
    bool inside = true;
    for (size_t d = 0; d < idx.size(); ++d) {
      const int64_t n = x.shape()[d];
      int64_t s = idx[d] - lo[d];
      if (mode == "reflect") {
        while (s < 0 || s >= n) s = s < 0 ? -s : 2 * (n - 1) - s;
      } else if (mode == "replicate") {
        s = std::min(std::max<int64_t>(s, 0), n - 1);
      } else if (s < 0 || s >= n) {
        inside = false;
      }
      src[d] = s;
    }
    out.set(idx, inside ? x.get(src) : value);
  });
  return out;
}

Tensor index_select_reference(const Tensor& x, int64_t dim_in, const Tensor& index) {
  const int64_t dim = wrap_dim(dim_in, x.dim(), "index_select_reference");
  const auto idx = index.to_vector<int64_t>();
  Shape os = x.shape();
  os[size_t(dim)] = int64_t(idx.size());
  Tensor out = empty(os, x.dtype());
  for_each_index(os, [&](int64_t, const Shape& i) {
    Shape s = i;
    s[size_t(dim)] = idx[size_t(i[size_t(dim)])];
    out.set(i, x.get(s));
  });
  return out;
}

}  // namespace finch::ops
