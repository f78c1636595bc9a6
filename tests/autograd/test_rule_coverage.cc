// Every backward rule listed in autograd/registry.cc has at least one gradcheck test.
#include <gtest/gtest.h>

#include "autograd/registry.h"
#include "gradcheck_case.h"

TEST(Registry, EveryBackwardRuleHasAGradcheck) {
  for (const auto& rule : finch::autograd::backward_rules())
    EXPECT_TRUE(finch::test::covered_rules().count(rule))
        << "backward rule '" << rule << "' has no GRADCHECK_TEST in tests/autograd";
}
