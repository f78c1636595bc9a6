// The op schema against the runtime: its op tables and ops.md list exactly the schema's ops with
// the schema's inputs and attributes, and programs with hostile attributes (edited into a
// well-formed file behind a valid checksum) are refused at load with one sentence naming the
// node, the attribute, what was expected and what was found.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "ops/op_schema.h"
#include "runtime/executor.h"
#include "runtime/op_table.h"
#include "runtime/program_file.h"
#include "tests/error_text.h"
#include "tests/runtime/program_bytes.h"

using namespace finch;
using namespace finch::runtime;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// ---- ops.md ----

struct DocRow {
  std::vector<std::string> inputs;  // names, "?" appended to optional ones
  bool variadic = false;
  std::set<std::string> attrs;
};

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> c;
  std::stringstream s(line.substr(1));
  std::string cell;
  while (std::getline(s, cell, '|')) c.push_back(cell);
  return c;
}

std::vector<std::string> backticked(const std::string& s) {
  std::vector<std::string> out;
  const std::regex re("`([^`]+)`");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

// Every row of ops.md's op tables, by op (a row may list several ops sharing inputs and attributes).
std::map<std::string, DocRow> read_ops_md() {
  std::ifstream f(std::string(FINCH_TEST_DATA_DIR) + "/../runtime/ops.md");
  EXPECT_TRUE(f.good()) << "cannot read runtime/ops.md";
  std::map<std::string, DocRow> rows;
  bool in_table = false;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("| op |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (line.rfind("|", 0) != 0) in_table = false;
    if (!in_table || line.rfind("|---", 0) == 0) continue;
    const auto c = cells(line);
    EXPECT_GE(c.size(), 3u) << line;
    if (c.size() < 3) continue;
    DocRow r;
    // Inputs are separated by commas outside brackets ("x [N,C,H,W], w [OC,K]").
    std::vector<std::string> items(1);
    int depth = 0;
    for (char ch : c[1]) {
      depth += (ch == '[' || ch == '(') - (ch == ']' || ch == ')');
      if (ch == ',' && depth == 0) items.emplace_back();
      else items.back() += ch;
    }
    for (std::string item : items) {
      const auto b = item.find_first_not_of(' ');
      if (b == std::string::npos) continue;
      item = item.substr(b);
      if (item.rfind("…", 0) == 0) {
        r.variadic = true;
        continue;
      }
      size_t e = 0;
      while (e < item.size() && (std::isalnum(static_cast<unsigned char>(item[e])) || item[e] == '_')) ++e;
      std::string name = item.substr(0, e);
      if (e < item.size() && item[e] == '?') name += "?";
      r.inputs.push_back(name);
    }
    for (const std::string& a : backticked(c[2])) r.attrs.insert(a);
    for (const std::string& op : backticked(c[0])) {
      EXPECT_FALSE(rows.count(op)) << op << " is listed twice in ops.md";
      rows[op] = r;
    }
  }
  return rows;
}

std::set<std::string> table_ops() {
  std::set<std::string> s;
  for (const auto& [name, impl] : float_ops()) s.insert(name);
  for (const auto& [name, impl] : quant_ops()) s.insert(name);
  for (const auto& [name, impl] : rnn_ops()) s.insert(name);
  return s;
}

}  // namespace

TEST(OpSchema, RuntimeTablesAreTheSchema) {
  std::set<std::string> schema;
  for (const ops::OpSchema& s : ops::op_schemas()) {
    EXPECT_TRUE(schema.insert(s.name).second) << s.name << " declared twice";
    EXPECT_NE(s.infer, nullptr) << s.name;
    EXPECT_NE(find_op(s.name), nullptr) << s.name << " has a schema but no runtime implementation";
  }
  for (const std::string& op : table_ops()) EXPECT_TRUE(schema.count(op)) << op << " runs but has no schema";
  EXPECT_EQ(schema, table_ops());
}

TEST(OpSchema, OpsMdListsEveryOpWithItsInputsAndAttributes) {
  const std::map<std::string, DocRow> doc = read_ops_md();
  std::set<std::string> documented;
  for (const auto& [op, row] : doc) documented.insert(op);
  EXPECT_EQ(documented, table_ops()) << "ops.md and the runtime's op tables list different ops";
  for (const ops::OpSchema& s : ops::op_schemas()) {
    SCOPED_TRACE(s.name);
    const auto it = doc.find(s.name);
    if (it == doc.end()) continue;
    const DocRow& r = it->second;
    EXPECT_EQ(r.variadic, s.variadic);
    if (s.variadic) {
      // "x0, x1, …": the repeated input, numbered.
      ASSERT_FALSE(r.inputs.empty());
      EXPECT_EQ(r.inputs[0], std::string(s.inputs[0].name) + "0");
    } else {
      std::vector<std::string> want;
      for (const ops::InputSpec& in : s.inputs) want.push_back(std::string(in.name) + (in.optional ? "?" : ""));
      EXPECT_EQ(r.inputs, want);
    }
    std::set<std::string> attrs;
    for (const ops::AttrSpec& a : s.attrs) attrs.insert(a.name);
    EXPECT_EQ(r.attrs, attrs);
  }
}

// ---- hostile attributes through Program loading ----

namespace {

Value act(const std::string& name, const Shape& s, DType dt = DType::f32) { return {name, s, dt, std::nullopt, {}}; }

// x [1,2,8,8] → conv1 (3×3, pad 1) → pool (2×2) → gap (1×1) → flat → [1, 4].
Graph float_graph() {
  Graph g;
  const int32_t x = g.add_value(act("x", {1, 2, 8, 8}));
  const int32_t w = g.add_value({"conv1.weight", {4, 2, 3, 3}, DType::f32, std::nullopt, full({4, 2, 3, 3}, 0.1)});
  const int32_t b = g.add_value({"conv1.bias", {4}, DType::f32, std::nullopt, zeros({4})});
  const int32_t c = g.add_value(act("conv1.out", {1, 4, 8, 8}));
  const int32_t p = g.add_value(act("pool.out", {1, 4, 4, 4}));
  const int32_t a = g.add_value(act("gap.out", {1, 4, 1, 1}));
  const int32_t y = g.add_value(act("flat.out", {1, 4}));
  ops::Conv2dParams cp;
  cp.ph = cp.pw = 1;
  json ca = ops::to_json(cp);
  ca["act"] = "relu";
  g.nodes.push_back({"conv2d", "conv1", {x, w, b}, {c}, ca});
  g.nodes.push_back({"max_pool2d", "pool", {c}, {p}, ops::to_json(ops::Pool2dParams{}, ops::PoolKind::max)});
  g.nodes.push_back({"adaptive_avg_pool2d", "gap", {p}, {a}, ops::to_json(ops::AdaptivePool2dAttrs{1, 1})});
  g.nodes.push_back({"flatten", "flat", {a}, {y}, {{"start_dim", 1}, {"end_dim", -1}}});
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

// x [1,4] f32 → quantize → sum = qadd(q, q) → dequantize.
Graph int8_graph() {
  Graph g;
  const QuantInfo q{{0.05f}, {0}, -1, -128, 127};
  const int32_t x = g.add_value(act("x", {1, 4}));
  const int32_t xq = g.add_value({"x.q", {1, 4}, DType::i8, q, {}});
  const int32_t s = g.add_value({"sum", {1, 4}, DType::i8, q, {}});
  const int32_t y = g.add_value(act("y", {1, 4}));
  g.nodes.push_back({"quantize", "x.quant", {x}, {xq}, json::object()});
  g.nodes.push_back({"qadd", "sum", {xq, xq}, {s}, ops::to_json(ops::CodeRange{-128, 127})});
  g.nodes.push_back({"dequantize", "y", {s}, {y}, json::object()});
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

// The error of loading `g` after `edit` changed its file's JSON ("" when it loads).
template <typename Edit>
std::string load_error(const Graph& g, Edit edit) {
  test::ProgramParts p = test::split_program(serialize_program(g));
  ojson doc = ojson::parse(p.json);
  edit(doc);
  p.json = doc.dump();
  const std::vector<uint8_t> f = test::join_program(p);
  return test::error_of([&] { Program(parse_program(f.data(), f.size(), "edited.finch"), "edited.finch"); });
}

}  // namespace

TEST(OpSchema, UneditedProgramsLoadAndRun) {
  Program f(float_graph(), "float");
  EXPECT_EQ(f.run(full({3, 2, 8, 8}, 1.0)).shape(), (Shape{3, 4}));
  Program q(int8_graph(), "int8");
  EXPECT_EQ(q.run(full({2, 4}, 0.5)).shape(), (Shape{2, 4}));
  EXPECT_EQ(load_error(float_graph(), [](ojson&) {}), "");
  // Attributes an op does not declare are ignored, as they always were (lowering of older trees
  // left the conv's `act` on qconv2d nodes; a later tree may add one such as `layout`).
  EXPECT_EQ(load_error(int8_graph(), [](ojson& d) {
              d["nodes"][1]["attrs"]["act"] = "relu";
              d["nodes"][1]["attrs"]["layout"] = "nchw";
            }),
            "");
}

TEST(OpSchema, HostileAttributesRejectedAtLoad) {
  const Graph fg = float_graph(), qg = int8_graph();
  auto attr = [&](const Graph& g, int node, const char* key, ojson v) {
    return load_error(g, [&](ojson& d) { d["nodes"][node]["attrs"][key] = v; });
  };
  EXPECT_EQ(attr(fg, 0, "stride", {int64_t(1) << 62, 1}),
            "edited.finch: node 'conv1' (conv2d): attribute 'stride' is [4611686018427387904,1]; expected a list of 2 "
            "integers in [1, 65536]");
  EXPECT_EQ(attr(fg, 0, "stride", {0, 1}),
            "edited.finch: node 'conv1' (conv2d): attribute 'stride' is [0,1]; expected a list of 2 integers in [1, 65536]");
  EXPECT_EQ(attr(fg, 0, "stride", {-2, 1}),
            "edited.finch: node 'conv1' (conv2d): attribute 'stride' is [-2,1]; expected a list of 2 integers in [1, 65536]");
  EXPECT_EQ(attr(fg, 0, "stride", "1"),
            "edited.finch: node 'conv1' (conv2d): attribute 'stride' is \"1\"; expected a list of 2 integers in [1, 65536]");
  EXPECT_EQ(attr(fg, 0, "groups", int64_t(1) << 40),
            "edited.finch: node 'conv1' (conv2d): attribute 'groups' is 1099511627776; expected an integer in [1, 2147483647]");
  EXPECT_EQ(attr(fg, 0, "act", "gelu"),
            "edited.finch: node 'conv1' (conv2d): attribute 'act' is \"gelu\"; expected \"none\", \"relu\" or \"relu6\"");
  EXPECT_EQ(attr(fg, 1, "kernel", {int64_t(1) << 62, 2}),
            "edited.finch: node 'pool' (max_pool2d): attribute 'kernel' is [4611686018427387904,2]; expected a list of "
            "2 integers in [1, 65536]");
  EXPECT_EQ(attr(fg, 1, "ceil_mode", 1),
            "edited.finch: node 'pool' (max_pool2d): attribute 'ceil_mode' is 1; expected true or false");
  EXPECT_EQ(attr(fg, 3, "start_dim", 1000),
            "edited.finch: node 'flat' (flatten): attribute 'start_dim' is 1000; expected an integer in [-64, 64]");
  EXPECT_EQ(attr(qg, 1, "qmin", int64_t(1) << 40),
            "edited.finch: node 'sum' (qadd): attribute 'qmin' is 1099511627776; expected an integer in [-2147483648, "
            "2147483647]");
  EXPECT_EQ(load_error(fg, [](ojson& d) { d["nodes"][0]["attrs"].erase("padding"); }),
            "edited.finch: node 'conv1' (conv2d): attribute 'padding' is missing; expected a list of 2 integers in [0, "
            "65536]");
  // Well-formed attributes that disagree with the shapes are refused by shape inference before
  // anything is allocated: a 65536 x 65536 average would be 32 GiB.
  EXPECT_EQ(attr(fg, 2, "output_size", {65536, 65536}),
            "edited.finch: node 'gap' (adaptive_avg_pool2d) computes [1, 4, 65536, 65536] F32 for value 'gap.out', "
            "but the program declares [1, 4, 1, 1] F32");
  EXPECT_EQ(attr(fg, 0, "groups", 3),
            "edited.finch: node 'conv1' (conv2d): expected input channels (2) and output channels (4) divisible by "
            "groups (3), found weight [4, 2, 3, 3]");
  EXPECT_EQ(attr(fg, 0, "groups", 2),
            "edited.finch: node 'conv1' (conv2d): expected a weight [OC, 1, KH, KW] for 2 input channels in 2 groups, "
            "found [4, 2, 3, 3]");
  EXPECT_EQ(attr(fg, 1, "kernel", {20, 20}),
            "edited.finch: node 'pool' (max_pool2d): expected an input plane at least the kernel, found shape [1, 4, 8, 8]");
  // Input counts come from the schema.
  EXPECT_EQ(load_error(fg, [](ojson& d) { d["nodes"][0]["inputs"] = {0}; }),
            "edited.finch: node 'conv1' (conv2d): has 1 inputs; expected 2 to 3");
  EXPECT_EQ(load_error(fg, [](ojson& d) { d["nodes"][0]["inputs"][1] = -1; }),
            "edited.finch: node 'conv1' (conv2d): input 1 (w) is absent; expected a value (only optional inputs may be -1)");
  EXPECT_EQ(load_error(fg, [](ojson& d) { d["nodes"][0]["inputs"][2] = -1; }), "");  // the bias is optional
}
