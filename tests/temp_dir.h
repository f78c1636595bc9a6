// TempDir: a fresh, empty folder under the system temp directory for one test, removed when the
// test ends. The name carries the pid and the test's name, so `ctest -j` runs never collide.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace finch::test {

struct TempDir {
  std::filesystem::path path;

  explicit TempDir(const std::string& name = "tmp") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // A parameterized test's name has a '/' ("Case/3"): kept, it would make a nested folder whose
    // parent outlives the test, so every '/' becomes '_'.
    std::string test = info ? info->name() : "none";
    for (char& c : test)
      if (c == '/') c = '_';
    path = std::filesystem::temp_directory_path() / ("finch_" + name + "_" + std::to_string(::getpid()) + "_" + test);
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string str() const { return path.string(); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string operator/(const std::string& name) const { return file(name); }
  // How many entries the folder holds (tests of atomic writes check no temporary is left).
  int count() const {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++n;
    return n;
  }
};

}  // namespace finch::test
