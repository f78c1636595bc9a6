// Result writers: CSV escaping and number precision, JSON files, atomic replacement of outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/results.h"
#include "tests/temp_dir.h"

using namespace finch;
using finch::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Results, CsvEscapeRfc4180) {
  EXPECT_EQ(csv_escape("plain"), "plain");
  EXPECT_EQ(csv_escape(""), "");
  EXPECT_EQ(csv_escape("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_escape("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_escape("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_escape("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csv_escape("  spaces kept  "), "  spaces kept  ");
}

TEST(Results, NumbersKeepFullPrecision) {
  EXPECT_EQ(format_number(0.1), "0.1");
  EXPECT_EQ(format_number(3), "3");
  EXPECT_EQ(format_number(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(format_number(std::nan("")), "nan");
  EXPECT_EQ(format_number(-INFINITY), "-inf");
  // Every double reads back exactly.
  for (double v : {1.0 / 3, 2.0 / 3 * 1e300, 5e-324, 0.1 + 0.2, -123456789.123456789})
    EXPECT_EQ(std::strtod(format_number(v).c_str(), nullptr), v) << format_number(v);
  EXPECT_EQ(CsvCell(0.91f).text(), format_number(double(0.91f)));  // floats widen exactly
  EXPECT_EQ(CsvCell(int64_t(-9007199254740993)).text(), "-9007199254740993");
  EXPECT_EQ(CsvCell(size_t(7)).text(), "7");
  EXPECT_EQ(CsvCell(true).text(), "true");
}

TEST(Results, CsvWriterTable) {
  TempDir dir;
  CsvWriter csv({"epoch", "model", "loss", "note"});
  csv.add_row({1, "resnet20", 0.5312, "first"});
  csv.add_row({2, std::string("mobilenet,v2"), 0.1, "said \"ok\"\nthen stopped"});
  EXPECT_EQ(csv.rows(), 2u);
  const std::string want =
      "epoch,model,loss,note\n"
      "1,resnet20,0.5312,first\n"
      "2,\"mobilenet,v2\",0.1,\"said \"\"ok\"\"\nthen stopped\"\n";
  EXPECT_EQ(csv.str(), want);
  const std::string path = dir.file("r.csv");
  csv.save(path);
  EXPECT_EQ(slurp(path), want);
  try {
    csv.add_row({1, 2});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 4 cells"), std::string::npos) << e.what();
  }
  EXPECT_THROW(CsvWriter({}), Error);
}

TEST(Results, JsonFileRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("r.json");
  nlohmann::json j = {{"model", "resnet20"}, {"acc", 0.9123456789012345}, {"epochs", 3},
                      {"per_class", {0.1, 0.2}}, {"nan", std::nan("")}};
  write_json_file(path, j);
  const std::string text = slurp(path);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("\n  \"acc\": 0.9123456789012345"), std::string::npos) << text;  // pretty, full precision
  nlohmann::json back = read_json_file(path);
  EXPECT_EQ(back["acc"].get<double>(), 0.9123456789012345);
  EXPECT_EQ(back["per_class"], j["per_class"]);
  EXPECT_TRUE(back["nan"].is_null());  // JSON has no NaN

  auto expect_error = [](auto&& fn, const std::string& part) {
    try {
      fn();
      ADD_FAILURE() << "expected an error mentioning " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error([&] { read_json_file(dir.file("missing.json")); }, "missing.json");
  write_file_atomically(dir.file("bad.json"), std::string_view("{\"a\": [1,"));
  expect_error([&] { read_json_file(dir.file("bad.json")); }, "bad.json");
  expect_error([&] { write_json_file(dir.file("u.json"), nlohmann::json("\xff")); }, "u.json");
  expect_error([&] { write_json_file(dir.file("nodir/x.json"), j); }, "does not exist");
}

TEST(AtomicFile, ReplacesAndCleansUp) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  write_file_atomically(path, std::string_view("old contents"));
  EXPECT_EQ(slurp(path), "old contents");
  // Large writes (bypassing the stream buffer) and small ones interleaved.
  const std::string big(300000, 'x');
  write_file_atomically(path, [&](std::ostream& os) {
    os << "head:";
    os.write(big.data(), std::streamsize(big.size()));
    os << ":tail";
  });
  EXPECT_EQ(slurp(path), "head:" + big + ":tail");
  EXPECT_EQ(dir.count(), 1);  // no temporary left behind

  // A writer that fails midway leaves the previous file intact and no temporary behind.
  write_file_atomically(path, std::string_view("good"));
  EXPECT_THROW(write_file_atomically(path, [](std::ostream& os) {
                 os << "half";
                 throw Error("simulated crash");
               }),
               Error);
  EXPECT_EQ(slurp(path), "good");
  EXPECT_EQ(dir.count(), 1);

  // A relative path in the working directory has parent "" and must work too.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path);
  write_file_atomically("rel.txt", std::string_view("r"));
  fs::current_path(cwd);
  EXPECT_EQ(slurp(dir.file("rel.txt")), "r");

  try {
    write_file_atomically(dir.file("missing/out.bin"), std::string_view("x"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_file_atomically(dir.path.string(), std::string_view("x")), Error);  // a directory
}
