// The op schema of the transformer encoder's ops (op_schema.h): layer_norm, multi-head
// self-attention with a padding mask, and narrow_like (the position-embedding rows a sequence
// of run-time length needs). Every size is read off the inputs and checked against the others,
// so a hostile program's shapes and head count give one sentence before any kernel runs.
#include "framework/error.h"
#include "ops/op_schema.h"

namespace finch::ops {

namespace {

using json = nlohmann::json;
using Types = std::vector<ValueType>;

bool present(const Types& in, size_t i) { return i < in.size() && !in[i].absent; }

void want_f32(const Types& in, size_t i, const char* what, const std::string& where) {
  if (in[i].dtype && *in[i].dtype != DType::f32)
    fail(where, ": expected ", what, " of dtype f32, found ", dtype_name(*in[i].dtype));
}

// layer_norm: x [..., D] normalized over its last dim, weight? [D], bias? [D].
Types layer_norm_infer(const Types& in, const json& a, const std::string& where) {
  read_number(a, attr::eps, where);
  const Shape& x = in[0].shape;
  if (x.empty() || x.back() < 1) fail(where, ": expected an input [..., D] with D >= 1, found shape ", shape_str(x));
  want_f32(in, 0, "the input", where);
  for (size_t i = 1; i < 3; ++i) {
    if (!present(in, i)) continue;
    want_f32(in, i, i == 1 ? "the weight" : "the bias", where);
    if (in[i].shape != Shape{x.back()})
      fail(where, ": expected ", i == 1 ? "a weight" : "a bias", " of shape [", x.back(), "], found ",
           shape_str(in[i].shape));
  }
  return {{x, DType::f32}};
}

// attention: q, k, v [B, S, H] (H = heads · HD), mask? [B, S] of 0/1 -> [B, S, H].
Types attention_infer(const Types& in, const json& a, const std::string& where) {
  const int64_t heads = read_int(a, attr::heads, where);
  const Shape& q = in[0].shape;
  if (q.size() != 3 || q[0] < 1 || q[1] < 1 || q[2] < 1)
    fail(where, ": expected queries [B, S, H] with B, S, H >= 1, found shape ", shape_str(q));
  for (size_t i = 0; i < 3; ++i) {
    want_f32(in, i, i == 0 ? "the queries" : i == 1 ? "the keys" : "the values", where);
    if (in[i].shape != q)
      fail(where, ": expected ", i == 1 ? "keys" : "values", " of the queries' shape ", shape_str(q), ", found ",
           shape_str(in[i].shape));
  }
  if (q[2] % heads != 0)
    fail(where, ": attribute 'heads' is ", heads, "; expected a divisor of the hidden size ", q[2]);
  if (present(in, 3)) {
    if (in[3].shape != Shape{q[0], q[1]})
      fail(where, ": expected an attention mask of shape [", q[0], ", ", q[1], "], found ", shape_str(in[3].shape));
    if (in[3].dtype && *in[3].dtype != DType::i64 && *in[3].dtype != DType::i32 && *in[3].dtype != DType::f32 &&
        *in[3].dtype != DType::b8)
      fail(where, ": expected an attention mask of dtype i64, i32, f32 or bool, found ", dtype_name(*in[3].dtype));
  }
  return {{q, DType::f32}};
}

// narrow_like: x's first like.size(like_dim) entries along `dim`.
Types narrow_like_infer(const Types& in, const json& a, const std::string& where) {
  const Shape& x = in[0].shape;
  const Shape& like = in[1].shape;
  const int64_t d = read_int(a, attr::dim, where), ld = read_int(a, attr::like_dim, where);
  if (d < 0 || d >= int64_t(x.size()))
    fail(where, ": attribute 'dim' is ", d, "; expected a dim of the ", x.size(), "-d input");
  if (ld >= int64_t(like.size()))
    fail(where, ": attribute 'like_dim' is ", ld, "; expected a dim of the ", like.size(), "-d reference input");
  const int64_t n = like[size_t(ld)];
  if (n < 1 || n > x[size_t(d)])
    fail(where, ": expected the reference's dim ", ld, " (", n, ") in 1..", x[size_t(d)], " (dim ", d,
         " of the input ", shape_str(x), ")");
  Shape y = x;
  y[size_t(d)] = n;
  return {{y, in[0].dtype}};
}

// qattention: i8 q, k, v [B, S, H] (per-tensor, zero point 0), mask? [B, S] -> i8 codes [B, S, H].
Types qattention_infer(const Types& in, const json& a, const std::string& where) {
  const int64_t heads = read_int(a, attr::heads, where);
  const Shape& q = in[0].shape;
  if (q.size() != 3 || q[0] < 1 || q[1] < 1 || q[2] < 1)
    fail(where, ": expected queries [B, S, H] with B, S, H >= 1, found shape ", shape_str(q));
  for (size_t i = 0; i < 3; ++i) {
    if (in[i].dtype && *in[i].dtype != DType::i8)
      fail(where, ": expected ", i == 0 ? "queries" : i == 1 ? "keys" : "values", " of dtype i8, found ",
           dtype_name(*in[i].dtype));
    if (in[i].shape != q)
      fail(where, ": expected ", i == 1 ? "keys" : "values", " of the queries' shape ", shape_str(q), ", found ",
           shape_str(in[i].shape));
  }
  if (q[2] % heads != 0)
    fail(where, ": attribute 'heads' is ", heads, "; expected a divisor of the hidden size ", q[2]);
  if (present(in, 3) && in[3].shape != Shape{q[0], q[1]})
    fail(where, ": expected an attention mask of shape [", q[0], ", ", q[1], "], found ", shape_str(in[3].shape));
  return {{q, std::nullopt}};
}

// qgelu: i8/u8 codes -> codes of the same shape (the output value's quantization).
Types qgelu_infer(const Types& in, const json& a, const std::string& where) {
  read_bool(a, attr::integer, where, false);
  if (in[0].dtype && *in[0].dtype != DType::i8 && *in[0].dtype != DType::u8)
    fail(where, ": expected i8 or u8 input codes, found ", dtype_name(*in[0].dtype));
  return {{in[0].shape, std::nullopt}};
}

}  // namespace

std::vector<OpSchema> transformer_op_schemas() {
  return {
      {"layer_norm", {{"x"}, {"weight", true}, {"bias", true}}, 1, false, {attr::eps}, layer_norm_infer},
      {"attention", {{"q"}, {"k"}, {"v"}, {"mask", true}}, 3, false, {attr::heads}, attention_infer},
      {"narrow_like", {{"x"}, {"like"}}, 2, false, {attr::dim, attr::like_dim}, narrow_like_infer},
      {"qattention", {{"q"}, {"k"}, {"v"}, {"mask", true}}, 3, false, {attr::heads}, qattention_infer},
      {"qgelu", {{"x"}}, 1, false, {attr::integer}, qgelu_infer},
  };
}

}  // namespace finch::ops
