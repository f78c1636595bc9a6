// `finch emit-c` from the command line: a program written by `finch bench-program` becomes three
// files and a summary (re-declared for another batch with --batch); a missing program, an unwritable --out, a bad --name and an op emit-c does
// not cover are each one sentence on stderr with a non-zero exit and no file left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "runtime/program_file.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

TEST(FinchEmitC, WritesThreeFilesAndRefusesBadInputInOneSentence) {
  TempDir dir("emit_c_cli");
  const std::string program = dir / "lenet.finch";
  RunResult r = run_program("finch", "bench-program --model lenet5 --precision int8 --out " + program, dir.path);
  ASSERT_EQ(r.code, 0) << r.err;

  r = run_program("finch", "emit-c " + program + " --out " + (dir / "c"), dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("lenet.c ("), std::string::npos) << r.out;
  for (const char* f : {"c/lenet.c", "c/lenet.h", "c/lenet_main.c"}) EXPECT_TRUE(fs::exists(dir / f)) << f;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "c"), fs::directory_iterator{}), 3) << "no temporary left";

  r = run_program("finch", "emit-c " + (dir / "missing.finch") + " --out " + (dir / "m"), dir.path);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("missing.finch"), std::string::npos) << r.err;

  { std::ofstream(dir / "a-file") << "x"; }
  r = run_program("finch", "emit-c " + program + " --out " + (dir / "a-file/sub"), dir.path);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("cannot create the output folder"), std::string::npos) << r.err;

  r = run_program("finch", "emit-c " + program + " --out " + (dir / "n") + " --name 9lives", dir.path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("expected --name to be a C identifier"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "n/9lives.c"));

  // --batch re-declares the program (lenet.h then takes 2 images); 0 is one sentence.
  r = run_program("finch", "emit-c " + program + " --out " + (dir / "b2") + " --batch 2", dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  {
    std::ifstream h(dir / "b2/lenet.h");
    const std::string text((std::istreambuf_iterator<char>(h)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("#define lenet_INPUT_SIZE 1568"), std::string::npos) << text;
  }
  r = run_program("finch", "emit-c " + program + " --out " + (dir / "b0") + " --batch 0", dir.path);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("expected --batch to be a whole number from 1 to 1048576, got 0"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "b0/lenet.c"));

  // The same program with a sigmoid after its output: the runtime runs it, emit-c does not.
  runtime::Graph g = runtime::read_program(program);
  runtime::Value v = g.values[size_t(g.outputs[0])];
  v.name = "probabilities";
  runtime::Node s;
  s.op = "sigmoid";
  s.name = "head";
  s.inputs = {g.outputs[0]};
  s.outputs = {g.add_value(v)};
  g.nodes.push_back(s);
  g.outputs = {s.outputs[0]};
  runtime::write_program(g, dir / "sigmoid.finch");
  r = run_program("finch", "emit-c " + (dir / "sigmoid.finch") + " --out " + (dir / "s"), dir.path);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("node 'head' (sigmoid) is an op emit-c does not cover"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "s/sigmoid.c"));
}

}  // namespace
