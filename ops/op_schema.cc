// The deployable ops' table (op_schema.h) and their shape inference: output shapes computed the
// way the kernels compute them (conv_out_size, pool_out_size, broadcasting, the reduction and
// shape rules), so a program's declared shapes can be checked before anything runs. Sums and
// products of sizes go through framework/checked_math.h: a hostile file must not wrap them.
#include "ops/op_schema.h"

#include <algorithm>
#include <limits>
#include <map>

#include "framework/checked_math.h"
#include "framework/error.h"
#include "ops/broadcast.h"
#include "ops/reduce.h"

namespace finch::ops {

namespace {

using json = nlohmann::json;
using Types = std::vector<ValueType>;

const Shape& rank(const ValueType& v, size_t lo, size_t hi, const char* what, const std::string& where) {
  if (v.shape.size() < lo || v.shape.size() > hi)
    fail(where, ": expected ", what, ", found shape ", shape_str(v.shape));
  return v.shape;
}

// ---- shape inference, one rule per op family ----

Shape conv2d_shape(const Types& in, const json& a, const std::string& where) {
  const Shape& x = rank(in[0], 4, 4, "an input [N, C, H, W]", where);
  const Shape& w = rank(in[1], 4, 4, "a weight [OC, C/groups, KH, KW]", where);
  const Conv2dParams p = conv2d_from_json(a, where);
  const int64_t C = x[1], OC = w[0];
  if (C % p.groups != 0 || OC % p.groups != 0)
    fail(where, ": expected input channels (", C, ") and output channels (", OC, ") divisible by groups (", p.groups,
         "), found weight ", shape_str(w));
  if (w[1] != C / p.groups)
    fail(where, ": expected a weight [OC, ", C / p.groups, ", KH, KW] for ", C, " input channels in ", p.groups,
         " groups, found ", shape_str(w));
  if (in.size() > 2 && !in[2].absent && in[2].shape != Shape{OC})
    fail(where, ": expected a bias [", OC, "], found shape ", shape_str(in[2].shape));
  // The dilated kernel dil·(k−1) is the one product conv_out_size forms from two file values
  // (a huge constant's dim times a dilation up to 2^16); sizes and paddings are bounded already.
  checked_mul(p.dh, std::max<int64_t>(w[2] - 1, 0), (where + ": the dilated kernel height").c_str());
  checked_mul(p.dw, std::max<int64_t>(w[3] - 1, 0), (where + ": the dilated kernel width").c_str());
  const int64_t OH = conv_out_size(x[2], w[2], p.sh, p.ph, p.dh), OW = conv_out_size(x[3], w[3], p.sw, p.pw, p.dw);
  if (OH < 1 || OW < 1)
    fail(where, ": expected an input at least the dilated kernel, found input ", shape_str(x), " and weight ",
         shape_str(w));
  return {x[0], OC, OH, OW};
}

Shape linear_shape(const Types& in, const std::string& where) {
  const Shape& x = rank(in[0], 1, size_t(kMaxDims), "an input [..., K]", where);
  const Shape& w = rank(in[1], 2, 2, "a weight [OC, K]", where);
  if (x.back() != w[1]) fail(where, ": expected a weight [OC, ", x.back(), "], found ", shape_str(w));
  if (in.size() > 2 && !in[2].absent && in[2].shape != Shape{w[0]})
    fail(where, ": expected a bias [", w[0], "], found shape ", shape_str(in[2].shape));
  Shape y = x;
  y.back() = w[0];
  return y;
}

Shape pool2d_shape(const Types& in, const json& a, const std::string& where) {
  const Shape& x = rank(in[0], 3, 4, "an input [N, C, H, W] or [C, H, W]", where);
  const Pool2dParams p = pool2d_from_json(a, where);
  if (2 * p.ph > p.kh || 2 * p.pw > p.kw)
    fail(where, ": expected padding at most half the kernel, found kernel (", p.kh, ", ", p.kw, ") and padding (",
         p.ph, ", ", p.pw, ")");
  const size_t r = x.size();
  const int64_t OH = pool_out_size(x[r - 2], p.kh, p.sh, p.ph, p.ceil_mode);
  const int64_t OW = pool_out_size(x[r - 1], p.kw, p.sw, p.pw, p.ceil_mode);
  if (OH < 1 || OW < 1) fail(where, ": expected an input plane at least the kernel, found shape ", shape_str(x));
  Shape y = x;
  y[r - 2] = OH, y[r - 1] = OW;
  return y;
}

Shape adaptive_shape(const Types& in, const json& a, const std::string& where) {
  Shape y = rank(in[0], 3, 4, "an input [N, C, H, W] or [C, H, W]", where);
  const AdaptivePool2dAttrs o = adaptive_pool2d_from_json(a, where);
  const size_t r = y.size();
  if (y[r - 2] < 1 || y[r - 1] < 1) fail(where, ": expected a non-empty input plane, found shape ", shape_str(y));
  y[r - 2] = o.oh, y[r - 1] = o.ow;
  return y;
}

Shape cat_shape(const Types& in, const json& a, const std::string& where) {
  // As ops::cat: 1-D empty inputs are skipped (torch's legacy rule); the rest agree off `dim`.
  std::vector<const Shape*> xs;
  for (const ValueType& v : in)
    if (!(v.shape.size() == 1 && v.shape[0] == 0)) xs.push_back(&v.shape);
  if (xs.empty()) return in[0].shape;
  Shape y = *xs[0];
  if (y.empty()) fail(where, ": expected inputs with at least one dim, found a 0-d input");
  const int64_t d = read_int(a, attr::dim, where);
  if (d < -int64_t(y.size()) || d >= int64_t(y.size()))
    fail(where, ": attribute 'dim' is ", d, "; expected a dim of the ", y.size(), "-d inputs");
  const size_t k = size_t(d < 0 ? d + int64_t(y.size()) : d);
  y[k] = 0;
  for (const Shape* s : xs) {
    bool ok = s->size() == y.size();
    for (size_t i = 0; ok && i < y.size(); ++i) ok = i == k || (*s)[i] == y[i];
    if (!ok) fail(where, ": expected inputs of one shape except dim ", d, ", found ", shape_str(*xs[0]), " and ", shape_str(*s));
    y[k] = checked_add(y[k], (*s)[k], (where + ": the concatenated dim").c_str());
  }
  return y;
}

Shape flatten_shape(const Types& in, const json& a, const std::string& where) {
  const Shape& x = in[0].shape;
  const int64_t s0 = read_int(a, attr::start_dim, where), e0 = read_int(a, attr::end_dim, where);
  if (x.empty()) return {1};
  const int64_t r = int64_t(x.size());
  if (s0 < -r || s0 >= r || e0 < -r || e0 >= r)
    fail(where, ": attributes 'start_dim' and 'end_dim' are ", s0, " and ", e0, "; expected dims of the ", r, "-d input");
  const int64_t s = s0 < 0 ? s0 + r : s0, e = e0 < 0 ? e0 + r : e0;
  if (s > e) fail(where, ": expected start_dim <= end_dim, found ", s, " and ", e);
  Shape y(x.begin(), x.begin() + s);
  int64_t m = 1;
  for (int64_t d = s; d <= e; ++d) m = checked_mul(m, x[size_t(d)], (where + ": the flattened dim").c_str());
  y.push_back(m);
  y.insert(y.end(), x.begin() + e + 1, x.end());
  return y;
}

Shape reshape_shape(const Types& in, const json& a, const std::string& where) {
  Shape s = read_ints(a, attr::shape, where);
  const int64_t numel = checked_numel(in[0].shape, (where + ": the input").c_str());
  int64_t known = 1, neg = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (neg >= 0) fail(where, ": attribute 'shape' is ", shape_str(s), "; expected at most one -1");
      neg = int64_t(i);
    } else if (s[i] != 0 && known > std::numeric_limits<int64_t>::max() / s[i]) {
      fail(where, ": attribute 'shape' is ", shape_str(s), "; expected the ", numel, " elements of input ",
           shape_str(in[0].shape));
    } else {
      known *= s[i];
    }
  }
  if (neg >= 0 && known != 0 && numel % known == 0) s[size_t(neg)] = numel / known;
  else if (neg >= 0 || known != numel)
    fail(where, ": attribute 'shape' is ", shape_str(s), "; expected the ", numel, " elements of input ",
         shape_str(in[0].shape));
  return s;
}

Shape pad_shape(const Types& in, const json& a, const std::string& where) {
  const std::vector<int64_t> p = read_ints(a, attr::pads, where);
  Shape y = in[0].shape;
  if (p.size() % 2 != 0 || p.size() > 2 * y.size())
    fail(where, ": attribute 'pads' has ", p.size(), " entries; expected (low, high) pairs for at most the ", y.size(),
         " dims of input ", shape_str(y));
  for (size_t i = 0; i < p.size(); ++i) {
    const size_t d = y.size() - 1 - i / 2;
    y[d] = checked_add(y[d], p[i], (where + ": the padded dim").c_str());
  }
  return y;
}

Shape mean_shape(const Types& in, const json& a, const std::string& where) {
  const std::vector<int64_t> d = read_ints(a, attr::dims, where);
  const bool keep = read_bool(a, attr::keepdim, where, false);
  try {
    return reduced_shape(in[0].shape, normalize_dims(d, int64_t(in[0].shape.size()), "mean"), keep);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
}

// ---- the infer functions of the table ----

template <Shape (*F)(const Types&, const json&, const std::string&)>
Types float_like(const Types& in, const json& a, const std::string& w) {
  return {{F(in, a, w), in[0].dtype}};
}
template <Shape (*F)(const Types&, const json&, const std::string&)>
Types coded(const Types& in, const json& a, const std::string& w) {
  return {{F(in, a, w), std::nullopt}};
}
Shape same_shape(const Types& in, const json&, const std::string&) { return in[0].shape; }
Shape conv2d_rule(const Types& in, const json& a, const std::string& w) { return conv2d_shape(in, a, w); }
Shape linear_rule(const Types& in, const json&, const std::string& w) { return linear_shape(in, w); }
Shape broadcast_rule(const Types& in, const json&, const std::string& w) {
  try {
    return broadcast_shapes(in[0].shape, in[1].shape, "broadcast");
  } catch (const Error& e) {
    fail(w, ": ", e.what());
  }
}
Shape softmax_rule(const Types& in, const json& a, const std::string& w) {
  const int64_t d = read_int(a, attr::dim, w), r = int64_t(in[0].shape.size());
  if (d < -std::max<int64_t>(r, 1) || d >= std::max<int64_t>(r, 1))
    fail(w, ": attribute 'dim' is ", d, "; expected a dim of the ", r, "-d input");
  return in[0].shape;
}
Shape same_two(const Types& in, const json&, const std::string& w) {
  if (in[0].shape != in[1].shape)
    fail(w, ": expected two operands of one shape, found ", shape_str(in[0].shape), " and ", shape_str(in[1].shape));
  return in[0].shape;
}
Types f32_out_linear(const Types& in, const json&, const std::string& w) { return {{linear_shape(in, w), DType::f32}}; }
Types f32_out_same(const Types& in, const json&, const std::string&) { return {{in[0].shape, DType::f32}}; }

using A = std::vector<AttrSpec>;
const A kConv = {attr::stride, attr::padding, attr::dilation, attr::groups};
const A kMaxPool = {attr::kernel, attr::stride, attr::padding, attr::ceil_mode};
const A kAvgPool = {attr::kernel, attr::stride, attr::padding, attr::ceil_mode, attr::count_include_pad};

A operator+(A a, const A& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<OpSchema> build() {
  const std::vector<InputSpec> x = {{"x"}}, ab = {{"a"}, {"b"}}, xwb = {{"x"}, {"w"}, {"b", true}},
                               xwbrq = {{"x"}, {"w"}, {"b", true}, {"rq", true}};
  std::vector<OpSchema> t = {
      // ---- float ops ----
      {"conv2d", xwb, 2, false, kConv + A{attr::act}, float_like<conv2d_rule>},
      {"linear", xwb, 2, false, {attr::act}, float_like<linear_rule>},
      {"batch_norm", {{"x"}, {"weight"}, {"bias"}, {"running_mean"}, {"running_var"}}, 5, false,
       {attr::eps, attr::training}, float_like<same_shape>},
      {"add", ab, 2, false, {attr::alpha, attr::act}, float_like<broadcast_rule>},
      {"sub", ab, 2, false, {attr::alpha, attr::act}, float_like<broadcast_rule>},
      {"mul", ab, 2, false, {}, float_like<broadcast_rule>},
      {"div", ab, 2, false, {}, float_like<broadcast_rule>},
      {"add_scalar", x, 1, false, {attr::value}, float_like<same_shape>},
      {"mul_scalar", x, 1, false, {attr::value}, float_like<same_shape>},
  };
  for (const char* u : {"relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu", "gelu_tanh"})
    t.push_back({u, x, 1, false, {}, float_like<same_shape>});
  const std::vector<OpSchema> rest = {
      {"leaky_relu", x, 1, false, {attr::negative_slope}, float_like<same_shape>},
      {"max_pool2d", x, 1, false, kMaxPool, float_like<pool2d_shape>},
      {"avg_pool2d", x, 1, false, kAvgPool, float_like<pool2d_shape>},
      {"adaptive_avg_pool2d", x, 1, false, {attr::output_size}, float_like<adaptive_shape>},
      {"mean", x, 1, false, {attr::dims, attr::keepdim}, float_like<mean_shape>},
      {"softmax", x, 1, false, {attr::dim}, float_like<softmax_rule>},
      {"cat", x, 1, true, {attr::dim}, float_like<cat_shape>},
      {"flatten", x, 1, false, {attr::start_dim, attr::end_dim}, float_like<flatten_shape>},
      {"reshape", x, 1, false, {attr::shape}, float_like<reshape_shape>},
      {"pad", x, 1, false, {attr::pads, attr::value}, float_like<pad_shape>},
      // ---- integer ops ----
      {"quantize", x, 1, false, {}, coded<same_shape>},
      {"dequantize", {{"q"}}, 1, false, {}, f32_out_same},
      {"qconv2d", xwbrq, 4, false, kConv + A{attr::qmin, attr::qmax}, coded<conv2d_rule>},
      {"qlinear", xwbrq, 4, false, {attr::qmin, attr::qmax}, coded<linear_rule>},
      {"qadd", ab, 2, false, {attr::qmin, attr::qmax}, coded<same_two>},
      {"qmax_pool2d", x, 1, false, kMaxPool, float_like<pool2d_shape>},
      {"qavg_pool2d", x, 1, false, kAvgPool, coded<pool2d_shape>},
      {"qadaptive_avg_pool2d", x, 1, false, {attr::output_size}, coded<adaptive_shape>},
      {"qrelu", x, 1, false, {}, float_like<same_shape>},
      {"qrelu6", x, 1, false, {}, float_like<same_shape>},
      {"qcat", x, 1, true, {attr::dim}, coded<cat_shape>},
      {"dq_linear", xwb, 2, false, {attr::act, attr::per_row}, f32_out_linear},
  };
  t.insert(t.end(), rest.begin(), rest.end());
  const std::vector<OpSchema> rnn = rnn_op_schemas();
  t.insert(t.end(), rnn.begin(), rnn.end());
  const std::vector<OpSchema> tf = transformer_op_schemas();
  t.insert(t.end(), tf.begin(), tf.end());
  return t;
}

}  // namespace

void OpSchema::check_node(const std::vector<bool>& absent, const json& node_attrs, const std::string& where) const {
  const int n = int(absent.size());
  if (n < min_inputs || (!variadic && n > int(inputs.size())))
    fail(where, ": has ", n, " inputs; expected ", min_inputs, variadic ? " or more" : max_inputs() == min_inputs ? "" : " to ",
         variadic || max_inputs() == min_inputs ? std::string() : std::to_string(max_inputs()));
  for (size_t i = 0; i < absent.size(); ++i)
    if (absent[i] && !may_be_absent(i))
      fail(where, ": input ", i, " (", variadic ? inputs[0].name : inputs[i].name,
           ") is absent; expected a value (only optional inputs may be -1)");
  for (const AttrSpec& s : attrs) check_attr(node_attrs, s, where);
}

const std::vector<OpSchema>& op_schemas() {
  static const std::vector<OpSchema> t = build();
  return t;
}

const OpSchema* find_op_schema(const std::string& op) {
  static const std::map<std::string, const OpSchema*> m = [] {
    std::map<std::string, const OpSchema*> r;
    for (const OpSchema& s : op_schemas()) r[s.name] = &s;
    return r;
  }();
  const auto it = m.find(op);
  return it == m.end() ? nullptr : it->second;
}

std::vector<ValueType> infer_types(const OpSchema& op, const std::vector<ValueType>& in, const json& attrs,
                                   const std::string& where) {
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i].absent && !op.may_be_absent(i)) fail(where, ": input ", i, " is absent; expected a value");
  return op.infer(in, attrs, where);
}

}  // namespace finch::ops
