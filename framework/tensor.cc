// Tensor metadata, views (which share storage and never copy) and autograd metadata access.
#include "framework/tensor.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include "framework/grad_mode.h"

namespace finch {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t d = int64_t(s.size()) - 1; d >= 0; --d) {
    st[size_t(d)] = acc;
    acc *= std::max<int64_t>(s[size_t(d)], 1);
  }
  return st;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi)
    fail(op, ": dimension ", dim, " is out of range for a tensor with ", ndim,
         " dims (expected ", lo, "..", hi, ")");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Shape strides,
               int64_t offset)
    : impl_(std::make_shared<TensorImpl>()) {
  impl_->storage = std::move(storage);
  impl_->dtype = dtype;
  impl_->shape = std::move(shape);
  impl_->strides = std::move(strides);
  impl_->offset = offset;
}

static const TensorImpl& need(const std::shared_ptr<TensorImpl>& p) {
  if (!p) fail("operation on an undefined tensor (a default-constructed finch::Tensor)");
  return *p;
}

DType Tensor::dtype() const { return need(impl_).dtype; }
const Shape& Tensor::shape() const { return need(impl_).shape; }
const Shape& Tensor::strides() const { return need(impl_).strides; }
int64_t Tensor::offset() const { return need(impl_).offset; }
int64_t Tensor::dim() const { return int64_t(shape().size()); }
int64_t Tensor::size(int64_t d) const { return shape()[size_t(wrap_dim(d, dim(), "Tensor::size"))]; }
int64_t Tensor::stride(int64_t d) const {
  return strides()[size_t(wrap_dim(d, dim(), "Tensor::stride"))];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
const std::shared_ptr<Storage>& Tensor::storage() const { return need(impl_).storage; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to misplace (as PyTorch)
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    const int64_t s = shape()[size_t(d)];
    if (s == 1) continue;  // a size-1 dim's stride never matters
    if (strides()[size_t(d)] != expected) return false;
    expected *= s;
  }
  return true;
}

bool Tensor::is_sole_owner() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage.use_count() == 1;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * int64_t(dtype_size(dtype()));
}

void Tensor::check_dtype(DType expected, const char* op) const {
  if (dtype() != expected)
    fail(op, ": the tensor holds ", dtype_name(dtype()), " but ", dtype_name(expected),
         " was requested");
}

void Tensor::check_no_grad_view(const char* op) const {
  if (requires_grad() && GradMode::enabled())
    fail("Tensor::", op, " on a tensor that requires grad would drop its gradient; use the "
         "differentiable finch::", op, " from autograd/ (or run under NoGradGuard)");
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  FINCH_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape_str(shape),
              " and strides ", shape_str(strides), " differ in length");
  return Tensor(storage(), dtype(), shape, strides, offset);
}

// Fills in one -1 and checks that the new shape holds the same number of elements.
static Shape infer_shape(const Shape& in, int64_t numel, const char* op) {
  Shape s = in;
  int64_t known = 1, neg = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (neg >= 0) fail(op, ": only one dimension can be -1, got ", shape_str(in));
      neg = int64_t(i);
    } else if (s[i] < 0) {
      fail(op, ": invalid size ", s[i], " in shape ", shape_str(in));
    } else {
      known *= s[i];
    }
  }
  if (neg >= 0) {
    if (known == 0 || numel % known != 0)
      fail(op, ": shape ", shape_str(in), " is invalid for a tensor of ", numel, " elements");
    s[size_t(neg)] = numel / known;
  } else if (known != numel) {
    fail(op, ": shape ", shape_str(in), " is invalid for a tensor of ", numel, " elements");
  }
  return s;
}

// Strides for viewing (shape, strides) as new_shape without copying, or empty when impossible.
// Groups the old dims into contiguous chunks and splits/merges within each (as ATen does).
static std::optional<Shape> view_strides(const Shape& shape, const Shape& strides,
                                         const Shape& new_shape) {
  Shape out(new_shape.size());
  // Empty tensors and 0-d tensors have no layout to respect: any shape of the same numel works.
  if (shape_numel(shape) == 0 || shape.empty()) return contiguous_strides(new_shape);
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[size_t(d)];
    if (d == 0 || (shape[size_t(d) - 1] != 1 &&
                   strides[size_t(d) - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[size_t(view_d)] == 1)) {
        out[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= new_shape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[size_t(d) - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Tensor Tensor::view(const Shape& new_shape) const {
  check_no_grad_view("view");
  const Shape s = infer_shape(new_shape, numel(), "view");
  auto st = view_strides(shape(), strides(), s);
  if (!st)
    fail("view: shape ", shape_str(s), " is not compatible with the strides ",
         shape_str(strides()), " of a ", shape_str(shape()), " tensor; use reshape()");
  return Tensor(storage(), dtype(), s, *st, offset());
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  check_no_grad_view("reshape");
  const Shape s = infer_shape(new_shape, numel(), "reshape");
  if (auto st = view_strides(shape(), strides(), s)) return Tensor(storage(), dtype(), s, *st, offset());
  Tensor c = clone();
  return Tensor(c.storage(), dtype(), s, contiguous_strides(s), 0);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  check_no_grad_view("permute");
  if (int64_t(dims.size()) != dim())
    fail("permute: got ", dims.size(), " dims for a tensor with ", dim(), " dims");
  Shape s(dims.size()), st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim(), "permute");
    if (seen[size_t(d)]) fail("permute: dimension ", d, " appears twice");
    seen[size_t(d)] = true;
    s[i] = shape()[size_t(d)];
    st[i] = strides()[size_t(d)];
  }
  return Tensor(storage(), dtype(), s, st, offset());
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  check_no_grad_view("transpose");
  std::vector<int64_t> p(static_cast<size_t>(dim()));
  for (size_t i = 0; i < p.size(); ++i) p[i] = int64_t(i);
  std::swap(p[size_t(wrap_dim(d0, dim(), "transpose"))], p[size_t(wrap_dim(d1, dim(), "transpose"))]);
  return permute(p);
}

Tensor Tensor::t() const {
  if (dim() != 2) fail("t: expected a 2-D tensor, got shape ", shape_str(shape()));
  return transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  check_no_grad_view("slice");
  d = wrap_dim(d, dim(), "slice");
  const int64_t n = shape()[size_t(d)];
  if (step <= 0) fail("slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[size_t(d)] = (end - start + step - 1) / step;
  st[size_t(d)] *= step;
  return Tensor(storage(), dtype(), s, st, offset() + start * strides()[size_t(d)]);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = shape()[size_t(d)];
  if (start < 0 || length < 0 || start + length > n)
    fail("narrow: range [", start, ", ", start + length, ") is outside dimension ", d,
         " of size ", n);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  check_no_grad_view("select");
  d = wrap_dim(d, dim(), "select");
  const int64_t n = shape()[size_t(d)];
  if (index < -n || index >= n)
    fail("select: index ", index, " is out of range for dimension ", d, " of size ", n);
  if (index < 0) index += n;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage(), dtype(), s, st, offset() + index * strides()[size_t(d)]);
}

Tensor Tensor::expand(const Shape& target) const {
  check_no_grad_view("expand");
  if (int64_t(target.size()) < dim())
    fail("expand: cannot expand shape ", shape_str(shape()), " to ", shape_str(target));
  const size_t lead = target.size() - size_t(dim());
  Shape s(target.size()), st(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      if (target[i] < 0) fail("expand: -1 is not allowed for the new leading dim ", i);
      s[i] = target[i];
      st[i] = 0;
      continue;
    }
    const int64_t have = shape()[i - lead];
    const int64_t want = target[i] == -1 ? have : target[i];
    if (have == want) {
      s[i] = have;
      st[i] = strides()[i - lead];
    } else if (have == 1) {
      s[i] = want;
      st[i] = 0;
    } else {
      fail("expand: dimension ", i, " of size ", have, " cannot be expanded to ", want,
           " (shape ", shape_str(shape()), " to ", shape_str(target), ")");
    }
  }
  return Tensor(storage(), dtype(), s, st, offset());
}

Tensor Tensor::squeeze() const {
  check_no_grad_view("squeeze");
  Shape s, st;
  for (int64_t d = 0; d < dim(); ++d)
    if (shape()[size_t(d)] != 1) {
      s.push_back(shape()[size_t(d)]);
      st.push_back(strides()[size_t(d)]);
    }
  return Tensor(storage(), dtype(), s, st, offset());
}

Tensor Tensor::squeeze(int64_t d) const {
  check_no_grad_view("squeeze");
  d = wrap_dim(d, dim(), "squeeze");
  // Always a new handle, like every view: callers may attach autograd history to the result.
  if (shape()[size_t(d)] != 1) return Tensor(storage(), dtype(), shape(), strides(), offset());
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage(), dtype(), s, st, offset());
}

Tensor Tensor::unsqueeze(int64_t d) const {
  check_no_grad_view("unsqueeze");
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  const int64_t new_stride = d < dim() ? strides()[size_t(d)] * shape()[size_t(d)] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, new_stride);
  return Tensor(storage(), dtype(), s, st, offset());
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  if (start_dim > end_dim) fail("flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t m = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) m *= shape()[size_t(d)];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end_dim + 1, shape().end());
  return reshape(s);
}

// --- autograd metadata ---

Tensor::AutogradMeta* Tensor::autograd_meta() const { return need(impl_).autograd.get(); }

static Tensor::AutogradMeta& meta_of(const std::shared_ptr<TensorImpl>& impl) {
  need(impl);
  if (!impl->autograd) impl->autograd = std::make_unique<Tensor::AutogradMeta>();
  return *impl->autograd;
}

bool Tensor::requires_grad() const {
  const AutogradMeta* m = autograd_meta();
  return m && (m->requires_grad || m->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (on && !is_floating(dtype()))
    fail("set_requires_grad: only floating-point tensors can require grad, this one is ",
         dtype_name(dtype()));
  if (!on && grad_fn())
    fail("set_requires_grad(false) on a non-leaf tensor; use detach() to cut it from the graph");
  meta_of(impl_).requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const AutogradMeta* m = autograd_meta();
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) const { meta_of(impl_).grad = g; }

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  const AutogradMeta* m = autograd_meta();
  return m ? m->grad_fn : none;
}

uint32_t Tensor::output_nr() const {
  const AutogradMeta* m = autograd_meta();
  return m ? m->output_nr : 0;
}

void Tensor::set_grad_fn(std::shared_ptr<autograd::Node> fn, uint32_t nr) const {
  AutogradMeta& m = meta_of(impl_);
  m.grad_fn = std::move(fn);
  m.output_nr = nr;
}

Tensor Tensor::detach() const { return Tensor(storage(), dtype(), shape(), strides(), offset()); }

}  // namespace finch
