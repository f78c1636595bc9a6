// QConfig presets.
#include "quant/qconfig.h"

#include "framework/error.h"

namespace finch::quant {

std::string QConfig::str() const {
  std::string s = name + ": ";
  if (fp16_weights) s += "fp16 weights";
  else if (quantize_weights) s += "weights " + weight.str() + " (" + weight_observer + ")";
  else s += "float weights";
  s += quantize_activations ? ", activations " + activation.str() + " (" + activation_observer + ")"
                            : ", float activations";
  if (lsq) s += ", LSQ";
  return s;
}

std::vector<std::string> qconfig_names() {
  return {"int8", "int8-per-tensor", "uint8-io", "int8-weights-only", "fp16", "int4-weights"};
}

QConfig qconfig_preset(const std::string& name) {
  QConfig q;
  q.name = name;
  if (name == "int8") return q;
  if (name == "int8-per-tensor") {
    q.weight.axis = -1;
    return q;
  }
  if (name == "uint8-io") {
    q.io = QSpec{8, false, false, false, -1};
    return q;
  }
  if (name == "int8-weights-only") {
    q.quantize_activations = false;
    return q;
  }
  if (name == "fp16") {
    q.quantize_activations = false;
    q.quantize_weights = false;
    q.fp16_weights = true;
    return q;
  }
  if (name == "int4-weights") {
    q.quantize_activations = false;
    q.weight.bits = 4;
    return q;
  }
  std::string valid;
  for (const auto& n : qconfig_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown qconfig '", name, "'; expected one of: ", valid);
}

}  // namespace finch::quant
