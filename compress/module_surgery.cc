// Module surgery (see module_surgery.h): slices parameters and buffers in place and updates the
// layers' channel counts so forward() checks and the state dict agree with the new shapes.
#include "compress/module_surgery.h"

#include <cstring>

#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "autograd/nn/norm.h"
#include "autograd/nn/rnn.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compress {
namespace {

void check_keep(const Keep& keep, int64_t n, const std::string& what) {
  if (keep.empty()) fail(what, ": a layer cannot lose all its ", n, " channels");
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i] < 0 || keep[i] >= n || (i > 0 && keep[i] <= keep[i - 1]))
      fail(what, ": kept channel indices must increase within [0, ", n, "), found ", keep[i], " at position ", i);
}

}  // namespace

Keep keep_first(int64_t n) {
  Keep k(size_t(n > 0 ? n : 0));
  for (int64_t i = 0; i < n; ++i) k[size_t(i)] = i;
  return k;
}

void keep_along(const Tensor& t, int64_t dim, const Keep& keep, int64_t block) {
  if (!t.defined()) return;
  FINCH_CHECK(dim == 0 || dim == 1, "keep_along: dim ", dim);
  FINCH_CHECK(t.dim() > dim, "keep_along: rank ", t.dim(), " dim ", dim);
  FINCH_CHECK(block >= 1 && t.size(dim) % block == 0, "keep_along: ", t.size(dim), " not a multiple of block ", block);
  check_keep(keep, t.size(dim) / block, "keep_along");
  NoGradGuard ng;
  const Tensor src = t.detach().contiguous();
  // Row-major: `outer` slabs (1 for dim 0, rows for dim 1), each `n` units of `inner` bytes.
  const size_t es = dtype_size(src.dtype());
  const int64_t outer = dim == 0 ? 1 : src.size(0);
  const int64_t n = src.size(dim);
  const size_t inner = size_t(src.numel() / (outer * n)) * es;
  Shape shape = src.shape();
  shape[size_t(dim)] = int64_t(keep.size()) * block;
  Tensor dst = empty(shape, src.dtype());
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k : keep) {
      const size_t bytes = inner * size_t(block);
      std::memcpy(d, s + (size_t(o * n + k * block)) * inner, bytes);
      d += bytes;
    }
  TensorImpl* impl = t.impl();
  impl->storage = dst.storage();
  impl->shape = dst.shape();
  impl->strides = dst.strides();
  impl->offset = dst.offset();
  if (t.grad().defined()) t.set_grad(Tensor());
}

void resize_conv2d(nn::Module& m, const Keep& out, const Keep& in) {
  auto* c = dynamic_cast<nn::Conv2d*>(&m);
  if (!c) fail("resize_conv2d: expected a Conv2d, found a ", m.type_name());
  const int64_t g = c->options.groups;
  if (g == 1) {
    keep_along(c->weight, 0, out);
    keep_along(c->weight, 1, in);
    keep_along(c->bias, 0, out);
    c->out_channels = int64_t(out.size());
    c->in_channels = int64_t(in.size());
    return;
  }
  if (g == c->in_channels && g == c->out_channels) {
    if (out != in) fail("resize_conv2d: a depthwise conv keeps the same channels in and out");
    keep_along(c->weight, 0, out);
    keep_along(c->bias, 0, out);
    c->out_channels = c->in_channels = c->options.groups = int64_t(out.size());
    return;
  }
  fail("resize_conv2d: a grouped conv with ", g, " groups of ", c->in_channels / g, " channels cannot be resized");
}

void resize_batch_norm(nn::Module& m, const Keep& keep) {
  auto* b = dynamic_cast<nn::BatchNorm*>(&m);
  if (!b) fail("resize_batch_norm: expected a BatchNorm1d/2d, found a ", m.type_name());
  for (const Tensor* t : {&b->weight, &b->bias, &b->running_mean, &b->running_var}) keep_along(*t, 0, keep);
  b->num_features = int64_t(keep.size());
}

void resize_linear(nn::Module& m, const Keep& out, const Keep& in, int64_t block) {
  auto* l = dynamic_cast<nn::Linear*>(&m);
  if (!l) fail("resize_linear: expected a Linear, found a ", m.type_name());
  keep_along(l->weight, 0, out);
  keep_along(l->weight, 1, in, block);
  keep_along(l->bias, 0, out);
  l->out_features = int64_t(out.size());
  l->in_features = int64_t(in.size()) * block;
}

void resize_rnn(nn::Module& m, const std::vector<Keep>& units, const Keep& in) {
  auto* r = dynamic_cast<nn::RNNBase*>(&m);
  if (!r) fail("resize_rnn: expected an LSTM or GRU, found a ", m.type_name());
  const int64_t D = r->bidirectional ? 2 : 1, G = r->type_name() == "LSTM" ? 4 : 3;
  const int64_t H = r->hidden_size, P = r->proj_size > 0 ? r->proj_size : H;
  FINCH_CHECK(int64_t(units.size()) == r->num_layers * D, "resize_rnn: ", units.size(), " unit lists for ",
              r->num_layers * D, " layer-directions");
  const auto kept = int64_t(units[0].size());
  for (const Keep& u : units) {
    check_keep(u, H, "resize_rnn");
    if (int64_t(u.size()) != kept)
      fail("resize_rnn: every layer and direction of an ", r->type_name(), " keeps the same number of hidden units (",
           "its hidden_size), found ", kept, " and ", u.size());
  }
  if (r->proj_size > 0 && kept <= r->proj_size)
    fail("resize_rnn: an LSTM with proj_size ", r->proj_size, " needs more hidden units than that, found ", kept);
  check_keep(in, r->input_size, "resize_rnn");
  for (int64_t l = 0; l < r->num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const Keep& u = units[size_t(l * D + d)];
      Keep rows, cols;
      for (int64_t g = 0; g < G; ++g)
        for (int64_t j : u) rows.push_back(g * H + j);
      if (l == 0) cols = in;
      else if (r->proj_size > 0) cols = keep_first(D * P);
      else
        for (int64_t dd = 0; dd < D; ++dd)
          for (int64_t j : units[size_t((l - 1) * D + dd)]) cols.push_back(dd * H + j);
      const nn::RNNBase::Weights& w = r->weights[size_t(l * D + d)];
      keep_along(w.w_ih, 0, rows);
      keep_along(w.w_ih, 1, cols);
      keep_along(w.w_hh, 0, rows);
      if (r->proj_size > 0) keep_along(w.w_hr, 1, u);
      else keep_along(w.w_hh, 1, u);
      keep_along(w.b_ih, 0, rows);
      keep_along(w.b_hh, 0, rows);
    }
  r->hidden_size = kept;
  r->input_size = int64_t(in.size());
}

}  // namespace finch::compress
