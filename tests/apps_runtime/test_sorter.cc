// The sorter end to end, as a process: its decisions equal finch_run's on the same program and
// images (PNG, JPEG, BMP, gray, other sizes), bad files go to reject with the reason, the
// threshold, --copy, stdin and --watch sources, actuators without a shell, bad options as one
// sentence, and SIGKILL at random moments of a batch never losing or duplicating a file.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "apps/runtime/sorter_actuator.h"
#include "apps/runtime/sorter_files.h"
#include "framework/error.h"
#include "tests/apps_runtime/sorter_test_util.h"
#include "tests/temp_dir.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"

namespace finch::test {
namespace {

namespace fs = std::filesystem;

// A w×h image with `comp` channels of smooth seeded noise, written by its extension.
void write_image(const std::string& path, int w, int h, int comp, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> px(size_t(w * h * comp));
  const int base = int(rng() % 200);
  for (auto& p : px) p = (unsigned char)(base + int(rng() % 56));
  const std::string ext = fs::path(path).extension().string();
  int ok = 0;
  if (ext == ".png") ok = stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp);
  else if (ext == ".jpg") ok = stbi_write_jpg(path.c_str(), w, h, comp, px.data(), 95);
  else ok = stbi_write_bmp(path.c_str(), w, h, comp, px.data());
  ASSERT_NE(ok, 0) << path;
}

class Sorter : public ::testing::Test {
 protected:
  TempDir dir_{"sorter"};
  std::string prog_, src_, bins_;
  void SetUp() override {
    prog_ = dir_ / "tiny.finch";
    runtime::write_program(tiny_classifier(), prog_);
    src_ = dir_ / "in";
    bins_ = dir_ / "bins";
    fs::create_directories(src_);
  }
  // n good images of several formats and sizes in `folder` (8×8 is the program's own size).
  std::vector<std::string> good_images(const std::string& folder, int n, uint32_t seed = 1) {
    const char* ext[] = {".png", ".jpg", ".bmp"};
    const int sizes[][2] = {{8, 8}, {12, 10}, {5, 7}, {8, 8}};
    std::vector<std::string> files;
    for (int i = 0; i < n; ++i) {
      const std::string f = folder + "/img" + std::to_string(i) + ext[i % 3];
      write_image(f, sizes[i % 4][0], sizes[i % 4][1], i % 5 == 4 ? 1 : 3, seed * 1000 + uint32_t(i));
      files.push_back(f);
    }
    return files;
  }
  std::string list_of(const std::vector<std::string>& files) {
    const std::string list = dir_ / "list.txt";
    std::ofstream o(list);
    for (const auto& f : files) o << f << "\n";
    return list;
  }
  // Every non-hidden file under `root` (recursively, skipping BINS/.sorter), by file name.
  // The sorter may be running: a file can vanish between listing and stat, so no call throws.
  static std::multiset<std::string> names_under(const std::string& root) {
    std::multiset<std::string> s;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (it->is_directory(ec) && name == ".sorter") it.disable_recursion_pending();
      else if (it->is_regular_file(ec) && name[0] != '.') s.insert(name);
    }
    return s;
  }
};

// finch_run's lines: file \t index \t name \t score → file → name.
std::map<std::string, std::string> finch_run_names(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream row(line);
    std::string file, idx, name;
    if (std::getline(row, file, '\t') && std::getline(row, idx, '\t') && std::getline(row, name, '\t')) m[file] = name;
  }
  return m;
}

TEST_F(Sorter, DecidesLikeFinchRunAndRejectsBadFiles) {
  const auto good = good_images(src_, 9);
  std::vector<std::string> args = {prog_};
  args.insert(args.end(), good.begin(), good.end());
  const RunResult fr = run_tool("finch_run", args, dir_.str());
  ASSERT_EQ(fr.code, 0) << fr.err;
  const auto want = finch_run_names(fr.out);
  ASSERT_EQ(want.size(), good.size()) << fr.out;

  std::vector<std::string> all = good;
  { std::ofstream(src_ + "/corrupt.jpg", std::ios::binary) << std::string("\xff\xd8\xff\xe0garbage after a JPEG marker", 31); }
  { std::ofstream(src_ + "/notes.txt") << "not an image\n"; }
  { std::ofstream(src_ + "/empty.png"); }
  for (const char* bad : {"corrupt.jpg", "notes.txt", "empty.png"}) all.push_back(src_ + "/" + bad);
  all.push_back(src_ + "/missing.png");
  const std::string log = dir_ / "decisions.jsonl";
  const RunResult r = run_tool("sorter", {"--program", prog_, "--list", list_of(all), "--bins", bins_, "--threshold", "0",
                                    "--log", log},
                         dir_.str());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(log), r.out);
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), all.size()) << r.out;
  std::map<std::string, int> per_bin;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& j = lines[i];
    SCOPED_TRACE(j.dump());
    EXPECT_EQ(j["file"], all[i]);
    if (i < good.size()) {
      EXPECT_EQ(j["class"], want.at(good[i]));
      EXPECT_EQ(j["bin"], j["class"]);
      EXPECT_GT(j["confidence"].get<double>(), 1.0 / 3 - 1e-6);
      EXPECT_LE(j["confidence"].get<double>(), 1.0);
      EXPECT_GE(j["latency_ms"].get<double>(), 0.0);
    } else if (i + 1 < all.size()) {
      EXPECT_TRUE(j["class"].is_null());
      EXPECT_EQ(j["bin"], "reject");
      EXPECT_NE(j["reason"].get<std::string>().find(fs::path(all[i]).filename().string()), std::string::npos);
    } else {
      EXPECT_EQ(j["skipped"], "no such file");
      continue;
    }
    const std::string dest = j["dest"];
    EXPECT_TRUE(fs::exists(dest));
    EXPECT_EQ(fs::path(dest).parent_path(), fs::path(bins_) / j["bin"].get<std::string>());
    EXPECT_FALSE(fs::exists(all[i])) << "moved, not copied";
    ++per_bin[j["bin"]];
  }
  EXPECT_EQ(per_bin["reject"], 3);
  EXPECT_EQ(names_under(bins_).size(), good.size() + 3);
}

TEST_F(Sorter, ThresholdCopyAndStdin) {
  const auto good = good_images(src_, 12, 2);
  const std::string list = list_of(good);
  // --copy with threshold 0: every file into its class bin, originals kept; a second run skips all.
  RunResult r = run_tool("sorter", {"--program", prog_, "--list", list, "--bins", bins_, "--copy", "--threshold", "0"}, dir_.str());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<double> conf;
  for (const auto& j : json_lines(r.out)) conf.push_back(j["confidence"]);
  ASSERT_EQ(conf.size(), good.size());
  for (const auto& f : good) EXPECT_TRUE(fs::exists(f)) << f;
  EXPECT_EQ(names_under(bins_).size(), good.size());
  r = run_tool("sorter", {"--program", prog_, "--list", list, "--bins", bins_, "--copy"}, dir_.str());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& j : json_lines(r.out)) EXPECT_TRUE(j.contains("skipped")) << j.dump();
  EXPECT_EQ(names_under(bins_).size(), good.size()) << "no second copy";

  // A threshold between the confidences splits them, read from stdin this time.
  std::vector<double> sorted = conf;
  std::sort(sorted.begin(), sorted.end());
  const double thr = 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  const std::string bins2 = dir_ / "bins2";
  r = run_tool("sorter", {"--program", prog_, "-", "--bins", bins2, "--threshold", std::to_string(thr)}, dir_.str(), list);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), good.size());
  int rejected = 0;
  for (const auto& j : lines) {
    const bool sure = j["confidence"].get<double>() >= thr;
    EXPECT_EQ(j["bin"], sure ? j["class"] : nlohmann::json("reject")) << j.dump();
    rejected += !sure;
  }
  EXPECT_GT(rejected, 0);
  EXPECT_LT(rejected, int(good.size()));
}

TEST_F(Sorter, WatchSortsFilesPresentAtStartAndNewOnes) {
  good_images(src_, 2, 3);
  const std::string out = dir_ / "watch.out", err = dir_ / "watch.err";
  const pid_t pid = spawn(command("sorter", {"--program", prog_, "--watch", src_, "--bins", bins_, "--threshold", "0"}),
                          out, err);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(wait_for([&] { return names_under(src_).empty(); })) << slurp(err);
  // A new file written under a hidden name and renamed in (IN_MOVED_TO), one written in place
  // (IN_CLOSE_WRITE).
  write_image(dir_ / ".late.png", 8, 8, 3, 99);
  fs::rename(dir_ / ".late.png", src_ + "/late.png");
  write_image(src_ + "/direct.jpg", 9, 9, 3, 98);
  EXPECT_TRUE(wait_for([&] { return names_under(bins_).size() == 4; })) << slurp(out) << slurp(err);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 0) << slurp(err);
  EXPECT_EQ(json_lines(slurp(out)).size(), 4u);
  EXPECT_TRUE(names_under(src_).empty());
}

TEST_F(Sorter, KilledAtRandomMomentsNeverLosesOrDuplicatesAFile) {
  for (const bool by_copy : {false, true}) {
    SCOPED_TRACE(by_copy ? "copy + fsync + unlink" : "rename");
    fs::remove_all(src_);
    fs::remove_all(bins_);
    fs::create_directories(src_);
    const int n = 40;
    const auto files = good_images(src_, n, by_copy ? 5 : 4);
    std::map<std::string, std::string> bytes;
    for (const auto& f : files) bytes[fs::path(f).filename().string()] = slurp(f);
    const std::string list = list_of(files), log = dir_ / "kill.jsonl";
    fs::remove(log);
    std::vector<std::string> args = {"--program", prog_, "--list", list, "--bins", bins_, "--threshold", "0", "--log", log};
    if (by_copy) args.push_back("--move-by-copy");
    std::mt19937 rng(by_copy ? 11 : 12);
    // Decisions that moved a file (a restarted run also logs the files an earlier one moved as skipped).
    auto moves_logged = [&] {
      std::istringstream in(slurp(log));
      int c = 0;
      for (std::string line; std::getline(in, line);) c += line.find("\"dest\":\"") != std::string::npos;
      return c;
    };
    int kills_mid_batch = 0;
    for (int round = 0; round < 6; ++round) {
      const int before = moves_logged();
      const pid_t pid = spawn(command("sorter", args), dir_ / "k.out", dir_ / "k.err");
      ASSERT_GT(pid, 0);
      // Kill after a random number of decisions, then a random few hundred microseconds more:
      // somewhere inside a move, between fsyncs, or between the move and its log line.
      const int target = before + 1 + int(rng() % 5);
      wait_for([&] { return moves_logged() >= target; }, 30);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
      kill(pid, SIGKILL);
      const int code = wait_exit(pid);
      kills_mid_batch += code == 128 + SIGKILL && !names_under(src_).empty();
    }
    EXPECT_GE(kills_mid_batch, 3);
    // A last run to the end resolves the leftover and sorts the rest.
    const RunResult r = run_tool("sorter", args, dir_.str());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(names_under(src_).empty());
    const auto placed = names_under(bins_);
    EXPECT_EQ(placed.size(), size_t(n)) << "none lost, none duplicated";
    for (const auto& [name, content] : bytes) {
      EXPECT_EQ(placed.count(name), 1u) << name;
      bool found = false;
      for (const auto& e : fs::recursive_directory_iterator(bins_))
        if (e.path().filename() == name) found = slurp(e.path().string()) == content;
      EXPECT_TRUE(found) << name << " arrived whole";
    }
    EXPECT_FALSE(fs::exists(bins_ + "/.sorter/intent"));
    for (const auto& e : fs::recursive_directory_iterator(bins_))
      EXPECT_EQ(e.path().string().find(".sorter-part"), std::string::npos) << "a partial copy was left: " << e.path();
  }
}

TEST_F(Sorter, RecoveryFinishesOrUndoesAnInterruptedCopy) {
  fs::create_directories(bins_ + "/.sorter");
  fs::create_directories(bins_ + "/can");
  const std::string a = src_ + "/a.png", b = src_ + "/b.png";
  write_image(a, 8, 8, 3, 1);
  write_image(b, 8, 8, 3, 2);
  auto intent = [&](const std::string& src, const std::string& dst, const std::string& tmp, bool keep) {
    std::ofstream(bins_ + "/.sorter/intent")
        << nlohmann::json{{"src", src}, {"dst", dst}, {"tmp", tmp}, {"how", "copy"}, {"keep", keep}}.dump();
  };
  // Killed after the rename of the complete copy, before the unlink: the move is finished.
  fs::copy_file(a, bins_ + "/can/a.png");
  intent(a, bins_ + "/can/a.png", bins_ + "/can/.a.png.sorter-part", false);
  { apps::SortedFiles f(bins_, false, false); EXPECT_NE(f.recovered().find("removed the original"), std::string::npos); }
  EXPECT_FALSE(fs::exists(a));
  // Killed mid-copy: the partial copy goes, the original stays.
  { std::ofstream(bins_ + "/can/.b.png.sorter-part") << "par"; }
  intent(b, bins_ + "/can/b.png", bins_ + "/can/.b.png.sorter-part", false);
  { apps::SortedFiles f(bins_, false, false); EXPECT_NE(f.recovered().find("original stays"), std::string::npos); }
  EXPECT_TRUE(fs::exists(b));
  EXPECT_FALSE(fs::exists(bins_ + "/can/.b.png.sorter-part"));
  EXPECT_FALSE(fs::exists(bins_ + "/.sorter/intent"));
  // A damaged intent record is one sentence, and nothing is deleted.
  { std::ofstream(bins_ + "/.sorter/intent") << "{\"src\": 3"; }
  EXPECT_THROW(apps::SortedFiles(bins_, false, false), Error);
  EXPECT_TRUE(fs::exists(b));
}

TEST_F(Sorter, ActuatorRunsWithoutAShellAndFailuresAreLogged) {
  const std::string odd = src_ + "/x $(touch PWNED); touch PWNED2.png";
  write_image(odd, 8, 8, 3, 5);
  write_image(src_ + "/y.png", 8, 8, 3, 6);
  const std::string marks = dir_ / "marks";
  fs::create_directories(marks);
  RunResult r = run_tool("sorter", {"--program", prog_, "--list", list_of({odd, src_ + "/y.png"}), "--bins", bins_,
                              "--threshold", "0", "--actuator-cmd", "touch '" + marks + "/{class}'"},
                   dir_.str());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& j : json_lines(r.out)) {
    EXPECT_FALSE(j.contains("actuator")) << j.dump();
    EXPECT_TRUE(fs::exists(marks + "/" + j["class"].get<std::string>())) << j.dump();
  }
  EXPECT_FALSE(fs::exists(dir_ / "PWNED"));
  EXPECT_FALSE(fs::exists(dir_ / "PWNED2.png"));
  write_image(src_ + "/z.png", 8, 8, 3, 7);
  r = run_tool("sorter", {"--program", prog_, "--list", list_of({src_ + "/z.png"}), "--bins", bins_, "--actuator-cmd",
                          "false {class}"},
               dir_.str());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["actuator"], "exit status 1");
  EXPECT_TRUE(fs::exists(lines[0]["dest"].get<std::string>())) << "a failing actuator does not stop the sort";
}

TEST_F(Sorter, BadOptionsAreOneSentence) {
  const std::string list = list_of({});
  auto fails = [&](std::vector<std::string> args, const std::string& expect) {
    const RunResult r = run_tool("sorter", args, dir_.str());
    EXPECT_NE(r.code, 0) << expect;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  fails({"--program", prog_, "--list", list}, "--program and --bins are required");
  fails({"--program", prog_, "--bins", bins_}, "exactly one source");
  fails({"--program", prog_, "--bins", bins_, "--list", list, "-"}, "exactly one source");
  fails({"--program", prog_, "--bins", bins_, "--list", list, "--threshold", "1.5"}, "between 0 and 1");
  fails({"--program", prog_, "--bins", bins_, "--list", list, "--threshold", "nan"}, "between 0 and 1");
  fails({"--program", prog_, "--bins", bins_, "--list", list, "--threads", "-2"}, "--threads");
  fails({"--program", prog_, "--bins", bins_, "--list", list, "--actuator-cmd", "'gate"}, "unterminated");
  fails({"--program", prog_, "--bins", bins_, "--watch", dir_ / "nowhere"}, "is not a folder");
  fails({"--program", dir_ / "missing.finch", "--bins", bins_, "--list", list}, "missing.finch");
  fails({"--program", prog_, "--bins", bins_, "--list", dir_ / "nolist.txt"}, "nolist.txt");
  fails({"--program", prog_, "--bins", bins_, "--list", list, "--frobnicate"}, "unknown argument --frobnicate");
  // A program whose class names would escape the bins folder.
  runtime::Graph g = tiny_classifier();
  g.meta["classes"] = std::vector<std::string>{"ok", "../up", "x"};
  runtime::write_program(g, dir_ / "evil.finch");
  fails({"--program", dir_ / "evil.finch", "--bins", bins_, "--list", list}, "cannot be a bin folder name");
}

TEST(SorterGpioConfig, EveryNumberAndNameIsChecked) {
  TempDir d("gpio");
  const std::vector<std::string> classes = {"bottle", "can", "reject"};
  auto config = [&](const std::string& text) {
    std::ofstream(d / "g.conf") << text;
    return d / "g.conf";
  };
  const apps::GpioConfig c = apps::read_gpio_config(config("# gates\nchip gpiochip4\npulse_ms 250\nline bottle 17\n"
                                                           "line reject 22  # the reject flap\n"),
                                                    classes);
  EXPECT_EQ(c.chip, "gpiochip4");
  EXPECT_EQ(c.pulse_ms, 250);
  EXPECT_EQ(c.lines.at("bottle"), 17);
  EXPECT_EQ(c.lines.at("reject"), 22);
  auto fails = [&](const std::string& text, const std::string& expect) {
    try {
      apps::read_gpio_config(config(text), classes);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
  };
  fails("line bottle 17\npulse_ms 0\n", "line 2: expected pulse_ms as an integer in 1..60000, found '0'");
  fails("line bottle 1024\n", "a line offset");
  fails("line bottle 1.5\n", "found '1.5'");
  fails("line bottle 99999999999999999999\n", "a line offset");
  fails("line glass 3\n", "class 'glass'");
  fails("line bottle 3\nline can 3\n", "line 3 is mapped to another class");
  fails("line bottle 3\nline bottle 4\n", "has a line already");
  fails("gate bottle 3\n", "expected 'chip NAME'");
  fails("# nothing\n", "at least one");
  fails("", "at least one");
  // No GPIO chip of that name here (or no libgpiod in this build): a sentence, not a crash.
  EXPECT_THROW(apps::GpioOutputs(apps::read_gpio_config(config("chip nosuchchip\nline can 3\n"), classes)), Error);
}

}  // namespace
}  // namespace finch::test
