// save_quantized: the integer-weights export (quant/save.h), the tensors as the integer program stores them.
#include "quant/save.h"

#include <set>

#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/safetensors.h"
#include "kernels/quantize.h"

namespace finch::quant {

void save_quantized(const std::string& path, QuantizedModel& q, const std::map<std::string, std::string>& metadata) {
  NoGradGuard ng;
  NamedTensors out;
  std::set<std::string> covered;  // model state entries replaced by their deployed form
  for (const auto& d : q.deployed_weights()) {
    const std::string w = d.path + ".weight", b = d.path + ".bias";
    covered.insert(w);
    covered.insert(b);
    if (!d.folded_bn.empty())
      for (const char* k : {".weight", ".bias", ".running_mean", ".running_var", ".num_batches_tracked"})
        covered.insert(d.folded_bn + k);
    if (d.fake_quant) {
      if (!d.fake_quant->ready())
        fail("save_quantized: the weights of '", d.path, "' have no quantization parameters yet (run a forward first)");
      const QParams p = d.fake_quant->qparams();
      if (p.qmin < -128 || p.qmax > 127)
        fail("save_quantized: '", d.path, "' uses codes ", p.qmin, "..", p.qmax, "; only signed 8-bit or narrower is stored");
      out.emplace_back(w, quantize(d.weight.detach().contiguous(), p).to(DType::i8));
    } else if (d.fp16) {
      out.emplace_back(w, d.weight.detach().to(DType::f16));
    } else {
      out.emplace_back(w, d.weight.detach().contiguous());
    }
    if (d.bias.defined()) out.emplace_back(b, d.bias.detach().contiguous());
  }
  for (const auto& [name, t] : q.model.state_dict())
    if (!covered.count(name)) out.emplace_back(name, t);
  // Activation and weight parameters (scale, zero_point; observer ranges are dropped: only the
  // parameters are needed to run).
  for (const auto& [name, t] : q.state->state_dict()) {
    auto ends_with = [&](const std::string& e) {
      return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
    };
    if (ends_with(".scale") || ends_with(".zero_point")) out.emplace_back(name, t.detach().contiguous());
  }
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = kIntegerWeightsFormat;
  meta["qconfig"] = q.options.qconfig.str();
  meta["fused"] = q.options.fuse ? "1" : "0";
  meta["dynamic"] = q.options.dynamic ? "1" : "0";
  save_safetensors(path, out, meta);
}

}  // namespace finch::quant
