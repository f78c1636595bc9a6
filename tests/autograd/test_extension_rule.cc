// register_extension_rule: a backward rule defined outside finch's tree (a course example, a
// student's op) is accepted by record() without joining the in-tree list that the gradcheck
// coverage test walks.
#include <gtest/gtest.h>

#include <algorithm>

#include "autograd/registry.h"

using namespace finch::autograd;

TEST(Registry, ExtensionRuleIsRegisteredButNotInTheInTreeList) {
  const std::string name = "test_extension_rule_xyz";
  EXPECT_FALSE(is_registered_rule(name));
  register_extension_rule(name);
  register_extension_rule(name);  // twice is harmless
  EXPECT_TRUE(is_registered_rule(name));
  const auto& rules = backward_rules();
  EXPECT_EQ(std::find(rules.begin(), rules.end(), name), rules.end());
  EXPECT_TRUE(is_registered_rule("relu"));  // the in-tree rules are unaffected
  EXPECT_FALSE(is_registered_rule("test_extension_rule_other"));
}
