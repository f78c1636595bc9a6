// Tensor: a handle to shared storage with a dtype, shape, strides and offset, plus the autograd
// metadata (requires_grad, grad, grad_fn) so there is one tensor type.
//
// Copying a Tensor shares it (like PyTorch); views (reshape, permute, narrow, expand, ...) share
// the storage and never copy; contiguous()/clone() do. Member functions here are the raw,
// non-recording forms: on a tensor that requires grad, while grad mode is on, they refuse to run
// (the gradient would be lost silently) and point to the differentiable free function in
// autograd/ instead.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "framework/dtype.h"
#include "framework/error.h"
#include "framework/storage.h"

namespace finch {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// Wraps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

namespace autograd {
class Node;
}
class Tensor;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (like an empty optional)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A new tensor over `storage` (no copy); the caller guarantees the bytes cover the view.
  Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Shape strides, int64_t offset);

  bool defined() const { return impl_ != nullptr; }
  DType dtype() const;
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;  // in elements
  int64_t dim() const;
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  // True when this handle is the only reference to its metadata and its storage, so the data
  // can be taken over instead of copied (the autograd engine does this with gradients).
  bool is_sole_owner() const;

  // Pointer to the first element (storage + offset). Checks that T matches the dtype.
  template <typename T>
  T* data() const {
    check_dtype(dtype_v<T>, "Tensor::data");
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // --- views (never copy) ---
  Tensor view(const Shape& shape) const;     // needs compatible strides; one -1 allowed
  Tensor reshape(const Shape& shape) const;  // view when possible, else a contiguous copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor expand(const Shape& shape) const;          // -1 keeps a size; size-1 dims get stride 0
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // --- copies ---
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // always a new contiguous tensor
  Tensor to(DType dtype) const;  // itself when the dtype already matches
  // Copies src into this tensor (broadcasting src to this shape, converting the dtype).
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // --- element access (for tests and debugging; not for hot loops) ---
  double item() const;  // a one-element tensor's value
  double get(const Shape& index) const;
  void set(const Shape& index, double value) const;
  template <typename T>
  std::vector<T> to_vector() const;  // row-major copy, converted to T
  std::string str() const;           // printed like PyTorch's repr

  // --- autograd metadata (the engine lives in autograd/) ---
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);
  // The accumulated gradient of a leaf (undefined until backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const;  // which output of grad_fn this tensor is
  void set_grad_fn(std::shared_ptr<autograd::Node> fn, uint32_t output_nr) const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  // Shares the data, drops the autograd history (like torch's detach()).
  Tensor detach() const;
  // The raw-view guard: throws when `op` would silently drop a gradient.
  void check_no_grad_view(const char* op) const;

  struct AutogradMeta;
  AutogradMeta* autograd_meta() const;  // null when this tensor never touched autograd

 private:
  void check_dtype(DType expected, const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

struct Tensor::AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;
  // A leaf's gradient accumulator, cached so two uses of one leaf feed one node.
  std::weak_ptr<autograd::Node> grad_accumulator;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  DType dtype = DType::f32;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  std::unique_ptr<Tensor::AutogradMeta> autograd;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// --- factories ---
Tensor empty(const Shape& shape, DType dtype = DType::f32);
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// [start, end) in steps of `step`, like torch.arange.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
inline Tensor arange(double end, DType dtype = DType::f32) { return arange(0.0, end, 1.0, dtype); }
// A tensor holding a copy of `values`, reshaped to `shape` (numel must match).
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape);
// A 1-element 0-d tensor.
Tensor scalar_tensor(double value, DType dtype = DType::f32);

// Row-major index of the first NaN or infinity of a float tensor (f32, f64, f16, bf16), or -1
// when every element is finite or the dtype is not a float: the one check behind refusing a
// diverged checkpoint, a program's weights and training's weights.
int64_t first_non_finite(const Tensor& t);

// Iterates the multi-index of `shape` in row-major order, calling fn(linear_index, index).
// The strided-copy and printing code use it; kernels have their own loops.
template <typename F>
void for_each_index(const Shape& shape, F&& fn) {
  const int64_t n = shape_numel(shape);
  Shape idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    fn(i, idx);
    for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// --- template definitions ---
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  FINCH_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_v<T>);
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<size_t>(numel()));
  const char* base = static_cast<const char*>(raw_data());
  const size_t es = dtype_size(dtype());
  const Shape& st = strides();
  visit_dtype(dtype(), [&](auto tag) {
    using S = decltype(tag);
    for_each_index(shape(), [&](int64_t i, const Shape& idx) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * st[d];
      S v;
      std::memcpy(&v, base + off * int64_t(es), sizeof(S));
      // Same type or integer to integer: copied as is (through double, an int64 above 2^53,
      // such as a generator's state word, would lose its low bits).
      if constexpr (std::is_same_v<S, T>)
        out[size_t(i)] = v;
      else if constexpr (std::is_integral_v<S> && std::is_integral_v<T>)
        out[size_t(i)] = static_cast<T>(v);
      else
        out[size_t(i)] = from_double<T>(to_double(v));
    });
  });
  return out;
}

}  // namespace finch
