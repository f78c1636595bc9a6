// The runtime's transformer encoder ops (ops.md, op_schema_transformer.cc): layer_norm,
// multi-head self-attention with a padding mask, narrow_like. They call the kernels training
// uses (ops/norm.h, ops/attention.h) the way models/bert.cc calls them, so an fp32 BERT program
// computes what the nn model computes.
//
// Shape vocabulary: B batch, S sequence length (any 1..declared at run time), H hidden size,
// NH heads, HD = H / NH.
#include <limits>

#include "framework/error.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/op_attrs.h"
#include "runtime/op_table.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;

Outs layer_norm_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const double eps = ops::read_number(n.attrs, ops::attr::eps, node_where(n));
  const Tensor& x = in[0];
  if (x.dtype() != DType::f32 || x.dim() < 1)
    fail(node_where(n), ": expected an f32 input [..., D], got ", dtype_name(x.dtype()), " ", shape_str(x.shape()));
  const Tensor w = in.size() > 1 ? in[1] : Tensor(), b = in.size() > 2 ? in[2] : Tensor();
  return {ops::layer_norm(x, {x.size(-1)}, w, b, eps).y};
}

// mask [B, S] of 0/1 -> the additive f32 [B, 1, 1, S] of models::bert_additive_mask: 0 where
// attended, the lowest float where padded (finite, so a row with no key left gets transformers'
// uniform weights, and exp() of a padded score is exactly 0).
Tensor additive_mask(const Node& n, const Tensor& mask, int64_t B, int64_t S) {
  if (mask.dim() != 2 || mask.size(0) != B || mask.size(1) != S)
    fail(node_where(n), ": expected an attention mask of shape [", B, ", ", S, "], got ", shape_str(mask.shape()));
  const std::vector<double> m = mask.contiguous().to_vector<double>();
  std::vector<float> add(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] != 0.0 && m[i] != 1.0)
      fail(node_where(n), ": expected attention mask values 0 or 1, got ", m[i], " at flat index ", i);
    add[i] = m[i] != 0.0 ? 0.0f : std::numeric_limits<float>::lowest();
  }
  return from_vector(add, {B, 1, 1, S});
}

Outs attention_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const int64_t NH = ops::read_int(n.attrs, ops::attr::heads, node_where(n));
  const Tensor& q = in[0];
  if (q.dtype() != DType::f32 || q.dim() != 3 || q.size(2) % NH != 0)
    fail(node_where(n), ": expected f32 queries [B, S, H] with H divisible by ", NH, " heads, got ",
         dtype_name(q.dtype()), " ", shape_str(q.shape()));
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), HD = H / NH;
  for (size_t i = 1; i < 3; ++i)
    if (in[i].dtype() != DType::f32 || in[i].shape() != q.shape())
      fail(node_where(n), ": expected f32 ", i == 1 ? "keys" : "values", " of the queries' shape ",
           shape_str(q.shape()), ", got ", dtype_name(in[i].dtype()), " ", shape_str(in[i].shape()));
  // [B, S, H] -> [B, NH, S, HD] views, read in place by the fused kernel (as BertSelfAttention).
  auto heads = [&](const Tensor& t) { return t.contiguous().view({B, S, NH, HD}).permute({0, 2, 1, 3}); };
  const Tensor mask = in.size() > 3 && in[3].defined() ? additive_mask(n, in[3], B, S) : Tensor();
  const Tensor ctx = ops::scaled_dot_product_attention(heads(q), heads(in[1]), heads(in[2]), mask).out;
  return {ctx.permute({0, 2, 1, 3}).contiguous().view({B, S, H})};
}

Outs narrow_like_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const int64_t d = ops::read_int(n.attrs, ops::attr::dim, node_where(n));
  const int64_t ld = ops::read_int(n.attrs, ops::attr::like_dim, node_where(n));
  const Tensor &x = in[0], &like = in[1];
  if (d < 0 || d >= x.dim() || ld >= like.dim())
    fail(node_where(n), ": expected dim ", d, " of the ", x.dim(), "-d input and dim ", ld, " of the ", like.dim(),
         "-d reference");
  const int64_t len = like.size(ld);
  if (len < 1 || len > x.size(d))
    fail(node_where(n), ": expected the reference's dim ", ld, " (", len, ") in 1..", x.size(d),
         " (the input's dim ", d, "): a sequence longer than the program's positions");
  return {x.narrow(d, 0, len).contiguous()};
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& transformer_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"layer_norm", {layer_norm_op}},
      {"attention", {attention_op}},
      {"narrow_like", {narrow_like_op}},
  };
  return t;
}

}  // namespace finch::runtime
