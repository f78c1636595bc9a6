// The table `finch compress` writes (report.json, report.html): one row per variant with its
// parameters, file sizes, accuracy and batch-1 latency (timed side by side with the baseline),
// seed 004's criterion L = wS·ΔS + wT·ΔT − wA·ΔA and the recommended variant.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/tensor.h"
#include "runtime/graph.h"

namespace finch::apps {

struct VariantRow {
  std::string name;
  std::string status = "ok";  // ok | failed | refused (structure_refusal) | pending
  std::string error;          // failed: the step's sentence
  int64_t failed_step = 0;    // failed: 1-based
  std::string failed_kind;
  nlohmann::json steps = nlohmann::json::array();
  int64_t parameters = 0, checkpoint_bytes = 0, program_bytes = 0;
  std::string precision;      // of the program: fp32, fp16, int8
  double accuracy = 0;        // the program's task metric (a fraction; seed 004's A), under metric_key
  std::string metric_key = "test_accuracy";  // "heldout_f1" for BERT (compress_model.h)
  nlohmann::json metrics = nlohmann::json::object();  // further metrics of the program (BERT: EM)
  double latency_ms = 0, latency_p10 = 0, latency_p90 = 0;  // batch 1, median over every timed run
  bool timed = false;
  double d_size = 0, d_time = 0, d_accuracy = 0, criterion = 0;  // relative changes vs the baseline
  bool recommended = false;
  nlohmann::json to_json() const;
  // variant.json read back (resume); the metric under `metric_key`.
  static VariantRow from_json(const nlohmann::json& j, const std::string& metric_key = "test_accuracy");
};

// The criterion's weights, "wS,wT,wA" (each finite, in [0, 1000]).
struct CriterionWeights {
  double size = 1, time = 1, accuracy = 1;
};
CriterionWeights parse_weights(const std::string& text);

// L = wS·ΔS + wT·ΔT − wA·ΔA (lower is better: smaller, faster, more accurate), with each Δ the
// relative change (x − x0) / x0. seed_sign: + wA·ΔA, the sign the seed's printed table used (it
// rewards losing accuracy; U1's 0.21 only comes out with it).
double seed004_criterion(double d_size, double d_time, double d_accuracy, const CriterionWeights& w, bool seed_sign);

// rows[0] is the baseline. Fills every timed ok row's deltas and L, and marks the ok row with the
// lowest L recommended (the baseline too, when nothing beats it). Untimed rows get no L.
void score_rows(std::vector<VariantRow>& rows, const CriterionWeights& w, bool seed_sign);

// Times the programs side by side: `rounds` rounds, each running every program `iters` times on
// its input (batch 1; `input_for` gives it from the program's graph) after 3 untimed runs, so load
// changes hit all of them alike; the median, p10 and p90 over all timed runs go into each row.
// programs[i] belongs to rows[i].
using ProgramInput = std::function<std::vector<Tensor>(const runtime::Graph&)>;
void time_side_by_side(const std::vector<std::string>& programs, std::vector<VariantRow*> rows, int64_t rounds,
                       int64_t iters, const ProgramInput& input_for);

// report.json's object, and the same as a self-contained HTML page.
nlohmann::json report_json(const std::vector<VariantRow>& rows, const nlohmann::json& header);
void write_report_html(const std::string& path, const nlohmann::json& report);

}  // namespace finch::apps
