// The program verifier (runtime/verify.h) on real programs (the four checked-in .finch files of
// tests/golden/data/programs_028b406) with one value edited behind a recomputed CRC, the way a
// hostile user would: each class of bad input the issue found (a crash, a hang, an allocation of
// gigabytes, a silent NaN) is now one sentence at load, naming the node, value or meta field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "ops/op_attrs.h"
#include "ops/op_schema.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "runtime/verify.h"
#include "tests/error_text.h"
#include "tests/runtime/program_bytes.h"

using namespace finch;
using namespace finch::runtime;
using ojson = nlohmann::ordered_json;

namespace {

std::vector<uint8_t> file_bytes(const std::string& name) {
  std::ifstream f(std::string(FINCH_TEST_DATA_DIR) + "/golden/data/programs_028b406/" + name, std::ios::binary);
  EXPECT_TRUE(f.good()) << name;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// `name` with its JSON edited by `edit` (and its data section by `edit_data`), CRC recomputed,
// parsed as "edited.finch".
template <typename Edit>
Graph edited(const std::string& name, Edit edit, void (*edit_data)(const ojson&, std::vector<uint8_t>&) = nullptr) {
  test::ProgramParts p = test::split_program(file_bytes(name));
  ojson doc = ojson::parse(p.json);
  edit(doc);
  if (edit_data) edit_data(doc, p.data);
  p.json = doc.dump();
  const std::vector<uint8_t> f = test::join_program(p);
  return parse_program(f.data(), f.size(), "edited.finch");
}

template <typename Edit>
std::string load_error(const std::string& name, Edit edit, ProgramOptions o = {}) {
  Graph g = edited(name, edit);
  return test::error_of([&] { Program(std::move(g), "edited.finch", o); });
}

const char* kR20 = "resnet20-int8.finch";
const char* kMbv2 = "mobilenetv2-w025-int8-u8io.finch";  // node 2: a depthwise qconv2d (groups 8)
const char* kLenet = "lenet5-fp32.finch";

ojson& node(ojson& d, size_t i) { return d["nodes"][i]; }
ojson& input_value(ojson& d) { return d["values"][size_t(d["inputs"][0].get<int64_t>())]; }

// Scoped environment variable.
struct Env {
  std::string name;
  Env(const char* n, const char* v) : name(n) { setenv(n, v, 1); }
  ~Env() { unsetenv(name.c_str()); }
};

}  // namespace

TEST(Verify, CheckedInProgramsHaveNoProblems) {
  for (const char* name : {kR20, kMbv2, kLenet, "lenet5-fp16.finch"}) {
    const std::vector<uint8_t> f = file_bytes(name);
    const Graph g = parse_program(f.data(), f.size(), name);
    EXPECT_EQ(verify(g, name), std::vector<std::string>{}) << name;
  }
}

// Before: SIGSEGV in the optimized int8 conv (an unchecked sh*sw*Hq*Wq).
TEST(Verify, HugeStrideOnQconv2dIsRefused) {
  EXPECT_EQ(load_error(kR20, [](ojson& d) { node(d, 1)["attrs"]["stride"] = {int64_t(1) << 62, int64_t(1) << 62}; }),
            "edited.finch: node 'conv1' (qconv2d): attribute 'stride' is [4611686018427387904,4611686018427387904]; "
            "expected a list of 2 integers in [1, 65536]");
}

// Before: the depthwise kernel spun for minutes.
TEST(Verify, HugeStrideOnDepthwiseConvIsRefused) {
  ASSERT_EQ(edited(kMbv2, [](ojson&) {}).nodes[2].attrs["groups"], 8);
  EXPECT_EQ(load_error(kMbv2, [](ojson& d) { node(d, 2)["attrs"]["stride"] = {int64_t(1) << 62, 1}; }),
            "edited.finch: node 'features.1.conv.0.0' (qconv2d): attribute 'stride' is [4611686018427387904,1]; "
            "expected a list of 2 integers in [1, 65536]");
}

// Before: std::bad_alloc (or minutes of work) in the dry run.
TEST(Verify, HugeDepthwisePaddingIsRefusedBeforeAllocating) {
  const std::string e = load_error(kMbv2, [](ojson& d) { node(d, 2)["attrs"]["padding"] = {5000, 5000}; });
  EXPECT_EQ(e.rfind("edited.finch: node 'features.1.conv.0.0' (qconv2d) computes [1, 8, 10026, 10026] codes", 0), 0u) << e;
}

// Before: std::bad_alloc with no file named.
TEST(Verify, HugeInputShapeIsRefusedAgainstTheActivationLimit) {
  const Graph g = edited(kLenet, [](ojson& d) { input_value(d)["shape"] = {1, 1, 100000, 100000}; });
  const std::vector<std::string> p = verify(g, "edited.finch");
  ASSERT_FALSE(p.empty());
  EXPECT_EQ(p[0],
            "edited.finch: input 'input' of shape [1, 1, 100000, 100000] needs 40000000000 bytes per batch image, over "
            "the activation limit of 4294967296 bytes; raise the limit with FINCH_MAX_ACTIVATION_BYTES=<bytes> "
            "(finch_run --max-memory <bytes>) if the machine has the memory");
  EXPECT_ERROR_HAS(Program(Graph(g), "edited.finch"), "needs 40000000000 bytes per batch image");
}

// Before: SIGFPE in finch_run --raw (records sized by the product of the dims).
TEST(Verify, ZeroSizeInputDimIsRefused) {
  for (int d = 1; d < 4; ++d)
    EXPECT_EQ(load_error(kLenet, [d](ojson& doc) { input_value(doc)["shape"][size_t(d)] = 0; }).find(
                  "edited.finch: input 'input' has shape ["),
              0u);
  EXPECT_ERROR_HAS(Program(edited(kLenet, [](ojson& d) { input_value(d)["shape"] = {1, 1, 0, 28}; }), "edited.finch"),
                   "has shape [1, 1, 0, 28]; expected at least one dimension, each at least 1");
}

// Before: accepted; 2^40 was truncated to int32 in the kernels' code range.
TEST(Verify, Int32AttributeGivenTwoToTheFortyIsRefused) {
  EXPECT_EQ(load_error(kR20, [](ojson& d) { node(d, 1)["attrs"]["qmin"] = int64_t(1) << 40; }),
            "edited.finch: node 'conv1' (qconv2d): attribute 'qmin' is 1099511627776; expected an integer in "
            "[-2147483648, 2147483647]");
}

// Before: finch_run printed scores computed with x / 0 (or with a string mean: a json type_error).
TEST(Verify, PreprocessingMetadataIsChecked) {
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["std"] = {0.0}; }),
            "edited.finch: meta.std[0] is 0.0; expected a finite number greater than 0");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["std"] = {-1.0}; }),
            "edited.finch: meta.std[0] is -1.0; expected a finite number greater than 0");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["mean"] = {1e39}; }),
            "edited.finch: meta.mean[0] is 1e+39; expected a finite number");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["mean"] = "abc"; }),
            "edited.finch: meta.mean is \"abc\"; expected a list of numbers");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["std"] = {1, 2, 3}; }),
            "edited.finch: meta.std has 3 entries; expected 1 (one per channel of the input)");
  // The fields the runners print or adopt (before: a json type_error reached the user).
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["model"] = 5; }),
            "edited.finch: meta.model is 5; expected a string");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["classes"] = {"a", 1}; }),
            "edited.finch: meta.classes is [\"a\",1]; expected a list of class names");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["width"] = -1; }),
            "edited.finch: meta.width is -1; expected a finite number greater than 0");
  EXPECT_EQ(load_error(kR20, [](ojson& d) { d["meta"]["quantization"].erase("fuse"); }),
            "edited.finch: meta.quantization is {\"mode\":\"static\",\"qconfig\":\"int8\",\"skip\":[]}; expected "
            "{\"mode\": string, \"qconfig\": string, \"fuse\": true or false, \"skip\": [names]}");
  // Absent or empty lists mean no normalization, as the runners always read them.
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"].erase("std"); }), "");
  EXPECT_EQ(load_error(kLenet, [](ojson& d) { d["meta"]["mean"] = ojson::array(); }), "");
}

// Before: a program whose weights hold NaN printed `nan` scores with exit 0.
float g_poison = 0;  // what poison() writes over element 2 of conv1.weight
void poison(const ojson& d, std::vector<uint8_t>& data) {
  for (const ojson& v : d["values"])
    if (v["name"] == "conv1.weight") std::memcpy(data.data() + v["data"]["offset"].get<size_t>() + 8, &g_poison, 4);
}

TEST(Verify, NonFiniteConstantsAreRefusedNamingTheValue) {
  g_poison = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(test::error_of([&] { Program(edited(kLenet, [](ojson&) {}, poison), "edited.finch"); }),
            "edited.finch: constant 'conv1.weight' holds NaN at element 2 of 150; expected finite weights (was the "
            "model trained to divergence?)");
  g_poison = -std::numeric_limits<float>::infinity();
  EXPECT_ERROR_HAS(Program(edited(kLenet, [](ojson&) {}, poison), "edited.finch"),
                   "constant 'conv1.weight' holds an infinity at element 2");
  // An fp16 program's f16 weights are checked too.
  g_poison = 0;
  const Graph f16 = edited("lenet5-fp16.finch", [](ojson&) {});
  EXPECT_EQ(verify(f16, "f16"), std::vector<std::string>{});
}

// verify() lists every problem (finch inspect prints them all); Program throws the first.
TEST(Verify, ListsEveryProblem) {
  const Graph g = edited(kR20, [](ojson& d) {
    d["meta"]["std"] = {0.0};
    node(d, 1)["attrs"]["qmin"] = int64_t(1) << 40;
    node(d, 2)["attrs"]["stride"] = {0, 1};
  });
  const std::vector<std::string> p = verify(g, "edited.finch");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NE(p[0].find("node 'conv1' (qconv2d): attribute 'qmin'"), std::string::npos) << p[0];
  EXPECT_NE(p[1].find("node 'layer1.0.conv1' (qconv2d): attribute 'stride' is [0,1]"), std::string::npos) << p[1];
  EXPECT_EQ(p[2], "edited.finch: meta.std[0] is 0.0; expected a finite number greater than 0");
}

TEST(Verify, NegativeBatchNormEpsIsRefused) {
  Graph g;
  const int32_t x = g.add_value({"x", {1, 2, 4, 4}, DType::f32, std::nullopt, {}});
  std::vector<int32_t> in = {x};
  for (const char* n : {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"})
    in.push_back(g.add_value({n, {2}, DType::f32, std::nullopt, full({2}, 1.0)}));
  const int32_t y = g.add_value({"y", {1, 2, 4, 4}, DType::f32, std::nullopt, {}});
  g.nodes.push_back({"batch_norm", "bn", in, {y}, {{"eps", -1e-5}}});
  g.inputs = {x};
  g.outputs = {y};
  EXPECT_EQ(verify(g, "bn.finch"), std::vector<std::string>{
                                        "bn.finch: node 'bn' (batch_norm): attribute 'eps' is -1e-05; expected a finite "
                                        "number in [0, 1e+30]"});
  g.nodes[0].attrs["eps"] = 1e-5;
  EXPECT_EQ(verify(g, "bn.finch"), std::vector<std::string>{});
}

// The arena per image against the limit, naming the first node over it; the limit comes from
// ProgramOptions, else FINCH_MAX_ACTIVATION_BYTES, else 4 GiB.
TEST(Verify, ActivationMemoryLimitNamesTheNode) {
  const std::vector<uint8_t> f = file_bytes(kLenet);
  const Graph g = parse_program(f.data(), f.size(), kLenet);
  const MemoryPlan plan = plan_memory(g);
  ASSERT_EQ(plan.peak_after.size(), g.nodes.size());
  EXPECT_EQ(plan.peak_after.back(), plan.arena_bytes);
  EXPECT_EQ(plan.peak_after[0], 6 * 28 * 28 * 4);  // conv1's output [1, 6, 28, 28] f32
  ProgramOptions o;
  o.max_activation_bytes = 10000;
  const std::string want = std::string(kLenet) +
                           ": node 'conv1' (conv2d) brings the activation memory to 18816 bytes per batch image "
                           "(output [1, 6, 28, 28]), over the limit of 10000 bytes; raise the limit with "
                           "FINCH_MAX_ACTIVATION_BYTES=<bytes> (finch_run --max-memory <bytes>) if the machine has "
                           "the memory";
  EXPECT_EQ(verify(g, kLenet, o), std::vector<std::string>{want});
  EXPECT_EQ(test::error_of([&] { Program(Graph(g), kLenet, o); }), want);
  o.max_activation_bytes = 3000;  // below the input's 3136 bytes too: the input is named first
  EXPECT_EQ(verify(g, kLenet, o).at(0).find(std::string(kLenet) + ": input 'input' of shape [1, 1, 28, 28] needs 3136"),
            0u);
  {
    Env env("FINCH_MAX_ACTIVATION_BYTES", "10000");
    EXPECT_EQ(verify(g, kLenet), std::vector<std::string>{want});
    o.max_activation_bytes = plan.arena_bytes;  // the option wins over the environment
    EXPECT_EQ(verify(g, kLenet, o), std::vector<std::string>{});
  }
  {
    Env env("FINCH_MAX_ACTIVATION_BYTES", "lots");
    EXPECT_EQ(test::error_of([&] { Program(Graph(g), kLenet); }),
              "FINCH_MAX_ACTIVATION_BYTES is 'lots'; expected a positive number of bytes");
  }
  EXPECT_EQ(activation_limit({}), kDefaultMaxActivationBytes);
}

// At run time: a batch of 0 and a batch whose activations exceed the limit are refused before
// any node allocates (before: batch 1000000000 in finch bench was a bare std::bad_alloc).
TEST(Verify, RunRefusesEmptyAndOversizedBatches) {
  const std::vector<uint8_t> f = file_bytes(kLenet);
  ProgramOptions o;
  o.max_activation_bytes = 1 << 20;
  Program p(parse_program(f.data(), f.size(), kLenet), kLenet, o);
  const int64_t per = p.memory().arena_bytes;
  EXPECT_EQ(test::error_of([&] { p.run(zeros({0, 1, 28, 28})); }),
            std::string(kLenet) + ": the input has a batch of 0; expected at least 1 image");
  const int64_t too_many = (int64_t(1) << 20) / per + 1;
  EXPECT_EQ(test::error_of([&] { p.check_batch(too_many); }),
            std::string(kLenet) + ": a batch of " + std::to_string(too_many) + " needs " + std::to_string(per) +
                " bytes of activations per image, over the activation limit of 1048576 bytes in all; use a smaller "
                "batch or raise the limit with FINCH_MAX_ACTIVATION_BYTES=<bytes> (finch_run --max-memory <bytes>) if "
                "the machine has the memory");
  EXPECT_ERROR_HAS(p.run(zeros({too_many, 1, 28, 28})), "a batch of " + std::to_string(too_many) + " needs");
  EXPECT_EQ(test::error_of([&] { p.check_batch(int64_t(1) << 62); }).find(std::string(kLenet) + ": a batch of 4611686018427387904"),
            0u);
  EXPECT_EQ(p.run(zeros({too_many - 1, 1, 28, 28})).shape(), (Shape{too_many - 1, 10}));
}

// Shape inference on sizes a hostile graph can declare: sums and products that would wrap int64
// fail with a sentence naming the node (ops/op_schema.cc through framework/checked_math.h).
TEST(Verify, ShapeInferenceArithmeticIsChecked) {
  using ops::ValueType;
  const int64_t big = int64_t(1) << 62;
  const ops::OpSchema& cat = *ops::find_op_schema("cat");
  const std::string e = test::error_of([&] {
    ops::infer_types(cat, {ValueType{{big, 1}, DType::f32}, ValueType{{big, 1}, DType::f32}}, {{"dim", 0}}, "n");
  });
  EXPECT_EQ(e.rfind("n: the concatenated dim: ", 0), 0u) << e;
  const std::string f = test::error_of([&] {
    ops::infer_types(*ops::find_op_schema("flatten"), {ValueType{{int64_t(1) << 32, int64_t(1) << 32}, DType::f32}},
                     {{"start_dim", 0}, {"end_dim", -1}}, "n");
  });
  EXPECT_EQ(f.rfind("n: the flattened dim: ", 0), 0u) << f;
  ops::Conv2dParams p;
  p.dh = p.dw = 1 << 16;
  const std::string c = test::error_of([&] {
    ops::infer_types(*ops::find_op_schema("conv2d"),
                     {ValueType{{1, 1, 8, 8}, DType::f32}, ValueType{{1, 1, int64_t(1) << 50, 1}, DType::f32}},
                     ops::to_json(p), "n");
  });
  EXPECT_EQ(c.rfind("n: the dilated kernel height: ", 0), 0u) << c;
}

// A node whose required input is absent is reported once, and the later checks (shapes, the
// accumulator bound, which reads the input's quantization) skip it instead of indexing value -1.
TEST(Verify, AbsentRequiredInputIsOneProblem) {
  const Graph g = edited(kR20, [](ojson& d) { node(d, 1)["inputs"][0] = -1; });
  const std::vector<std::string> p = verify(g, "edited.finch");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "edited.finch: node 'conv1' (qconv2d): input 0 (x) is absent; expected a value (only optional inputs "
                  "may be -1)");
}

// A consistent program (every declared shape agrees with inference) whose conv pads by 30000:
// 86 GB for one image. Before: std::bad_alloc from the dry run, no file named; now the default
// 4 GiB limit names the node before anything is allocated.
TEST(Verify, ConsistentProgramNeedingGigabytesIsRefusedNamingTheNode) {
  const Graph g = edited(kLenet, [](ojson& d) {
    ojson conv = d["nodes"][0];
    conv["attrs"]["padding"] = {30000, 30000};
    const int64_t o = conv["outputs"][0].get<int64_t>();
    d["values"][size_t(o)]["shape"] = {1, 6, 60024, 60024};
    d["values"].push_back({{"name", "gap"}, {"shape", {1, 6, 1, 1}}, {"dtype", "F32"}});
    d["values"].push_back({{"name", "flat"}, {"shape", {1, 6}}, {"dtype", "F32"}});
    const int64_t gap = int64_t(d["values"].size()) - 2;
    d["nodes"] = {conv,
                  {{"op", "adaptive_avg_pool2d"}, {"name", "gap"}, {"inputs", {o}}, {"outputs", {gap}},
                   {"attrs", {{"output_size", {1, 1}}}}},
                  {{"op", "flatten"}, {"name", "flat"}, {"inputs", {gap}}, {"outputs", {gap + 1}},
                   {"attrs", {{"start_dim", 1}, {"end_dim", -1}}}}};
    d["outputs"] = {gap + 1};
  });
  const std::string want =
      "edited.finch: node 'conv1' (conv2d) brings the activation memory to 86469133824 bytes per batch image (output "
      "[1, 6, 60024, 60024]), over the limit of 4294967296 bytes; raise the limit with "
      "FINCH_MAX_ACTIVATION_BYTES=<bytes> (finch_run --max-memory <bytes>) if the machine has the memory";
  EXPECT_EQ(verify(g, "edited.finch"), std::vector<std::string>{want});
  EXPECT_EQ(test::error_of([&] { Program(Graph(g), "edited.finch"); }), want);
}
