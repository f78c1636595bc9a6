// `finch quantize` and `train_cifar --qat` end to end on a tiny generated Fashion-MNIST (IDX):
// the report's keys and order, int8 files about a quarter of fp32, accuracy kept on a learnable
// toy problem, QAT accuracy equal to the converted model's, and one clear sentence for bad input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "framework/results.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

// One trained ResNet-20 for the whole suite (training it is most of the suite's time). Flips and
// crops would move the toy classes' patches, so it trains without augmentation.
class FinchQuantize : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                      ("finch_quantize_suite_" + std::to_string(::getpid())));
    const RunResult r = train_suite_model(*root_, "resnet20", 4, 200);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }
  static std::string data() { return "--dataset fashion-mnist --data " + (*root_ / "fm").string() + " --threads 2"; }
  static std::string checkpoint() { return (*root_ / "float/model.safetensors").string(); }
  static std::filesystem::path* root_;
  TempDir dir_{"finch_quantize"};
};

std::filesystem::path* FinchQuantize::root_ = nullptr;

}  // namespace

TEST_F(FinchQuantize, StaticInt8WritesTheReportAndAQuarterSizeFile) {
  const std::string out = dir_ / "q.safetensors", report = dir_ / "q.json";
  const RunResult r = run_program("finch", "quantize --checkpoint " + checkpoint() + " " + data() +
                                               " --mode static --calib-batches 4 --debug --latency-images 5 --out " +
                                               out + " --report " + report + " --html " + (dir_ / "q.html"),
                                  dir_.path);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const nlohmann::json j = read_json_file(report);
  ASSERT_EQ(j["variants"].size(), 2u);
  EXPECT_EQ(j["variants"][0]["name"], "fp32");
  EXPECT_EQ(j["variants"][1]["name"], "static-int8");
  for (const auto& v : j["variants"])
    for (const char* k : {"name", "size_bytes", "accuracy", "latency_ms"}) EXPECT_TRUE(v.contains(k)) << k;
  const double fp32 = j["variants"][0]["accuracy"], int8 = j["variants"][1]["accuracy"];
  EXPECT_GE(fp32, 0.9);
  EXPECT_GE(int8, fp32 - 0.02);
  const double ratio = j["variants"][1]["size_bytes"].get<double>() / j["variants"][0]["size_bytes"].get<double>();
  EXPECT_LT(ratio, 0.30);
  EXPECT_EQ(j["variants"][1]["size_bytes"].get<int64_t>(), int64_t(std::filesystem::file_size(out)));
  // Integer weights on disk, folded BN gone, activation parameters kept.
  const SafetensorsFile f = load_safetensors(out);
  EXPECT_EQ(f.at("layer1.0.conv1.weight").dtype(), DType::i8);
  EXPECT_FALSE(f.contains("layer1.0.bn1.running_var"));
  EXPECT_TRUE(f.contains("layer1.0.relu.activation_post_process_1.scale"));
  EXPECT_EQ(f.metadata.at("format"), "finch-quantized-1");
  EXPECT_TRUE(j["debug"].size() > 10);
  EXPECT_TRUE(std::filesystem::exists(out + ".debug.csv"));
  EXPECT_NE(r.out.find("size Δ"), std::string::npos) << r.out;
  const std::string html = slurp(dir_ / "q.html");
  EXPECT_NE(html.find("<h2>Quantization debugger</h2>"), std::string::npos);
  EXPECT_NE(html.find("static-int8"), std::string::npos);
}

TEST_F(FinchQuantize, DynamicAndFp16) {
  for (const std::string mode : {"dynamic", "fp16"}) {
    const std::string report = dir_ / (mode + ".json");
    const RunResult r = run_program("finch", "quantize --checkpoint " + checkpoint() + " " + data() + " --mode " +
                                                 mode + " --latency-images 5 --out " + (dir_ / (mode + ".st")) +
                                                 " --report " + report,
                                    dir_.path);
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json j = read_json_file(report);
    EXPECT_GE(j["variants"][1]["accuracy"].get<double>(), j["variants"][0]["accuracy"].get<double>() - 0.02) << mode;
    const double ratio = j["variants"][1]["size_bytes"].get<double>() / j["variants"][0]["size_bytes"].get<double>();
    if (mode == "fp16") EXPECT_LT(ratio, 0.52);
    else EXPECT_GT(ratio, 0.9);  // dynamic quantizes the small fc only, as the seed's table shows
  }
}

TEST_F(FinchQuantize, QatFineTuneKeepsItsAccuracyThroughConversion) {
  const RunResult r = run("--model resnet20 " + data() + " --qat --checkpoint " + checkpoint() +
                              " --qat-epochs 1 --no-augment --batch-size 32 --out " + (dir_ / "qat"),
                          dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = read_json_file(dir_ / "qat/summary.json");
  for (const char* k : {"float_test_accuracy", "qat_test_accuracy", "converted_test_accuracy", "converted_model_bytes"})
    EXPECT_TRUE(s.contains(k)) << k;
  // Observers and BN are frozen in the last QAT epoch, so its evaluation is the converted model.
  EXPECT_EQ(s["qat_test_accuracy"].get<double>(), s["converted_test_accuracy"].get<double>());
  EXPECT_GE(s["converted_test_accuracy"].get<double>(), s["float_test_accuracy"].get<double>() - 0.03);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "qat/quantized.safetensors"));
  EXPECT_TRUE(load_safetensors(dir_ / "qat/qat_model.safetensors").contains("quant.layer1.0.conv1.weight_fake_quant.scale"));
}

TEST_F(FinchQuantize, BadInputIsOneClearSentence) {
  auto err = [&](const std::string& args) {
    const RunResult r = run_program("finch", "quantize --checkpoint " + checkpoint() + " " + data() + " --out " +
                                                 (dir_ / "x.st") + " " + args,
                                    dir_.path);
    EXPECT_NE(r.code, 0) << args;
    return r.err;
  };
  EXPECT_NE(err("--qconfig int3").find("unknown qconfig 'int3'; expected one of: int8"), std::string::npos);
  EXPECT_NE(err("--observer kl").find("unknown --observer 'kl'; expected one of: minmax"), std::string::npos);
  EXPECT_NE(err("--model lenet5").find("holds a resnet20 but --model is lenet5"), std::string::npos);
  // An unknown --skip path was silently ignored (the layer quantized anyway): now it is named,
  // with the model's top-level modules.
  const std::string skip = err("--skip layer3 layer9");
  EXPECT_NE(skip.find("--skip 'layer9' names no module of the model; its top-level modules are "), std::string::npos)
      << skip;
  EXPECT_NE(skip.find("layer1, layer2, layer3"), std::string::npos) << skip;
  EXPECT_NE(err("--limit-train -1").find("--limit-train: must be zero or more, got -1"), std::string::npos);
  EXPECT_NE(err("--threads -2").find("--threads: must be zero or more"), std::string::npos);
  EXPECT_NE(err("--mean nan --std 0.3").find("--mean values must be finite"), std::string::npos);
  // Calibration data of another shape: a 3-channel CIFAR set for a 1-channel model.
  write_cifar10(dir_.path / "c10", 10, 10);  // train + test .bin records
  const RunResult r = run_program("finch", "quantize --checkpoint " + checkpoint() + " --dataset cifar10 --data " +
                                               (dir_ / "c10") + " --out " + (dir_ / "y.st"),
                                  dir_.path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("the weights do not fit the model"), std::string::npos) << r.err;
}
