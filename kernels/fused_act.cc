// fused_act_from_name (kernels/fused_act.h).
#include "kernels/fused_act.h"

#include "framework/error.h"

namespace finch::quant::kernels {

FusedAct fused_act_from_name(const std::string& act) {
  if (act == "none") return FusedAct::none;
  if (act == "relu") return FusedAct::relu;
  if (act == "relu6") return FusedAct::relu6;
  fail("unknown activation '", act, "' (expected none, relu or relu6)");
}

}  // namespace finch::quant::kernels
