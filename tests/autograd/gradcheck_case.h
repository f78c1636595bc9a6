// Shared helpers for the gradcheck suite: each test declares which backward rule it covers, and
// test_rule_coverage.cc fails when a rule in autograd/registry.cc has no test.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "autograd/gradcheck.h"
#include "framework/random.h"

namespace finch::test {

inline std::set<std::string>& covered_rules() {
  static std::set<std::string> s;
  return s;
}

struct RuleCoverage {
  explicit RuleCoverage(const char* rule) { covered_rules().insert(rule); }
};

// Runs gradcheck and expects it to pass through the backward rule `rule`.
inline void check_grad(const std::string& rule,
                       const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& f,
                       const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {}) {
  GradcheckResult r = gradcheck(f, inputs, opt);
  EXPECT_TRUE(r.ok) << r.message;
  bool found = false;
  for (const auto& n : r.rules) found |= n == rule;
  EXPECT_TRUE(found) << "the checked function never went through backward rule '" << rule << "'";
}

// A random F64 leaf that requires grad.
inline Tensor leaf(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  Tensor t = randn(shape, g, DType::f64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= scale;
  t.set_requires_grad(true);
  return t;
}

}  // namespace finch::test

// GRADCHECK_TEST(rule, Name) { ... check_grad("rule", ...); } declares coverage of `rule`.
#define GRADCHECK_TEST(rule, name)                                                  \
  static ::finch::test::RuleCoverage finch_coverage_##rule##_##name(#rule);          \
  TEST(Gradcheck_##rule, name)
