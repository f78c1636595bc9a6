// Differentiable shape and layout ops. Views stay views: each wrapper applies the raw Tensor
// view to a detached handle (a fresh TensorImpl sharing the storage) under NoGradGuard and
// records the rule that maps the gradient back: view (reshape, view, flatten, squeeze,
// unsqueeze), permute (transpose), expand, slice (narrow, split, chunk), select. Copies: cat
// (stack), index_select, pad, contiguous, to_dtype.
#include <algorithm>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/op_attrs.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

namespace {

// The gradient of a reshaping view: the output gradient reshaped to the input's shape.
void record_view(const Tensor& x, const Tensor& y) {
  autograd::record("view", {x}, {y}, [shape = x.shape()](const Grads& g, const Needs&) {
    return Grads{g[0].detach().reshape(shape)};
  });
}

void record_contiguous(const Tensor& x, const Tensor& y) {
  autograd::record("contiguous", {x}, {y}, [](const Grads& g, const Needs&) { return Grads{g[0]}; });
}

// y = xd.reshape/flatten(...) was computed; when it had to copy (new storage), the graph is
// x -> contiguous -> view, as torch records it; otherwise a single view.
Tensor finish_reshape(const Tensor& x, const Tensor& xd, const Tensor& y, bool rec) {
  if (!rec) return y;
  if (y.storage() == xd.storage() || x.numel() == 0) {
    record_view(x, y);
    return y;
  }
  Tensor c(y.storage(), y.dtype(), x.shape(), contiguous_strides(x.shape()), 0);
  record_contiguous(x, c);
  Tensor yv = c.detach().view(y.shape());
  record_view(c, yv);
  return yv;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  const Tensor xd = x.detach();
  Tensor y = finish_reshape(x, xd, xd.reshape(shape), rec);
  if (cap.active()) cap.record("reshape", {x}, {y}, {{ops::attr::shape.name, y.shape()}});
  return y;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  const Tensor xd = x.detach();
  Tensor y = finish_reshape(x, xd, xd.flatten(start_dim, end_dim), rec);
  if (cap.active()) cap.record("flatten", {x}, {y}, {{ops::attr::start_dim.name, start_dim}, {ops::attr::end_dim.name, end_dim}});
  return y;
}

Tensor view(const Tensor& x, const Shape& shape) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().view(shape);
  if (rec) record_view(x, y);
  if (cap.active()) cap.record("reshape", {x}, {y}, {{ops::attr::shape.name, y.shape()}});
  return y;
}

// squeeze and unsqueeze are captured as the reshape they are (a model's [B, C, T] -> [B, 1, T, C]
// before (k×1) convs), so programs can hold them.
Tensor squeeze(const Tensor& x, int64_t dim) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  const Tensor xd = x.detach();
  Tensor y = xd.squeeze(dim);
  if (y.is_same(xd)) y = xd.view(xd.shape());  // always a new handle, never x itself
  if (rec) record_view(x, y);
  if (cap.active()) cap.record("reshape", {x}, {y}, {{ops::attr::shape.name, y.shape()}});
  return y;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().unsqueeze(dim);
  if (rec) record_view(x, y);
  if (cap.active()) cap.record("reshape", {x}, {y}, {{ops::attr::shape.name, y.shape()}});
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().permute(dims);
  if (cap.active()) {
    std::vector<int64_t> d(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) d[i] = wrap_dim(dims[i], x.dim(), "permute");
    cap.record("permute", {x}, {y}, {{ops::attr::dims.name, d}});
  }
  if (rec) {
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inv[size_t(wrap_dim(dims[i], x.dim(), "permute"))] = int64_t(i);
    autograd::record("permute", {x}, {y}, [inv](const Grads& g, const Needs&) {
      return Grads{g[0].detach().permute(inv)};
    });
  }
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  std::vector<int64_t> p(size_t(x.dim()));
  for (size_t i = 0; i < p.size(); ++i) p[i] = int64_t(i);
  std::swap(p[size_t(wrap_dim(d0, x.dim(), "transpose"))], p[size_t(wrap_dim(d1, x.dim(), "transpose"))]);
  return permute(x, p);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().expand(shape);
  if (rec) {
    // Backward: sum over the new leading dims and over the size-1 dims that were broadcast.
    std::vector<int64_t> red;
    const int64_t lead = y.dim() - x.dim();
    for (int64_t d = 0; d < y.dim(); ++d)
      if (d < lead || (x.size(d - lead) == 1 && y.size(d) != 1)) red.push_back(d);
    autograd::record("expand", {x}, {y}, [red, shape = x.shape()](const Grads& g, const Needs&) {
      if (red.empty()) return Grads{g[0].detach().reshape(shape)};
      return Grads{ops::sum(g[0], red, false).reshape(shape)};
    });
  }
  return y;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().slice(dim, start, end, step);
  if (rec)
    autograd::record("slice", {x}, {y},
                     [shape = x.shape(), dt = x.dtype(), dim, start, end, step](const Grads& g, const Needs&) {
                       Tensor dx = zeros(shape, dt);
                       dx.slice(dim, start, end, step).copy_(g[0]);
                       return Grads{dx};
                     });
  return y;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  {
    NoGradGuard ng;
    (void)x.detach().narrow(dim, start, length);  // narrow's own range checks and messages
  }
  return slice(x, dim, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().select(dim, index);
  if (cap.active()) {
    const int64_t d = wrap_dim(dim, x.dim(), "select");
    cap.record("select", {x}, {y}, {{ops::attr::dim.name, d}, {ops::attr::index.name, index < 0 ? index + x.size(d) : index}});
  }
  if (rec)
    autograd::record("select", {x}, {y},
                     [shape = x.shape(), dt = x.dtype(), dim, index](const Grads& g, const Needs&) {
                       Tensor dx = zeros(shape, dt);
                       dx.select(dim, index).copy_(g[0]);
                       return Grads{dx};
                     });
  return y;
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = x.detach().contiguous();
  // Every program value is contiguous: in a graph this copy is a reshape to its own shape.
  if (cap.active()) cap.record("reshape", {x}, {y}, {{ops::attr::shape.name, y.shape()}});
  if (rec) record_contiguous(x, y);
  return y;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record(xs);
  NoGradGuard ng;
  Tensor y = ops::cat(xs, dim);
  if (cap.active()) cap.record("cat", xs, {y}, {{ops::attr::dim.name, wrap_dim(dim, y.dim(), "cat")}});
  if (rec) {
    std::vector<Shape> shapes;
    std::vector<DType> dtypes;
    for (const auto& x : xs) {
      shapes.push_back(x.shape());
      dtypes.push_back(x.dtype());
    }
    const int64_t d = wrap_dim(dim, y.dim(), "cat");
    autograd::record("cat", xs, {y}, [shapes, dtypes, d](const Grads& g, const Needs& needs) {
      Grads dx(shapes.size());
      int64_t off = 0;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const bool skipped = shapes[i].size() == 1 && shapes[i][0] == 0;  // legacy empty 1-D
        if (skipped) {
          if (needs[i]) dx[i] = zeros(shapes[i], dtypes[i]);
          continue;
        }
        const int64_t n = shapes[i][size_t(d)];
        if (needs[i]) dx[i] = g[0].detach().narrow(d, off, n);
        off += n;
      }
      return dx;
    });
  }
  return y;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) fail("stack: expected a non-empty list of tensors");
  const int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != xs[0].shape())
      fail("stack: expected every tensor to have shape ", shape_str(xs[0].shape()), ", tensor ", i,
           " has shape ", shape_str(xs[i].shape()));
  std::vector<Tensor> u;
  for (const auto& x : xs) u.push_back(unsqueeze(x, d));
  return cat(u, d);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  if (x.dim() == 0) fail("split: expected a tensor with at least one dim, got a 0-d tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.size(d);
  if (split_size < 0 || (split_size == 0 && n != 0))
    fail("split: expected a positive split_size for a dim of size ", n, ", got ", split_size);
  std::vector<Tensor> out;
  if (n == 0) {
    out.push_back(slice(x, d, 0, 0, 1));
    return out;
  }
  for (int64_t s = 0; s < n; s += split_size) out.push_back(slice(x, d, s, std::min(n, s + split_size), 1));
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  if (chunks <= 0) fail("chunk: expected a positive number of chunks, got ", chunks);
  if (x.dim() == 0) fail("chunk: expected a tensor with at least one dim, got a 0-d tensor");
  const int64_t n = x.size(wrap_dim(dim, x.dim(), "chunk"));
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::index_select(x, dim, index);
  if (rec)
    autograd::record("index_select", {x}, {y},
                     [shape = x.shape(), dim, idx = index.detach()](const Grads& g, const Needs&) {
                       return Grads{ops::index_select_backward(g[0], shape, dim, idx)};
                     });
  return y;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, double value) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::pad(x, pads, mode, value);
  // Programs hold constant padding only (runtime/ops.md `pad`); a reflect/replicate pad is not
  // recorded, so capture names it as an op it cannot record.
  if (cap.active() && mode == "constant") cap.record("pad", {x}, {y}, {{"pads", pads}, {"value", value}});
  if (rec)
    autograd::record("pad", {x}, {y}, [shape = x.shape(), pads, mode](const Grads& g, const Needs&) {
      return Grads{ops::pad_backward(g[0], shape, pads, mode)};
    });
  return y;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  const bool rec = autograd::should_record({x}) && is_floating(dtype);
  NoGradGuard ng;
  Tensor y = x.detach().to(dtype);
  if (rec)
    autograd::record("to_dtype", {x}, {y}, [dt = x.dtype()](const Grads& g, const Needs&) {
      return Grads{g[0].detach().to(dt)};
    });
  return y;
}

}  // namespace finch
