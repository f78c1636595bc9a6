// finch verify on series and text programs (series_quantize_cmd.h): the simulated model rebuilt
// from FILE.finch.sim.safetensors (weights, the prepared convs' and head's state, every LSTM's and
// GRU's observed ranges) and compared with the program on every test logit.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "apps/lib/sequence_program.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_train.h"
#include "compress/edits.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "quant/qconfig.h"
#include "runtime/program_file.h"

namespace finch::apps {

int run_sequence_verify(const ProgramOptions& o, SeriesOptions s) {
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  runtime::Graph g = runtime::read_program(o.program);
  const nlohmann::json& meta = g.meta;
  if (!meta.contains("quantization") || meta["quantization"].value("mode", "") != "static")
    fail(o.program, " is a ", meta.value("precision", "float"),
         " program; finch verify compares a static int8 "
         "program with its simulated model");
  const nlohmann::json& sd = meta.at("sequence_data");
  std::string data_dir = o.data.data_dir;
  if (s.train_file.empty() && data_dir.empty())  // the data (and flags) the program was calibrated on
    data_dir = recorded_sequence_data(sd, s);
  const SafetensorsFile f = load_safetensors(o.data.checkpoint);
  s.checkpoint = o.data.checkpoint;
  if (!f.metadata.count("finch_simulation"))
    fail(o.data.checkpoint,
         " is not a simulated model; expected the FILE.finch.sim.safetensors that finch quantize "
         "writes beside a series program");
  const SequenceData d = load_sequence_data(s, f.metadata, data_dir, o.data.checkpoint);
  const models::SeriesSpec spec = checkpoint_spec(f, s, d);
  const int64_t T = meta.at("steps").get<int64_t>();
  nn::ModulePtr model = models::create_series(spec, nullptr);
  if (const auto e = f.metadata.find(compress::kEditsKey); e != f.metadata.end())  // a pruned model
    compress::apply_edits(*model, e->second, o.data.checkpoint);
  nn::StateDict weights, quant_state;
  std::vector<std::pair<std::string, Tensor>> ranges;
  for (const auto& [name, t] : f.tensors) {
    if (name.rfind("quant.", 0) == 0)
      quant_state.insert(name.substr(6), t);
    else if (name.rfind("qat.", 0) == 0)
      ranges.emplace_back(name.substr(4), t);
    else
      weights.insert(name, t);
  }
  model->load_state_dict(weights);
  const nlohmann::json& qm = meta.at("quantization");
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(qm.at("qconfig").get<std::string>());
  po.qconfig.activation_observer = qm.value("observer", "minmax");
  po.fuse = qm.at("fuse").get<bool>();
  po.skip = qm.at("skip").get<std::vector<std::string>>();
  const data::Batch b = first_batch(d.test, o.batch_size);
  const auto [ex, ex_len] = padded_to(b.images.slice(0, 0, 1).contiguous(), Tensor(), T);
  Simulation sim = prepare_simulation(*model, ex, po);
  sim.q->state->load_state_dict(quant_state);
  quant::load_qat_lstm_state(sim.lstms, ranges, o.data.checkpoint);
  quant::load_qat_gru_state(sim.grus, ranges, o.data.checkpoint);
  freeze(sim);
  runtime::ProgramOptions ro;
  ro.reference_kernels = o.reference_kernels;
  runtime::Program p(std::move(g), o.program, ro);
  train::EvalConfig ec;
  ec.batch_size = o.batch_size;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.target_std = d.target_std;
  ec.keep_logits = !d.regression;
  const train::EvalResult rp = train::evaluate(program_forward(p, T), d.test, ec);
  const train::EvalResult rs = train::evaluate(*model, d.test, ec);
  int64_t differing = 0, compared = 0, same = 0;
  double max_diff = 0;
  for (size_t i = 0; i < rs.logits.size() && i < rp.logits.size(); ++i) {
    for (size_t k = 0; k < rs.logits[i].size() && k < rp.logits[i].size(); ++k) {
      const double diff = std::fabs(double(rs.logits[i][k]) - rp.logits[i][k]);
      differing += diff != 0, max_diff = std::max(max_diff, diff), ++compared;
    }
    same += rs.predicted[i] == rp.predicted[i];
  }
  if (d.regression) {  // no logits kept: compare the scores
    compared = 1, differing = rs.mse != rp.mse, same = rp.count;
  }
  const bool ok = differing == 0 && compared > 0 && same == rp.count;
  std::printf(
      "%s: %lld test samples, %lld output values compared, %lld differ (max |diff| %g); predictions agree "
      "on %lld/%lld; %s program %.4f, simulated %.4f -> %s\n",
      o.program.c_str(), static_cast<long long>(rp.count), static_cast<long long>(compared),
      static_cast<long long>(differing), max_diff, static_cast<long long>(same), static_cast<long long>(rp.count),
      d.regression ? "mse" : "accuracy", metric_of(rp), metric_of(rs), ok ? "AGREE" : "DIFFER");
  if (!o.json.empty())
    write_json_file(o.json, {{"program", o.program},
                             {"samples", rp.count},
                             {"agree", ok},
                             {"compared", compared},
                             {"differ", differing},
                             {"max_abs_diff", max_diff},
                             {"same_predictions", same}});
  return ok ? 0 : 1;
}

}  // namespace finch::apps
