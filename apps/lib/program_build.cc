// Building .finch programs from zoo models (see program_build.h).
#include "apps/lib/program_build.h"

#include <cstdio>
#include <map>

#include "apps/lib/version.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compress/edits.h"
#include "framework/error.h"
#include "quant/checkpoint.h"
#include "runtime/executor.h"

namespace finch::apps {

nlohmann::json program_meta(const DataOptions& o, int64_t channels, int64_t height, int64_t width,
                            const std::vector<std::string>& classes) {
  return {{"model", o.model}, {"width", o.width}, {"stem", o.stem}, {"dataset", o.dataset}, {"mean", o.mean}, {"std", o.std},
          {"classes", classes}, {"input", {channels, height, width}}, {"finch_version", finch_version()}};
}

runtime::Graph float_program(nn::Module& model, const Tensor& example, nlohmann::json meta) {
  runtime::Graph g = compile::capture_graph(model, example);
  compile::fold_batch_norm(g);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  meta["precision"] = "fp32";
  g.meta = std::move(meta);
  return g;
}

runtime::Graph quantized_program(quant::QuantizedModel& q, const Tensor& example, nlohmann::json meta,
                                 const std::string& mode, const std::string& qconfig) {
  runtime::Graph g = compile::capture_graph(q.model, example);
  compile::lower_quantized(g);
  compile::fold_constants(g);
  meta["precision"] = mode == "fp16" ? "fp16" : mode == "dynamic" ? "int8-dynamic" : "int8";
  meta["quantization"] = {{"mode", mode}, {"qconfig", qconfig}, {"fuse", q.options.fuse}, {"skip", q.options.skip}};
  g.meta = std::move(meta);
  return g;
}

void save_simulation_state(const std::string& path, nn::Module& model, quant::QuantizedModel& q,
                           const nlohmann::json& meta, const std::string& edits) {
  if (&model != &q.model) fail("save_simulation_state: the model is not the one the quantized model wraps");
  std::map<std::string, std::string> m;
  for (const char* k : {"model", "dataset"})
    if (meta.contains(k)) m[k] = meta[k].get<std::string>();
  if (meta.contains("quantization")) m["qconfig"] = meta["quantization"].value("qconfig", "");
  if (!edits.empty()) m[compress::kEditsKey] = edits;
  quant::save_quantized_model(path, q, m);
}

void print_program_summary(const runtime::Graph& g, const std::string& path) {
  int64_t const_bytes = 0, integer = 0;
  for (const auto& v : g.values)
    if (v.is_constant()) const_bytes += v.data.numel() * int64_t(dtype_size(v.dtype));
  for (const auto& n : g.nodes) integer += (n.op[0] == 'q' && n.op != "quantize") || n.op == "dq_linear";
  const runtime::MemoryPlan mp = runtime::plan_memory(g);
  std::printf("%s: %zu nodes (%lld integer), %zu values, weights %.1f KiB, activation arena %.1f KiB "
              "(%.1f KiB without reuse)\n",
              path.c_str(), g.nodes.size(), static_cast<long long>(integer), g.values.size(), const_bytes / 1024.0,
              mp.arena_bytes / 1024.0, mp.total_bytes / 1024.0);
}

}  // namespace finch::apps
