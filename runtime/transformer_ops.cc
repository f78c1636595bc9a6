// The runtime's transformer encoder ops (ops.md, op_schema_transformer.cc): layer_norm,
// multi-head self-attention with a padding mask, narrow_like. They call the kernels training
// uses (ops/norm.h, ops/attention.h) the way models/bert.cc calls them, so an fp32 BERT program
// computes what the nn model computes. The static int8 encoder's qattention (int8 matmuls, integer
// softmax: kernels/qs8_transformer.h) and qgelu (a 256-entry table per node) live here too.
//
// Shape vocabulary: B batch, S sequence length (any 1..declared at run time), H hidden size,
// NH heads, HD = H / NH.
#include <limits>
#include <memory>

#include "framework/error.h"
#include "kernels/qs8_transformer.h"
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

// ---- static int8 (qattention, qgelu) ----

// A per-tensor activation's (scale, zero point) from its value's quant.
std::pair<float, int32_t> act_quant(const Node& n, const Graph& g, int32_t v) {
  const Value& val = g.values[size_t(v)];
  if (!val.quant || val.quant->axis >= 0 || val.quant->scale.size() != 1 || val.quant->zero_point.size() != 1)
    fail(node_where(n), ": expected value '", val.name, "' quantized per tensor");
  return {val.quant->scale[0], val.quant->zero_point[0]};
}

// The quantization of a qattention node's values (fixed at load): symmetric i8 q, k, v and an
// i8 output.
quant::QAttentionQuant qattention_quant(const Node& n, const Graph& g) {
  float sc[3];
  for (size_t i = 0; i < 3; ++i) {
    const auto [scale, z] = act_quant(n, g, n.inputs[i]);
    if (z != 0) fail(node_where(n), ": expected input ", i, " quantized symmetrically (zero point 0), found ", z);
    sc[i] = scale;
  }
  const Value& y = g.values[size_t(n.outputs[0])];
  if (y.dtype != DType::i8) fail(node_where(n), ": expected an i8 output, found ", dtype_name(y.dtype));
  const auto [s_out, z_out] = act_quant(n, g, n.outputs[0]);
  return {sc[0], sc[1], sc[2], s_out, z_out, int32_t(y.quant->qmin), int32_t(y.quant->qmax)};
}

// The shape of one run from its inputs, checked.
quant::QAttentionShape qattention_shape(const Node& n, const std::vector<Tensor>& in) {
  quant::QAttentionShape sh;
  const Tensor& q = in[0];
  sh.NH = ops::read_int(n.attrs, ops::attr::heads, node_where(n));
  if (q.dim() != 3 || q.size(2) % sh.NH != 0)
    fail(node_where(n), ": expected queries [B, S, H] with H divisible by ", sh.NH, " heads, got ", shape_str(q.shape()));
  sh.B = q.size(0), sh.S = q.size(1), sh.H = q.size(2);
  for (size_t i = 0; i < 3; ++i)
    if (in[i].dtype() != DType::i8 || in[i].shape() != q.shape())
      fail(node_where(n), ": expected i8 codes of the queries' shape ", shape_str(q.shape()), " for input ", i, ", got ",
           dtype_name(in[i].dtype()), " ", shape_str(in[i].shape()));
  return sh;
}

// mask [B, S] of 0/1 (any dtype the float op takes) -> u8, or empty for none.
std::vector<uint8_t> mask_u8(const Node& n, const std::vector<Tensor>& in, int64_t B, int64_t S) {
  if (in.size() < 4 || !in[3].defined()) return {};
  const Tensor& m = in[3];
  if (m.dim() != 2 || m.size(0) != B || m.size(1) != S)
    fail(node_where(n), ": expected an attention mask of shape [", B, ", ", S, "], got ", shape_str(m.shape()));
  const std::vector<double> v = m.contiguous().to_vector<double>();
  std::vector<uint8_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != 0.0 && v[i] != 1.0)
      fail(node_where(n), ": expected attention mask values 0 or 1, got ", v[i], " at flat index ", i);
    out[i] = uint8_t(v[i] != 0.0);
  }
  return out;
}

Outs run_qattention(const Node& n, const std::vector<Tensor>& in, const quant::QAttentionQuant& qu, bool optimized) {
  const quant::QAttentionShape sh = qattention_shape(n, in);
  const std::vector<uint8_t> mask = mask_u8(n, in, sh.B, sh.S);
  const Tensor q = in[0].contiguous(), k = in[1].contiguous(), v = in[2].contiguous();
  Tensor y = empty(q.shape(), DType::i8);
  auto* run = optimized ? &quant::kernels::qs8_attention : &quant::reference::qs8_attention;
  run(q.data<int8_t>(), k.data<int8_t>(), v.data<int8_t>(), mask.empty() ? nullptr : mask.data(), sh, qu,
      y.data<int8_t>());
  return {y};
}

Outs qattention_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  return run_qattention(n, in, qattention_quant(n, g), false);
}

// The prepared kernel keeps a copy of its node and its quantization (a Program may move its graph).
class QAttentionKernel final : public NodeKernel {
 public:
  QAttentionKernel(const Node& n, const Graph& g) : n_(n), qu_(qattention_quant(n, g)) {}
  Outs run(const std::vector<Tensor>& in) const override { return run_qattention(n_, in, qu_, true); }

 private:
  Node n_;
  quant::QAttentionQuant qu_;
};

std::unique_ptr<NodeKernel> prepare_qattention(const Node& n, const Graph& g) {
  return std::make_unique<QAttentionKernel>(n, g);
}

Outs qgelu_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const bool integer = ops::read_bool(n.attrs, ops::attr::integer, node_where(n), false);
  const DType dx = in[0].dtype();
  if (dx != DType::i8 && dx != DType::u8) fail(node_where(n), ": expected i8 or u8 input codes, got ", dtype_name(dx));
  const Value& yv = g.values[size_t(n.outputs[0])];
  if (yv.dtype != DType::i8) fail(node_where(n), ": expected an i8 output, found ", dtype_name(yv.dtype));
  const auto [s_x, z_x] = act_quant(n, g, n.inputs[0]);
  const auto [s_y, z_y] = act_quant(n, g, n.outputs[0]);
  const bool u8 = dx == DType::u8;
  const std::vector<int8_t> table =
      integer ? quant::igelu_table_i8(quant::igelu_params(s_x, z_x, s_y, z_y, int32_t(yv.quant->qmin),
                                                          int32_t(yv.quant->qmax)), u8)
              : quant::gelu_table_i8(s_x, z_x, u8, s_y, z_y, int32_t(yv.quant->qmin), int32_t(yv.quant->qmax));
  const Tensor x = in[0].contiguous();
  Tensor y = empty(x.shape(), DType::i8);
  int8_t* py = y.data<int8_t>();
  const int64_t N = x.numel();
  if (u8) {
    const uint8_t* px = x.data<uint8_t>();
    for (int64_t i = 0; i < N; ++i) py[i] = table[px[i]];
  } else {
    const int8_t* px = x.data<int8_t>();
    for (int64_t i = 0; i < N; ++i) py[i] = table[size_t(int(px[i]) + 128)];
  }
  return {y};
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& transformer_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"layer_norm", {layer_norm_op}},
      {"attention", {attention_op}},
      {"narrow_like", {narrow_like_op}},
      {"qattention", {qattention_op, prepare_qattention}},
      {"qgelu", {qgelu_op}},
  };
  return t;
}

}  // namespace finch::runtime
