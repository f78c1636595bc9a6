// Shared helpers for tests comparing finch with PyTorch goldens (tests/golden/data/*.safetensors,
// read with framework/safetensors.h) or with a reference implementation: the golden file path
// and one elementwise closeness check that reports the worst element.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "framework/safetensors.h"
#include "framework/tensor.h"

namespace finch::test {

// tests/golden/data/<file>; FINCH_TEST_DATA_DIR is the repo's tests/ folder (tests/CMakeLists.txt).
inline std::string golden_path(const std::string& file) {
  return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + file;
}

// The whole golden file; look tensors up with .at("name") (throws naming the file and the tensor).
inline SafetensorsFile load_golden(const std::string& file) {
  return load_safetensors(golden_path(file));
}

// What a NaN or ±inf in the reference means: `fail` (the reference must be finite and every
// element within tolerance: |got - want| <= atol + rtol·|want| is false for NaN/inf), or
// `must_match` (NaN must meet NaN, ±inf the same inf; finite elements within tolerance).
enum class NonFinite { fail, must_match };

// Same shape and every element within atol + rtol·|want|. The failure message names how many
// elements are off and the worst one (largest excess over its tolerance; a non-finite miss
// counts as the worst).
inline ::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double atol,
                                            double rtol, NonFinite nonfinite = NonFinite::fail) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs expected "
                                         << shape_str(want.shape());
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  size_t bad = 0, worst_at = 0;
  double worst = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok;
    double excess;
    if (nonfinite == NonFinite::must_match && std::isnan(w[i])) {
      ok = std::isnan(g[i]);
      excess = INFINITY;
    } else if (nonfinite == NonFinite::must_match && std::isinf(w[i])) {
      ok = g[i] == w[i];
      excess = INFINITY;
    } else {
      const double tol = atol + rtol * std::fabs(w[i]);
      ok = std::fabs(g[i] - w[i]) <= tol;  // false for NaN
      excess = std::isnan(g[i] - w[i]) ? INFINITY : std::fabs(g[i] - w[i]) - tol;
    }
    if (ok) continue;
    if (bad++ == 0 || excess > worst) worst = excess, worst_at = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  const double tol = atol + rtol * std::fabs(w[worst_at]);
  return ::testing::AssertionFailure()
         << bad << " of " << g.size() << " elements differ; worst: element " << worst_at
         << " is " << g[worst_at] << ", expected " << w[worst_at] << " (|diff| "
         << std::fabs(g[worst_at] - w[worst_at]) << " > tolerance " << tol << ")";
}

// Fatal check (returns from the calling helper, HasFatalFailure() becomes true) that `got`
// matches `want` elementwise: both defined, same shape, |got - want| <= atol + rtol·|want|.
inline void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol,
                         const std::string& what, NonFinite nonfinite = NonFinite::fail) {
  ASSERT_TRUE(got.defined()) << what << ": result undefined";
  ASSERT_TRUE(want.defined()) << what << ": reference undefined";
  const ::testing::AssertionResult r = all_close(got, want, atol, rtol, nonfinite);
  ASSERT_TRUE(r) << what;
}

}  // namespace finch::test
