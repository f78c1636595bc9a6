// A tiny safetensors reader for the sequence-op golden tests (tests/golden/data/sequence_*).
// framework/safetensors.h is written by another helper; until it lands this keeps the tests
// Python-free and self-contained. Reads F32/F64/BOOL tensors into finch Tensors.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace finch::test {

inline std::map<std::string, Tensor> load_sequence_golden(const std::string& name) {
  const std::string path = std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + name;
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("golden: cannot open ", path);
  std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (raw.size() < 8) fail("golden: ", path, " is shorter than a safetensors header");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  if (8 + n > raw.size()) fail("golden: ", path, " has a header longer than the file");
  const auto header = nlohmann::json::parse(raw.begin() + 8, raw.begin() + 8 + int64_t(n));
  const size_t base = 8 + size_t(n);
  std::map<std::string, Tensor> out;
  for (const auto& [key, v] : header.items()) {
    if (key == "__metadata__") continue;
    const DType dt = dtype_from_name(v["dtype"].get<std::string>());
    Tensor t = empty(v["shape"].get<Shape>(), dt);
    const size_t b = v["data_offsets"][0], e = v["data_offsets"][1];
    if (e - b != t.nbytes() || base + e > raw.size())
      fail("golden: tensor ", key, " in ", path, " has ", e - b, " bytes, expected ", t.nbytes());
    std::memcpy(t.raw_data(), raw.data() + base + b, e - b);
    out[key] = t;
  }
  return out;
}

// Expects |a - b| <= atol + rtol·|b| elementwise (b is the reference), same shape, no NaN.
inline void expect_close(const Tensor& a, const Tensor& b, double atol, double rtol,
                         const std::string& what) {
  ASSERT_TRUE(a.defined()) << what << ": result undefined";
  ASSERT_TRUE(b.defined()) << what << ": reference undefined";
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const bool ok = std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]);
    if (!ok && bad++ < 3)
      ADD_FAILURE() << what << ": element " << i << " is " << x[i] << ", expected " << y[i];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << x.size() << " elements differ";
}

}  // namespace finch::test
