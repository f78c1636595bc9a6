// The one list of backward rules: every name passed to autograd::record() appears here, and the
// gradcheck suite checks that each of them has a finite-difference test.
#pragma once

#include <string>
#include <vector>

namespace finch::autograd {

const std::vector<std::string>& backward_rules();
bool is_registered_rule(const std::string& name);

}  // namespace finch::autograd
