// The user's error tier of train_cifar: options that are not finite numbers in range, and
// damaged checkpoints given to --resume, are each one sentence naming the option or the file,
// with a non-zero exit — no std::terminate, no library text ("json.exception", "_M_range_check").
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

class CliErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("finch_cli_errors_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    write_fashion(*root_ / "fm", 96, 40);
    // One epoch of two, so --resume has something left to do.
    const RunResult r = run(common() + " --epochs 2 --stop-after 1 --out " + (*root_ / "run").string(), *root_);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static std::string common() {
    return "--model lenet5 --dataset fashion-mnist --data " + (*root_ / "fm").string() +
           " --batch-size 32 --threads 2 --workers 0 --seed 3 --no-augment";
  }
  static std::string checkpoint() { return (*root_ / "run" / "checkpoint.safetensors").string(); }

  // The checkpoint after `edit`, as root/<name>.safetensors.
  static std::string damaged(const std::string& name,
                             const std::function<void(NamedTensors&, std::map<std::string, std::string>&)>& edit) {
    SafetensorsFile f = load_safetensors(checkpoint());
    edit(f.tensors, f.metadata);
    const std::string out = (*root_ / (name + ".safetensors")).string();
    save_safetensors(out, f.tensors, f.metadata);
    return out;
  }

  static fs::path* root_;
};

fs::path* CliErrors::root_ = nullptr;

// One line on stderr holding `needle`, a non-zero exit, and no library or runtime text.
void expect_one_sentence(const RunResult& r, const std::string& needle, const std::string& what) {
  EXPECT_NE(r.code, 0) << what;
  EXPECT_NE(r.err.find(needle), std::string::npos) << what << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << "\n" << r.err;
  for (const char* leak : {"terminate", "json.exception", "_M_range_check", "internal error", "what()"})
    EXPECT_EQ(r.err.find(leak), std::string::npos) << what << "\n" << r.err;
}

}  // namespace

TEST_F(CliErrors, OptionsMustBeFiniteAndInRangeNamingTheOption) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--lr nan", "--lr: must be a finite number, got nan"},
      {"--lr inf", "--lr: must be a finite number, got inf"},
      {"--momentum nan", "--momentum: must be a finite number, got nan"},  // was blamed on --lr
      {"--momentum 1.5", "--momentum: must be in [0, 1], got 1.5"},
      {"--weight-decay inf", "--weight-decay: must be a finite number, got inf"},
      {"--weight-decay nan", "--weight-decay: must be a finite number"},
      {"--label-smoothing nan", "--label-smoothing: must be a finite number"},
      {"--warmup-epochs inf", "--warmup-epochs: must be a finite number"},
      {"--width nan", "--width must be a multiplier in (0, 4]"},
      {"--qat --qat-lr nan", "--qat-lr: must be a finite number"},
      {"--qat --qat-lr -1", "--qat-lr: must be positive"},
      {"--qat --freeze-bn-epoch -3", "--freeze-bn-epoch: must be zero or more"},
      {"--limit-train -1", "--limit-train: must be zero or more, got -1"},
      {"--limit-test -5", "--limit-test: must be zero or more"},
      {"--epochs nan", "--epochs: must be a finite number"},
      {"--threads -1", "--threads: must be zero or more"},
      {"--lr 1x", "--lr: '1x' is not a number"},
      {"--epochs 9000000000000000000", "--epochs must be at most 1000000"},
  };
  for (const auto& [args, needle] : cases)
    expect_one_sentence(run(common() + " " + args + " --out " + (*root_ / "bad").string(), *root_), needle, args);
  // 0 is the documented "all images", not a silent surprise.
  const RunResult h = run("--help", *root_);
  EXPECT_NE(h.out.find("(0, the default: all)"), std::string::npos) << h.out;
}

TEST_F(CliErrors, ResumeRefusesADamagedCheckpointNamingTheFileAndEntry) {
  auto drop = [](const std::string& name) {
    return [name](NamedTensors& t, std::map<std::string, std::string>&) {
      t.erase(std::remove_if(t.begin(), t.end(), [&](const auto& e) { return e.first == name; }), t.end());
    };
  };
  struct Case {
    std::string name, needle;
    std::function<void(NamedTensors&, std::map<std::string, std::string>&)> edit;
  };
  const std::vector<Case> cases = {
      // Resumed with the buffer silently zeroed before: exact resume broken without a word.
      {"no_buffer", "checkpoint has no 'optimizer.state.3.momentum_buffer' (parameter 3 of shape",
       drop("optimizer.state.3.momentum_buffer")},
      {"reshaped", "'optimizer.state.0.momentum_buffer' has shape [2, 2] but parameter 0 has shape",
       [](NamedTensors& t, auto&) {
         for (auto& [n, v] : t)
           if (n == "optimizer.state.0.momentum_buffer") v = zeros({2, 2});
       }},
      {"no_weight", "the weights do not fit the model: there is no 'model.conv1.weight' (the model's is [6, 1, 5, 5])",
       drop("model.conv1.weight")},
      {"no_rng", "checkpoint has no 'rng.default'", drop("rng.default")},
      // A history row with a text value: the summary's throughput read it as a number and
      // leaked "[json.exception.type_error.302] type must be number, but is string".
      {"history_text", "checkpoint history row 1: \"seconds\" should be a number, found \"fast\"",
       [](NamedTensors&, std::map<std::string, std::string>& m) {
         auto h = nlohmann::json::parse(m.at("history"));
         h[0]["seconds"] = "fast";
         m["history"] = h.dump();
       }},
      {"history_short", "checkpoint metadata 'history' has 0 rows but 'epochs_done' is 1",
       [](NamedTensors&, std::map<std::string, std::string>& m) { m["history"] = "[]"; }},
      {"history_key", "checkpoint history row 1 has no \"images_per_second\"",
       [](NamedTensors&, std::map<std::string, std::string>& m) {
         auto h = nlohmann::json::parse(m.at("history"));
         h[0].erase("images_per_second");
         m["history"] = h.dump();
       }},
      {"best", "checkpoint metadata 'best_test_accuracy' should be a number in [0, 1]",
       [](NamedTensors&, std::map<std::string, std::string>& m) { m["best_test_accuracy"] = "[1]"; }},
      {"epochs", "checkpoint metadata 'epochs_done' should be a whole number of epochs, found '1.5'",
       [](NamedTensors&, std::map<std::string, std::string>& m) { m["epochs_done"] = "1.5"; }},
  };
  for (const auto& c : cases) {
    const std::string file = damaged(c.name, c.edit);
    const RunResult r = run(common() + " --epochs 2 --out " + (*root_ / ("resume_" + c.name)).string() +
                                " --resume " + file,
                            *root_);
    expect_one_sentence(r, file + ": " + c.needle, c.name);
  }
  // The intact file still resumes.
  const RunResult ok = run(common() + " --epochs 2 --out " + (*root_ / "resume_ok").string() + " --resume " +
                               checkpoint(),
                           *root_);
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(CliErrors, AnOutFolderThatCannotBeCreatedIsNamed) {
  // A file where the folder should be: was "filesystem error: cannot create directories: ..."
  // straight from the library.
  const fs::path file = *root_ / "a_file";
  std::ofstream(file) << "x";
  const RunResult r = run(common() + " --epochs 1 --limit-train 32 --out " + (file / "sub").string(), *root_);
  expect_one_sentence(r, "--out '" + (file / "sub").string() + "': cannot create the output folder (", "--out");
  const RunResult e = run(common() + " --eval-only --checkpoint " + (*root_ / "run" / "model.safetensors").string() +
                              " --out " + file.string(),
                          *root_);
  expect_one_sentence(e, "--out '" + file.string() + "': cannot create the output folder (", "--eval-only --out");
}

TEST_F(CliErrors, QatRefusesASummaryThatIsNotAnObjectBeforeTraining) {
  // QAT extends the float run's summary.json in --out; a JSON array there leaked
  // "[json.exception.type_error.305] cannot use operator[] with a string argument with array"
  // after the whole fine-tuning.
  const fs::path out = *root_ / "qat";
  fs::create_directories(out);
  std::ofstream(out / "summary.json") << "[1, 2]";
  const RunResult r = run(common() + " --qat --qat-epochs 1 --checkpoint " + (*root_ / "run" / "model.safetensors").string() +
                              " --out " + out.string(),
                          *root_);
  expect_one_sentence(r, (out / "summary.json").string() + " exists but is not a JSON object", "qat summary");
}

TEST_F(CliErrors, NonFiniteWeightsAreRefusedNamingTheTensor) {
  SafetensorsFile f = load_safetensors((*root_ / "run" / "model.safetensors").string());
  for (auto& [name, v] : f.tensors)
    if (name == "fc2.bias") {
      Tensor b = v.clone();
      b.data<float>()[7] = std::numeric_limits<float>::infinity();
      v = b;
    }
  const std::string bad = (*root_ / "inf_weights.safetensors").string();
  save_safetensors(bad, f.tensors, f.metadata);
  // Evaluated (and quantized or compiled) before, printing nan scores with exit 0.
  expect_one_sentence(run(common() + " --eval-only --checkpoint " + bad + " --out " + (*root_ / "ev").string(), *root_),
                      bad + ": weight 'fc2.bias' holds a NaN or an infinity", "--eval-only");
  expect_one_sentence(run_program("finch", "compile --checkpoint " + bad + " --dataset fashion-mnist --data " +
                                               (*root_ / "fm").string() + " --out " + (*root_ / "x.finch").string(),
                                  *root_),
                      bad + ": weight 'fc2.bias' holds a NaN or an infinity", "finch compile");
}

TEST_F(CliErrors, DamagedWeightMetadataIsNamed) {
  auto with_meta = [&](const std::string& name, const std::string& key, const std::string& value) {
    SafetensorsFile f = load_safetensors((*root_ / "run" / "model.safetensors").string());
    f.metadata[key] = value;
    const std::string out = (*root_ / (name + ".safetensors")).string();
    save_safetensors(out, f.tensors, f.metadata);
    return out;
  };
  const std::string fm = " --dataset fashion-mnist --data " + (*root_ / "fm").string() + " --out " +
                         (*root_ / "ev").string() + " --eval-only --checkpoint ";
  const std::string model = with_meta("model_name", "model", "resnet7");
  expect_one_sentence(run(fm + model, *root_), model + ": metadata 'model' names 'resnet7', which is not a finch model",
                      "model");
  EXPECT_EQ(run("--model lenet5" + fm + model, *root_).code, 0);  // --model decides
  // "inf" parses as a positive number: it was accepted and then blamed on --width.
  const std::string width = with_meta("width", "width", "inf");
  expect_one_sentence(run(fm + width, *root_), width + ": metadata 'width' should be a width multiplier in (0, 4]",
                      "width");
}
