// save_quantized_model / load_quantized_state: the quantized model checkpoint (quant/checkpoint.h).
#include "quant/checkpoint.h"

#include <nlohmann/json.hpp>

#include "framework/error.h"
#include "framework/safetensors.h"
#include "quant/save.h"

namespace finch::quant {

void save_quantized_model(const std::string& path, QuantizedModel& q,
                          const std::map<std::string, std::string>& metadata) {
  NamedTensors t;
  for (const auto& [name, v] : q.model.state_dict()) t.emplace_back(name, v);
  for (const auto& [name, v] : q.state->state_dict()) t.emplace_back(kQuantStatePrefix + name, v);
  std::map<std::string, std::string> m = metadata;
  m["format"] = kQuantizedModelFormat;
  if (!m.count("qconfig")) m["qconfig"] = q.options.qconfig.str();
  m["fuse"] = q.options.fuse ? "true" : "false";
  m["dynamic"] = q.options.dynamic ? "true" : "false";
  m["skip"] = nlohmann::json(q.options.skip).dump();
  save_safetensors(path, t, m);
}

QuantizedModelState load_quantized_state(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  QuantizedModelState s;
  s.metadata = f.metadata;
  const auto fmt = f.metadata.find("format");
  if (fmt != f.metadata.end() && fmt->second == kIntegerWeightsFormat)
    fail(path, " is an integer-weights export (format ", kIntegerWeightsFormat,
         ", written by finch quantize --out FILE.safetensors), which cannot rebuild the simulated model; expected a "
         "quantized model checkpoint (format ", kQuantizedModelFormat,
         ": qat_model.safetensors from train_cifar --qat, or the PROGRAM.finch.sim.safetensors that finch quantize "
         "writes beside a program)");
  s.legacy = fmt == f.metadata.end() || fmt->second != kQuantizedModelFormat;
  const std::string prefix = kQuantStatePrefix;
  for (const auto& [name, t] : f.tensors) {
    if (name.rfind(prefix, 0) == 0) s.quant.insert(name.substr(prefix.size()), t);
    else s.weights.insert(name, t);
  }
  return s;
}

}  // namespace finch::quant
