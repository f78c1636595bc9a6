// Shared by the tests that run training programs under `mpirun -np 2`: why they would skip, the
// launch (as root, oversubscribed, under `timeout`), and the largest difference of two weight files.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "framework/dist.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"

namespace finch::test {

inline std::string why_no_mpirun() {
  if (!dist::built_with_mpi()) return "finch was built without MPI (apt-get install libopenmpi-dev openmpi-bin)";
#ifndef FINCH_MPIEXEC
  return "CMake found MPI but no mpiexec/mpirun (apt-get install openmpi-bin)";
#else
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return "already running under mpirun";
  return "";
#endif
}

// `mpirun ARGS` ("-np 2 PROGRAM …", or an MPMD line holding " : "), output captured in `dir`.
inline RunResult mpirun(const std::string& args, const fs::path& dir) {
#ifdef FINCH_MPIEXEC
  // As root OpenMPI needs --allow-run-as-root; --oversubscribe for machines with fewer free
  // slots; `timeout` turns a hang into a failure.
  const std::string o = (dir / "mpi_stdout.txt").string(), e = (dir / "mpi_stderr.txt").string();
  const std::string cmd = std::string("timeout 300 ") + FINCH_MPIEXEC + " --allow-run-as-root --oversubscribe " +
                          args + " > " + o + " 2> " + e;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(o), slurp(e)};
#else
  (void)args;
  (void)dir;
  return {-1, "", ""};
#endif
}

// Largest |a − b| over every tensor of two weight files (parameters and BN running statistics),
// leaving out the tensors `skip` names.
inline double max_abs_diff(const fs::path& a_file, const fs::path& b_file,
                           const std::function<bool(const std::string&)>& skip = nullptr) {
  const SafetensorsFile a = load_safetensors(a_file.string());
  const SafetensorsFile b = load_safetensors(b_file.string());
  double max_diff = 0;
  for (const auto& [name, t] : a.tensors) {
    if (t.dtype() != DType::f32) continue;  // num_batches_tracked: counted alike anyway
    if (skip && skip(name)) continue;
    const auto x = t.to_vector<float>(), y = b.at(name).to_vector<float>();
    EXPECT_EQ(x.size(), y.size()) << name;
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i)
      max_diff = std::max(max_diff, double(std::fabs(x[i] - y[i])));
  }
  return max_diff;
}

}  // namespace finch::test
