// The one list of backward rules: every name passed to autograd::record() appears here, and the
// gradcheck suite checks that each of them has a finite-difference test.
#pragma once

#include <string>
#include <vector>

namespace finch::autograd {

const std::vector<std::string>& backward_rules();
// Rules whose gradient is a deliberate estimate, not the derivative (the straight-through
// estimator of fake quantization is 1 where the true derivative of rounding is 0), so finite
// differences cannot check them: recorded by quant/, tested against their formulas in
// tests/quant (test_fake_quant.cc fails when one lacks a test).
const std::vector<std::string>& straight_through_rules();
bool is_registered_rule(const std::string& name);
// A rule defined outside finch's tree (a course example, a student's own op): listed here at run
// time so record()'s debug check accepts it. In-tree rules go in backward_rules() instead, where
// the suite demands a gradcheck for each; extensions bring their own check.
void register_extension_rule(const std::string& name);

}  // namespace finch::autograd
