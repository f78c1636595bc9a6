// Op attributes (ops/op_attrs.h): each attributes struct survives to_json → from_json, writes
// exactly the JSON names its ops' schema declares, and the readers reject hostile values with
// one sentence naming the node, the attribute, what was expected and what was found.
#include <gtest/gtest.h>

#include <set>

#include "framework/random.h"
#include "ops/op_attrs.h"
#include "ops/op_schema.h"
#include "tests/error_text.h"

using namespace finch;
using namespace finch::ops;
using json = nlohmann::json;

namespace {

std::set<std::string> keys(const json& j) {
  std::set<std::string> k;
  for (const auto& [name, v] : j.items()) k.insert(name);
  return k;
}

// The attribute names schema op `op` declares, less `drop`.
std::set<std::string> declared(const char* op, std::set<std::string> drop = {}) {
  std::set<std::string> k;
  for (const AttrSpec& s : find_op_schema(op)->attrs)
    if (!drop.count(s.name)) k.insert(s.name);
  return k;
}

}  // namespace

TEST(OpAttrs, Conv2dRoundTrip) {
  Generator g(11);
  for (int i = 0; i < 200; ++i) {
    Conv2dParams p;
    p.sh = 1 + int64_t(g.below(kMaxWindow)), p.sw = 1 + int64_t(g.below(5));
    p.ph = int64_t(g.below(kMaxWindow + 1)), p.pw = int64_t(g.below(4));
    p.dh = 1 + int64_t(g.below(3)), p.dw = 1 + int64_t(g.below(kMaxWindow));
    p.groups = 1 + int64_t(g.below(kMaxGroups));
    const json j = to_json(p);
    // Through text too: the program file stores the JSON as text.
    const Conv2dParams q = conv2d_from_json(json::parse(j.dump()), "node 'c' (conv2d)");
    EXPECT_EQ(std::tie(q.sh, q.sw, q.ph, q.pw, q.dh, q.dw, q.groups),
              std::tie(p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.groups));
  }
  // The JSON names are the schema's (conv2d adds its fused act, qconv2d its code range).
  EXPECT_EQ(keys(to_json(Conv2dParams{})), declared("conv2d", {"act"}));
  EXPECT_EQ(keys(to_json(Conv2dParams{})), declared("qconv2d", {"qmin", "qmax"}));
  // The format programs have always stored.
  EXPECT_EQ(to_json(Conv2dParams{2, 1, 1, 0, 1, 3, 4}).dump(),
            R"({"dilation":[1,3],"groups":4,"padding":[1,0],"stride":[2,1]})");
}

TEST(OpAttrs, PoolRoundTrip) {
  Generator g(12);
  for (int i = 0; i < 200; ++i) {
    Pool2dParams p;
    p.kh = 1 + int64_t(g.below(9)), p.kw = 1 + int64_t(g.below(kMaxWindow));
    p.sh = 1 + int64_t(g.below(4)), p.sw = 1 + int64_t(g.below(4));
    p.ph = int64_t(g.below(3)), p.pw = int64_t(g.below(3));
    p.ceil_mode = g.below(2) == 1;
    p.count_include_pad = g.below(2) == 1;
    const Pool2dParams a = pool2d_from_json(json::parse(to_json(p, PoolKind::avg).dump()), "w");
    EXPECT_EQ(std::tie(a.kh, a.kw, a.sh, a.sw, a.ph, a.pw, a.ceil_mode, a.count_include_pad),
              std::tie(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil_mode, p.count_include_pad));
    const Pool2dParams m = pool2d_from_json(to_json(p, PoolKind::max), "w");
    EXPECT_EQ(std::tie(m.kh, m.kw, m.sh, m.sw, m.ph, m.pw, m.ceil_mode), std::tie(p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.ceil_mode));
    EXPECT_TRUE(m.count_include_pad);  // absent from a max pool's JSON: the default
  }
  EXPECT_EQ(keys(to_json(Pool2dParams{}, PoolKind::max)), declared("max_pool2d"));
  EXPECT_EQ(keys(to_json(Pool2dParams{}, PoolKind::max)), declared("qmax_pool2d"));
  EXPECT_EQ(keys(to_json(Pool2dParams{}, PoolKind::avg)), declared("avg_pool2d"));
  EXPECT_EQ(keys(to_json(Pool2dParams{}, PoolKind::avg)), declared("qavg_pool2d"));
  EXPECT_EQ(to_json(Pool2dParams{3, 3, 2, 2, 1, 1, true, false}, PoolKind::avg).dump(),
            R"({"ceil_mode":true,"count_include_pad":false,"kernel":[3,3],"padding":[1,1],"stride":[2,2]})");
}

TEST(OpAttrs, AdaptiveAndCodeRangeRoundTrip) {
  const AdaptivePool2dAttrs a = adaptive_pool2d_from_json(to_json(AdaptivePool2dAttrs{7, 1}), "w");
  EXPECT_EQ(a.oh, 7);
  EXPECT_EQ(a.ow, 1);
  EXPECT_EQ(keys(to_json(AdaptivePool2dAttrs{})), declared("adaptive_avg_pool2d"));
  EXPECT_EQ(keys(to_json(AdaptivePool2dAttrs{})), declared("qadaptive_avg_pool2d"));
  for (const CodeRange r : {CodeRange{-128, 127}, CodeRange{0, 255}, CodeRange{-2147483647 - 1, 2147483647}, CodeRange{5, 5}}) {
    const CodeRange q = code_range_from_json(json::parse(to_json(r).dump()), "w");
    EXPECT_EQ(q.qmin, r.qmin);
    EXPECT_EQ(q.qmax, r.qmax);
  }
  EXPECT_EQ(keys(to_json(CodeRange{})), declared("qadd"));
  EXPECT_EQ(keys(to_json(CodeRange{})), declared("qlinear"));
}

TEST(OpAttrs, HostileValuesRejectedWithOneSentence) {
  const std::string w = "f.finch: node 'conv1' (conv2d)";
  auto conv = [&](const char* key, json v) {
    json a = to_json(Conv2dParams{});
    a[key] = std::move(v);
    return finch::test::error_of([&] { conv2d_from_json(a, w); });
  };
  EXPECT_EQ(conv("stride", {int64_t(1) << 62, 1}),
            "f.finch: node 'conv1' (conv2d): attribute 'stride' is [4611686018427387904,1]; expected a list of 2 "
            "integers in [1, 65536]");
  EXPECT_EQ(conv("stride", {0, 1}),
            "f.finch: node 'conv1' (conv2d): attribute 'stride' is [0,1]; expected a list of 2 integers in [1, 65536]");
  EXPECT_ERROR_HAS(conv2d_from_json(json{{"stride", {1, 1}}, {"padding", {-1, 0}}, {"dilation", {1, 1}}}, w),
                   "attribute 'padding' is [-1,0]; expected a list of 2 integers in [0, 65536]");
  EXPECT_NE(conv("stride", {1}).find("'stride' is [1]; expected a list of 2 integers"), std::string::npos);
  EXPECT_NE(conv("stride", {1, 1, 1}).find("'stride' is [1,1,1]"), std::string::npos);
  EXPECT_NE(conv("stride", {1.5, 1}).find("'stride' is [1.5,1]"), std::string::npos);
  EXPECT_NE(conv("stride", "2").find("'stride' is \"2\""), std::string::npos);
  EXPECT_NE(conv("stride", {uint64_t(18446744073709551615ull), 1}).find("is [18446744073709551615,1]"), std::string::npos);
  EXPECT_NE(conv("groups", int64_t(1) << 40).find("attribute 'groups' is 1099511627776; expected an integer in [1, 2147483647]"),
            std::string::npos);
  EXPECT_NE(conv("groups", 0).find("'groups' is 0"), std::string::npos);
  EXPECT_NE(conv("groups", true).find("'groups' is true"), std::string::npos);
  json missing = to_json(Conv2dParams{});
  missing.erase("dilation");
  EXPECT_ERROR_HAS(conv2d_from_json(missing, w), "node 'conv1' (conv2d): attribute 'dilation' is missing; expected a list of 2");
  // A huge value is shown shortened: a file may hold megabytes there.
  EXPECT_LT(conv("stride", json(std::vector<int>(100000, 7))).size(), 200u);

  EXPECT_ERROR_HAS(code_range_from_json(json{{"qmin", int64_t(1) << 40}, {"qmax", 127}}, "n"),
                   "attribute 'qmin' is 1099511627776; expected an integer in [-2147483648, 2147483647]");
  EXPECT_ERROR_HAS(code_range_from_json(json{{"qmin", 10}, {"qmax", -10}}, "n"),
                   "attributes 'qmin' and 'qmax' are 10 and -10; expected qmin <= qmax");
  EXPECT_ERROR_HAS(pool2d_from_json(json{{"kernel", {2, 2}}, {"stride", {2, 2}}, {"padding", {0, 0}}, {"ceil_mode", 1}}, "n"),
                   "attribute 'ceil_mode' is 1; expected true or false");
  EXPECT_ERROR_HAS(read_activation(json{{"act", "gelu"}}, "n"), "attribute 'act' is \"gelu\"; expected \"none\", \"relu\" or \"relu6\"");
  EXPECT_EQ(read_activation(json::object(), "n"), "none");
  EXPECT_ERROR_HAS(read_number(json{{"eps", -1e-5}}, attr::eps, "n"), "attribute 'eps' is -1e-05; expected a finite number in [0, ");
  EXPECT_ERROR_HAS(read_ints(json{{"shape", std::vector<int>(65, 1)}}, attr::shape, "n"), "expected a list of at most 64 integers");
}
