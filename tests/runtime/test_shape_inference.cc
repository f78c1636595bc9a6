// Shape inference of the op schema (ops/op_schema.h) against what the runtime's kernels really
// produce: every deployable op, a few shapes and attribute settings each (strides, padding,
// dilation, groups, ceil_mode, 3-D pools, broadcasting, negative dims, -1 in reshape).
#include <gtest/gtest.h>

#include <set>

#include "framework/random.h"
#include "ops/op_schema.h"
#include "runtime/op_table.h"

using namespace finch;
using namespace finch::runtime;
using json = nlohmann::json;

namespace {

struct Case {
  std::string op;
  std::vector<Tensor> in;  // undefined: an absent optional input
  json attrs;
};

const QuantInfo kQ{{0.05f}, {0}, -1, -128, 127};

Tensor f32(const Shape& s, uint64_t seed = 1) {
  Generator g(seed);
  return randn(s, g);
}
Tensor i8(const Shape& s) { return zeros(s, DType::i8); }

std::set<std::string>& covered() {
  static std::set<std::string> s;
  return s;
}

// Runs the op's plain fn on the case and compares its output with infer_types.
void check(const Case& c) {
  SCOPED_TRACE(c.op + " " + c.attrs.dump());
  covered().insert(c.op);
  Graph g;
  Node n{c.op, "n", {}, {}, c.attrs};
  std::vector<ops::ValueType> types;
  for (size_t i = 0; i < c.in.size(); ++i) {
    if (!c.in[i].defined()) {
      n.inputs.push_back(-1);
      types.push_back({{}, std::nullopt, true});
      continue;
    }
    const bool coded = c.in[i].dtype() == DType::i8;
    n.inputs.push_back(g.add_value({"in" + std::to_string(i), c.in[i].shape(), c.in[i].dtype(),
                                    coded ? std::optional<QuantInfo>(kQ) : std::nullopt, {}}));
    types.push_back({c.in[i].shape(), c.in[i].dtype(), false});
  }
  n.outputs.push_back(g.add_value({"out", {}, DType::i8, kQ, {}}));
  const ops::OpSchema* s = ops::find_op_schema(c.op);
  ASSERT_NE(s, nullptr);
  std::vector<bool> absent;
  for (int32_t v : n.inputs) absent.push_back(v < 0);
  s->check_node(absent, c.attrs, "test");
  const std::vector<ops::ValueType> want = ops::infer_types(*s, types, c.attrs, "test");
  const std::vector<Tensor> got = find_op(c.op)->fn(n, c.in, g);
  ASSERT_EQ(want.size(), got.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(want[k].shape, got[k].shape());
    if (want[k].dtype) EXPECT_EQ(*want[k].dtype, got[k].dtype());
    else EXPECT_TRUE(got[k].dtype() == DType::i8 || got[k].dtype() == DType::u8);
  }
}

json conv(int64_t s, int64_t p, int64_t d, int64_t groups) {
  ops::Conv2dParams c;
  c.sh = s, c.sw = s == 1 ? 2 : 1, c.ph = p, c.pw = 0, c.dh = d, c.dw = 1, c.groups = groups;
  return ops::to_json(c);
}
json pool(int64_t k, int64_t s, int64_t p, bool ceil, ops::PoolKind kind, bool include_pad = true) {
  return ops::to_json(ops::Pool2dParams{k, k, s, s, p, p, ceil, include_pad}, kind);
}
json with(json a, const json& more) {
  a.update(more);
  return a;
}

}  // namespace

static void float_cases() {
  for (const json& a : {conv(1, 1, 1, 1), conv(2, 0, 2, 1), conv(3, 2, 1, 1)}) {
    check({"conv2d", {f32({2, 3, 9, 7}), f32({4, 3, 3, 2}), f32({4})}, with(a, {{"act", "relu"}})});
    check({"conv2d", {f32({1, 3, 9, 7}), f32({5, 3, 1, 1})}, a});
  }
  check({"conv2d", {f32({1, 4, 6, 6}), f32({6, 2, 3, 3}), Tensor()}, conv(1, 1, 1, 2)});  // grouped, absent bias
  check({"conv2d", {f32({1, 3, 8, 8}), f32({6, 1, 3, 3}), f32({6})}, conv(2, 1, 1, 3)});  // depthwise, multiplier 2
  check({"linear", {f32({3, 5}), f32({4, 5}), f32({4})}, {{"act", "relu6"}}});
  check({"linear", {f32({2, 3, 5}), f32({4, 5})}, json::object()});
  check({"linear", {f32({5}), f32({2, 5})}, json::object()});
  check({"batch_norm", {f32({2, 3, 4, 4}), f32({3}), f32({3}), f32({3}), full({3}, 1.0)}, {{"eps", 1e-5}}});
  for (const char* op : {"add", "sub", "mul", "div"}) {
    check({op, {f32({2, 3, 4}), f32({3, 1})}, json::object()});
    check({op, {f32({1, 4}), f32({3, 1})}, json::object()});
  }
  check({"add", {f32({2, 3}), f32({2, 3})}, {{"alpha", 0.5}, {"act", "relu"}}});
  check({"add_scalar", {f32({2, 3})}, {{"value", 2.5}}});
  check({"mul_scalar", {f32({4})}, {{"value", -1}}});
  for (const char* op : {"relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu", "gelu_tanh"})
    check({op, {f32({2, 5, 3})}, json::object()});
  check({"leaky_relu", {f32({2, 5})}, {{"negative_slope", 0.2}}});
  for (const char* op : {"max_pool2d", "avg_pool2d"}) {
    const ops::PoolKind kind = std::string(op) == "max_pool2d" ? ops::PoolKind::max : ops::PoolKind::avg;
    check({op, {f32({1, 2, 7, 7})}, pool(3, 2, 1, true, kind)});
    check({op, {f32({2, 3, 8, 5})}, pool(2, 2, 0, false, kind)});
    check({op, {f32({2, 5, 5})}, pool(3, 1, 1, true, kind, false)});  // 3-D [C, H, W]
  }
  check({"adaptive_avg_pool2d", {f32({1, 2, 7, 5})}, ops::to_json(ops::AdaptivePool2dAttrs{3, 2})});
  check({"adaptive_avg_pool2d", {f32({3, 4, 4})}, ops::to_json(ops::AdaptivePool2dAttrs{1, 1})});
  check({"mean", {f32({2, 3, 4, 5})}, {{"dims", {2, 3}}, {"keepdim", true}}});
  check({"mean", {f32({2, 3, 4, 5})}, {{"dims", {-1, 1}}, {"keepdim", false}}});
  check({"mean", {f32({2, 3})}, {{"dims", json::array()}}});
  check({"softmax", {f32({2, 7})}, {{"dim", -1}}});
  check({"softmax", {f32({2, 7, 3})}, {{"dim", 1}}});
  check({"cat", {f32({2, 3}), f32({2, 4})}, {{"dim", 1}}});
  check({"cat", {f32({2, 3, 1}), f32({5, 3, 1}), f32({1, 3, 1})}, {{"dim", -3}}});
  check({"cat", {f32({0}), f32({2, 3})}, {{"dim", 0}}});  // a 1-D empty input is skipped, as torch
  check({"flatten", {f32({2, 3, 4, 5})}, {{"start_dim", 1}, {"end_dim", -1}}});
  check({"flatten", {f32({2, 3, 4, 5})}, {{"start_dim", 0}, {"end_dim", 1}}});
  check({"flatten", {i8({2, 3, 4})}, {{"start_dim", -2}, {"end_dim", -1}}});
  check({"reshape", {f32({2, 3, 4})}, {{"shape", {2, -1}}}});
  check({"reshape", {f32({2, 3, 4})}, {{"shape", {-1, 4, 3}}}});
  check({"reshape", {i8({2, 12})}, {{"shape", {2, 3, 4}}}});
  check({"pad", {f32({2, 3, 5})}, {{"pads", {3, 4}}, {"value", 0.5}}});
  check({"pad", {f32({2, 3, 5})}, {{"pads", {0, 1, 2, 0, 1, 1}}, {"value", 0}}});
  check({"pad", {i8({1, 4, 7})}, {{"pads", {1, 2}}, {"value", 0}}});
  // The recurrent models' ops (op_schema_rnn.cc): lengths, a projection, both directions.
  const Tensor len = from_vector<int64_t>({3, 1}, {2});
  check({"lstm", {f32({2, 3, 4}), len, f32({8, 4}), f32({8, 2}), f32({8}), f32({8})}, {{"batch_first", true}}});
  check({"lstm", {f32({3, 2, 4}), Tensor(), f32({12, 4}), f32({12, 2}), Tensor(), Tensor(), f32({2, 3}), f32({12, 4}),
                  f32({12, 2}), Tensor(), Tensor(), f32({2, 3})}, json::object()});
  check({"gru", {f32({2, 3, 4}), len, f32({6, 4}), f32({6, 2}), f32({6}), f32({6}), f32({6, 4}), f32({6, 2}), f32({6}),
                 f32({6})}, {{"batch_first", true}}});
  check({"embedding", {from_vector<int64_t>({0, 2, 1, 2}, {2, 2}), f32({3, 5})}, json::object()});
  check({"permute", {f32({2, 3, 4})}, {{"dims", {0, 2, 1}}}});
  check({"select", {f32({2, 3, 4})}, {{"dim", 0}, {"index", -1}}});
  // The per-sample step ops (op_schema_rnn.cc): any dtype for mask_steps (codes fill the zero point).
  check({"mask_steps", {f32({2, 3, 4}), from_vector<int64_t>({4, 2}, {2})}, json::object()});
  check({"mask_steps", {i8({2, 4}), from_vector<int64_t>({1, 3}, {2})}, json::object()});
  check({"mean_steps", {f32({2, 3, 4}), from_vector<int64_t>({4, 2}, {2})}, json::object()});
  // The transformer encoder's ops (op_schema_transformer.cc).
  check({"layer_norm", {f32({2, 3, 8}), f32({8}), f32({8})}, {{"eps", 1e-12}}});
  check({"layer_norm", {f32({5}), Tensor(), Tensor()}, {{"eps", 1e-5}}});
  check({"attention", {f32({2, 5, 8}), f32({2, 5, 8}), f32({2, 5, 8}), from_vector<int64_t>({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {2, 5})},
         {{"heads", 2}}});
  check({"attention", {f32({1, 3, 6}), f32({1, 3, 6}), f32({1, 3, 6})}, {{"heads", 3}}});
  check({"narrow_like", {f32({9, 4}), zeros({2, 5}, DType::i64)}, {{"dim", 0}, {"like_dim", 1}}});
}

static void integer_cases() {
  check({"quantize", {f32({2, 3})}, json::object()});
  check({"dequantize", {i8({2, 3, 4})}, json::object()});
  const json range = ops::to_json(ops::CodeRange{-128, 127});
  for (const json& a : {conv(1, 1, 1, 1), conv(2, 0, 2, 1)}) {
    check({"qconv2d", {i8({1, 3, 9, 7}), i8({4, 3, 3, 2}), Tensor(), Tensor()}, with(a, range)});
    check({"qconv2d", {i8({2, 3, 9, 7}), i8({4, 3, 3, 2}), zeros({4}, DType::i32), Tensor()}, with(a, range)});
  }
  check({"qconv2d", {i8({1, 4, 6, 6}), i8({4, 1, 3, 3}), Tensor(), Tensor()}, with(conv(2, 1, 1, 4), range)});
  check({"qlinear", {i8({2, 5}), i8({3, 5}), Tensor(), Tensor()}, range});
  check({"qlinear", {i8({2, 4, 5}), i8({3, 5}), zeros({3}, DType::i32), Tensor()}, range});
  check({"qadd", {i8({2, 3, 4}), i8({2, 3, 4})}, range});
  check({"qmax_pool2d", {i8({1, 2, 7, 7})}, pool(3, 2, 1, true, ops::PoolKind::max)});
  check({"qmax_pool2d", {i8({2, 3, 8, 5})}, pool(2, 2, 0, false, ops::PoolKind::max)});
  check({"qavg_pool2d", {i8({1, 2, 7, 7})}, pool(3, 2, 1, true, ops::PoolKind::avg, false)});
  check({"qadaptive_avg_pool2d", {i8({1, 2, 7, 5})}, ops::to_json(ops::AdaptivePool2dAttrs{3, 2})});
  check({"qrelu", {i8({2, 5})}, json::object()});
  check({"qrelu6", {i8({2, 5})}, json::object()});
  check({"qcat", {i8({1, 2, 3, 3}), i8({1, 3, 3, 3})}, {{"dim", 1}}});
  check({"dq_linear", {f32({2, 5}), i8({3, 5}), f32({3})}, {{"act", "none"}}});
  check({"dq_linear", {f32({4, 2, 5}), i8({3, 5})}, json::object()});
  check({"dq_lstm", {f32({2, 3, 4}), from_vector<int64_t>({3, 1}, {2}), i8({8, 4}), i8({8, 2}), f32({8}), f32({8})},
         {{"batch_first", true}}});
  check({"dq_gru", {f32({3, 2, 4}), Tensor(), i8({6, 4}), i8({6, 2}), Tensor(), Tensor(), i8({6, 4}), i8({6, 2})},
         json::object()});
  check({"qembedding", {from_vector<int64_t>({0, 2, 1}, {3}), i8({3, 5})}, json::object()});
  check({"qattention", {i8({2, 5, 8}), i8({2, 5, 8}), i8({2, 5, 8}), from_vector<int64_t>({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {2, 5})},
         {{"heads", 2}}});
  check({"qattention", {i8({1, 3, 6}), i8({1, 3, 6}), i8({1, 3, 6})}, {{"heads", 3}}});
  check({"qgelu", {i8({2, 7})}, json::object()});
  check({"qgelu", {i8({3})}, {{"integer", true}}});
  {  // qlstm reads per-row weight scales: its own graph (the cases above share one scale)
    Graph g;
    const QuantInfo rows{std::vector<float>(8, 0.01f), std::vector<int32_t>(8, 0), 0, -127, 127};
    Node n{"qlstm", "n", {}, {}, {{"batch_first", true}, {"k_cell", 11}}};
    n.inputs = {g.add_value({"x", {2, 3, 4}, DType::i8, kQ, {}}), -1, g.add_value({"w_ih", {8, 4}, DType::i8, rows, {}}),
                g.add_value({"w_hh", {8, 2}, DType::i8, rows, {}}), -1, -1};
    n.outputs = {g.add_value({"y", {}, DType::i8, kQ, {}}), g.add_value({"h", {}, DType::i8, kQ, {}})};
    covered().insert("qlstm");
    const std::vector<ops::ValueType> want = ops::infer_types(
        *ops::find_op_schema("qlstm"),
        {{{2, 3, 4}, DType::i8, false}, {{}, std::nullopt, true}, {{8, 4}, DType::i8, false}, {{8, 2}, DType::i8, false},
         {{}, std::nullopt, true}, {{}, std::nullopt, true}},
        n.attrs, "test");
    const std::vector<Tensor> got = find_op("qlstm")->fn(n, {i8({2, 3, 4}), Tensor(), i8({8, 4}), i8({8, 2}), Tensor(), Tensor()}, g);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(want[0].shape, got[0].shape());
    EXPECT_EQ(want[1].shape, got[1].shape());
  }
  {  // qgru: the same with 3H gate rows and no k_cell
    Graph g;
    const QuantInfo rows{std::vector<float>(6, 0.01f), std::vector<int32_t>(6, 0), 0, -127, 127};
    Node n{"qgru", "n", {}, {}, {{"batch_first", true}}};
    n.inputs = {g.add_value({"x", {2, 3, 4}, DType::i8, kQ, {}}), -1, g.add_value({"w_ih", {6, 4}, DType::i8, rows, {}}),
                g.add_value({"w_hh", {6, 2}, DType::i8, rows, {}}), -1, -1};
    // h in [-1, 1] (the GRU's state): the scale the h update's fixed-point form takes.
    const QuantInfo h{{1.0f / 128}, {0}, -1, -128, 127};
    n.outputs = {g.add_value({"y", {}, DType::i8, h, {}}), g.add_value({"h", {}, DType::i8, h, {}})};
    covered().insert("qgru");
    const std::vector<ops::ValueType> want = ops::infer_types(
        *ops::find_op_schema("qgru"),
        {{{2, 3, 4}, DType::i8, false}, {{}, std::nullopt, true}, {{6, 4}, DType::i8, false}, {{6, 2}, DType::i8, false},
         {{}, std::nullopt, true}, {{}, std::nullopt, true}},
        n.attrs, "test");
    const std::vector<Tensor> got = find_op("qgru")->fn(n, {i8({2, 3, 4}), Tensor(), i8({6, 4}), i8({6, 2}), Tensor(), Tensor()}, g);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(want[0].shape, got[0].shape());
    EXPECT_EQ(want[1].shape, got[1].shape());
  }
}

TEST(ShapeInference, FloatOpsMatchTheKernels) { float_cases(); }
TEST(ShapeInference, IntegerOpsMatchTheKernels) { integer_cases(); }
TEST(ShapeInference, EveryOpCovered) {
  float_cases();
  integer_cases();
  for (const ops::OpSchema& s : ops::op_schemas()) EXPECT_TRUE(covered().count(s.name)) << s.name;
}

TEST(ShapeInference, RejectsWhatTheKernelsReject) {
  const ops::OpSchema& c = *ops::find_op_schema("conv2d");
  auto err = [&](const ops::OpSchema& s, std::vector<ops::ValueType> in, const json& a) {
    try {
      ops::infer_types(s, in, a, "node 'n'");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(err(c, {{{1, 3, 4}, DType::f32}, {{4, 3, 3, 3}, DType::f32}}, conv(1, 0, 1, 1)),
            "node 'n': expected an input [N, C, H, W], found shape [1, 3, 4]");
  EXPECT_EQ(err(c, {{{1, 3, 2, 9}, DType::f32}, {{4, 3, 3, 3}, DType::f32}}, conv(1, 0, 1, 1)),
            "node 'n': expected an input at least the dilated kernel, found input [1, 3, 2, 9] and weight [4, 3, 3, 3]");
  EXPECT_EQ(err(c, {{{1, 3, 5, 5}, DType::f32}, {{4, 3, 3, 3}, DType::f32}, {{3}, DType::f32}}, conv(1, 0, 1, 1)),
            "node 'n': expected a bias [4], found shape [3]");
  EXPECT_EQ(err(*ops::find_op_schema("add"), {{{2, 3}, DType::f32}, {{4}, DType::f32}}, json::object()),
            "node 'n': broadcast: shapes [2, 3] and [4] cannot be broadcast (dim -1: 3 vs 4)");
  EXPECT_EQ(err(*ops::find_op_schema("reshape"), {{{2, 3}, DType::f32}}, {{"shape", {4, -1}}}),
            "node 'n': attribute 'shape' is [4, -1]; expected the 6 elements of input [2, 3]");
  EXPECT_EQ(err(*ops::find_op_schema("reshape"), {{{2, 3}, DType::f32}}, {{"shape", {int64_t(1) << 40, int64_t(1) << 40}}}),
            "node 'n': attribute 'shape' is [1099511627776, 1099511627776]; expected the 6 elements of input [2, 3]");
  EXPECT_EQ(err(*ops::find_op_schema("cat"), {{{2, 3}, DType::f32}, {{3, 3}, DType::f32}}, {{"dim", 1}}),
            "node 'n': expected inputs of one shape except dim 1, found [2, 3] and [3, 3]");
}
