// The `pad` op (runtime/ops.md): constant padding of f32 values and of integer codes (filled with
// the zero point), the way capture records a Conv1d's even-kernel "same" padding; its attribute
// and shape checks name the node, what they expected and what they found.
#include <gtest/gtest.h>

#include "ops/op_schema.h"
#include "ops/shape.h"
#include "runtime/executor.h"
#include "runtime/op_table.h"

using namespace finch;
using namespace finch::runtime;
using json = nlohmann::json;

namespace {

// One pad node on an input of `shape` and `dtype` (codes: scale 0.1, zero point `z`).
Graph pad_graph(const Shape& shape, DType dtype, const json& attrs, const Shape& out, int32_t z = 5) {
  Graph g;
  std::optional<QuantInfo> q;
  if (dtype != DType::f32) q = QuantInfo{{0.1f}, {z}, -1, -128, 127};
  const int32_t x = g.add_value({"x", shape, dtype, q, {}});
  const int32_t y = g.add_value({"y", out, dtype, q, {}});
  g.nodes.push_back(Node{"pad", "p", {x}, {y}, attrs});
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

std::string load_error(const Graph& g) {
  try {
    Program p(g, "pad");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PadOp, FloatPadsLastDimsWithValue) {
  const Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {1, 2, 3});
  Program p(pad_graph({1, 2, 3}, DType::f32, {{"pads", {1, 2}}, {"value", -0.5}}, {1, 2, 6}), "pad");
  const Tensor y = p.run(x);
  ASSERT_EQ(y.shape(), (Shape{1, 2, 6}));
  EXPECT_EQ(y.contiguous().to_vector<float>(),
            (std::vector<float>{-0.5f, 1, 2, 3, -0.5f, -0.5f, -0.5f, 4, 5, 6, -0.5f, -0.5f}));
  // Two dims, and the batch follows the input.
  Program p2(pad_graph({1, 2, 3}, DType::f32, {{"pads", {0, 1, 1, 0}}, {"value", 0}}, {1, 3, 4}), "pad");
  const Tensor x2 = from_vector(std::vector<float>(12, 1.0f), {2, 2, 3});
  const Tensor y2 = p2.run(x2);
  EXPECT_EQ(y2.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(y2.contiguous().to_vector<float>(), ops::pad(x2, {0, 1, 1, 0}, "constant", 0.0).to_vector<float>());
}

TEST(PadOp, CodesAreFilledWithTheZeroPoint) {
  const Node n{"pad", "p", {0}, {1}, {{"pads", {2, 1}}, {"value", 0}}};
  const Graph g = pad_graph({1, 1, 2}, DType::i8, n.attrs, {1, 1, 5}, -7);
  const Tensor x = from_vector(std::vector<int32_t>{10, -20}, {1, 1, 2}).to(DType::i8);
  const Tensor y = find_op("pad")->fn(n, {x}, g)[0];
  EXPECT_EQ(y.dtype(), DType::i8);
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{-7, -7, 10, -20, -7}));
  // A fill other than 0 is not a code of every grid: refused.
  const Node bad{"pad", "p", {0}, {1}, {{"pads", {2, 1}}, {"value", 0.3}}};
  EXPECT_THROW(find_op("pad")->fn(bad, {x}, g), Error);
}

TEST(PadOp, LoaderRejectsBadAttributes) {
  // An odd count, more pairs than dims, a negative or huge entry, a missing value.
  EXPECT_NE(load_error(pad_graph({1, 2, 3}, DType::f32, {{"pads", {1}}, {"value", 0}}, {1, 2, 4})).find("pairs"),
            std::string::npos);
  EXPECT_NE(load_error(pad_graph({2, 3}, DType::f32, {{"pads", {1, 1, 1, 1, 1, 1}}, {"value", 0}}, {4, 5}))
                .find("pads"),
            std::string::npos);
  EXPECT_NE(load_error(pad_graph({1, 2, 3}, DType::f32, {{"pads", {-1, 2}}, {"value", 0}}, {1, 2, 4})).find("pads"),
            std::string::npos);
  EXPECT_NE(load_error(pad_graph({1, 2, 3}, DType::f32, {{"pads", {1, 70000}}, {"value", 0}}, {1, 2, 70004}))
                .find("pads"),
            std::string::npos);
  EXPECT_NE(load_error(pad_graph({1, 2, 3}, DType::f32, {{"pads", {1, 1}}}, {1, 2, 5})).find("value"),
            std::string::npos);
  // A declared output shape that is not the padded one.
  EXPECT_NE(load_error(pad_graph({1, 2, 3}, DType::f32, {{"pads", {1, 1}}, {"value", 0}}, {1, 2, 4})), "");
  EXPECT_EQ(load_error(pad_graph({1, 2, 3}, DType::f32, {{"pads", {1, 1}}, {"value", 0}}, {1, 2, 5})), "");
}
