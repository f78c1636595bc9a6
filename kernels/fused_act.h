// The activation a runtime conv/linear kernel fuses into its epilogue (a node's "act" attribute),
// shared by the fp32 and fp16 kernels.
#pragma once

#include <string>

namespace finch::quant::kernels {

enum class FusedAct { none, relu, relu6 };

// "none", "relu" or "relu6"; fails on anything else.
FusedAct fused_act_from_name(const std::string& act);

}  // namespace finch::quant::kernels
