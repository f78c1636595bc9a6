// finch compress's table: rows, seed 004's criterion, side-by-side timing, JSON and HTML (see
// compress_report.h).
#include "apps/lib/compress_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "framework/atomic_file.h"
#include "framework/error.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch::apps {

nlohmann::json VariantRow::to_json() const {
  nlohmann::json j = {{"name", name}, {"status", status}, {"steps", steps}};
  if (status == "pending") return j;  // not built yet (the report written while a run goes on)
  if (status == "failed" || status == "refused") {
    j["failed_step"] = failed_step;
    j["failed_kind"] = failed_kind;
    j["error"] = error;
    return j;
  }
  j["parameters"] = parameters;
  j["checkpoint_bytes"] = checkpoint_bytes;
  j["program_bytes"] = program_bytes;
  j["precision"] = precision;
  j[metric_key] = accuracy;
  for (auto it = metrics.begin(); it != metrics.end(); ++it) j[it.key()] = it.value();
  if (timed) {
    j["latency_ms"] = latency_ms;
    j["latency_p10_ms"] = latency_p10;
    j["latency_p90_ms"] = latency_p90;
    j["delta_size"] = d_size;
    j["delta_time"] = d_time;
    j["delta_accuracy"] = d_accuracy;
    j["L"] = criterion;
    j["recommended"] = recommended;
  }
  return j;
}

VariantRow VariantRow::from_json(const nlohmann::json& j, const std::string& metric_key) {
  VariantRow r;
  r.metric_key = metric_key;
  r.name = j.at("name").get<std::string>();
  r.status = j.at("status").get<std::string>();
  r.steps = j.at("steps");
  r.parameters = j.at("parameters").get<int64_t>();
  r.checkpoint_bytes = j.at("checkpoint_bytes").get<int64_t>();
  r.program_bytes = j.at("program_bytes").get<int64_t>();
  r.precision = j.at("precision").get<std::string>();
  r.accuracy = j.at(metric_key).get<double>();
  for (const char* k : {"heldout_exact_match"})
    if (j.contains(k)) r.metrics[k] = j[k];
  return r;
}

CriterionWeights parse_weights(const std::string& text) {
  std::vector<double> v;
  std::stringstream in(text);
  std::string part;
  bool ok = true;
  while (std::getline(in, part, ',')) {
    size_t used = 0;
    try {
      const double x = std::stod(part, &used);
      ok = ok && used == part.size() && std::isfinite(x) && x >= 0 && x <= 1000;
      v.push_back(x);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || v.size() != 3 || text.empty() || text.back() == ',')
    fail("--weights expects three numbers wS,wT,wA in [0, 1000] (such as 1,1,1), found '", text, "'");
  return {v[0], v[1], v[2]};
}

double seed004_criterion(double d_size, double d_time, double d_accuracy, const CriterionWeights& w, bool seed_sign) {
  return w.size * d_size + w.time * d_time + (seed_sign ? 1.0 : -1.0) * w.accuracy * d_accuracy;
}

void score_rows(std::vector<VariantRow>& rows, const CriterionWeights& w, bool seed_sign) {
  if (rows.empty()) return;
  const VariantRow& b = rows.front();
  auto rel = [](double x, double x0) { return x0 > 0 ? (x - x0) / x0 : 0.0; };
  VariantRow* best = nullptr;
  for (VariantRow& r : rows) {
    r.recommended = false;
    if (r.status != "ok" || !r.timed || !b.timed) continue;
    r.d_size = rel(double(r.program_bytes), double(b.program_bytes));
    r.d_time = rel(r.latency_ms, b.latency_ms);
    r.d_accuracy = rel(r.accuracy, b.accuracy);
    r.criterion = seed004_criterion(r.d_size, r.d_time, r.d_accuracy, w, seed_sign);
    if (!best || r.criterion < best->criterion) best = &r;
  }
  if (best) best->recommended = true;
}

namespace {

double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// "prune structured 0.5 → compile int8": the steps in a few words.
std::string steps_words(const nlohmann::json& steps) {
  std::string s;
  for (const auto& st : steps) {
    std::string w = st.value("step", "?");
    for (auto it = st.begin(); it != st.end(); ++it)
      if (it.key() != "step") w += " " + it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
    s += (s.empty() ? "" : " → ") + w;
  }
  return s.empty() ? "(the checkpoint as it is)" : s;
}

}  // namespace

void time_side_by_side(const std::vector<std::string>& programs, std::vector<VariantRow*> rows, int64_t rounds,
                       int64_t iters, const ProgramInput& input_for) {
  std::vector<std::unique_ptr<runtime::Program>> ps;
  std::vector<std::vector<Tensor>> inputs;
  for (const auto& p : programs) {
    runtime::Graph g = runtime::read_program(p);
    inputs.push_back(input_for(g));
    ps.push_back(std::make_unique<runtime::Program>(std::move(g), p));
  }
  std::vector<std::vector<double>> ms(ps.size());
  for (size_t i = 0; i < ps.size(); ++i)
    for (int k = 0; k < 3; ++k) ps[i]->run(inputs[i]);  // packed weights, warm caches
  for (int64_t r = 0; r < rounds; ++r)
    for (size_t i = 0; i < ps.size(); ++i)
      for (int64_t k = 0; k < iters; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        ps[i]->run(inputs[i]);
        ms[i].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
  for (size_t i = 0; i < ps.size(); ++i) {
    std::sort(ms[i].begin(), ms[i].end());
    if (ms[i].empty()) continue;
    rows[i]->latency_ms = quantile(ms[i], 0.5);
    rows[i]->latency_p10 = quantile(ms[i], 0.1);
    rows[i]->latency_p90 = quantile(ms[i], 0.9);
    rows[i]->timed = true;
  }
}

nlohmann::json report_json(const std::vector<VariantRow>& rows, const nlohmann::json& header) {
  nlohmann::json j = header;
  j["variants"] = nlohmann::json::array();
  for (const auto& r : rows) {
    j["variants"].push_back(r.to_json());
    if (r.recommended) j["recommended"] = r.name;
  }
  return j;
}

void write_report_html(const std::string& path, const nlohmann::json& report) {
  std::ostringstream h;
  const std::string title = "finch compress: " + report.value("recipe", std::string());
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>" << html_escape(title) << "</title><style>"
    << "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;"
       "padding:4px 8px;text-align:right}td.l,th.l{text-align:left}tr.rec{background:#e6f7e6}"
       "tr.failed{background:#fbe9e9}</style></head><body>\n";
  h << "<h1>" << html_escape(title) << "</h1>\n<p>" << html_escape(report.value("description", std::string()))
    << "</p>\n<p>checkpoint " << html_escape(report.value("checkpoint", std::string())) << ", dataset "
    << html_escape(report.value("dataset", std::string())) << ", " << html_escape(report.value("test_set", std::string()))
    << ", batch-1 latency with " << report.value("threads", 0) << " thread(s), timed side by side ("
    << report.value("latency_rounds", 0) << " rounds × " << report.value("latency_iters", 0)
    << " runs each).</p>\n<p>" << html_escape(report.value("criterion", std::string())) << "</p>\n";
  const std::string metric_key = report.value("metric_key", std::string("test_accuracy"));
  const std::string metric_name = report.value("metric", std::string("test accuracy"));
  std::vector<std::string> extra;  // further metrics every row has (BERT: the held-out exact match)
  std::string extra_heads;
  const nlohmann::json further = report.value("further_metrics", nlohmann::json::object());
  for (const auto& [k, name] : further.items())
    extra.push_back(k), extra_heads += "<th>" + html_escape(name.get<std::string>()) + " %</th>";
  h << "<table><tr><th class=l>variant</th><th class=l>steps</th><th>parameters</th><th>checkpoint KiB</th>"
       "<th>program KiB</th><th>precision</th><th>"
    << html_escape(metric_name) << " %</th>" << extra_heads << "<th>ms/run (p10–p90)</th><th>ΔS</th><th>ΔT</th>"
       "<th>ΔA</th><th>L</th></tr>\n";
  for (const auto& v : report.at("variants")) {
    const bool ok = v.value("status", "") == "ok";
    const bool rec = v.value("recommended", false);
    h << "<tr class=\"" << (rec ? "rec" : ok ? "" : "failed") << "\"><td class=l>" << html_escape(v.value("name", ""))
      << (rec ? " ★ recommended" : "") << "</td><td class=l>" << html_escape(steps_words(v.at("steps"))) << "</td>";
    if (!ok) {
      h << "<td class=l colspan=" << 10 + extra.size() << ">" << html_escape(v.value("status", "")) << " at step " << v.value("failed_step", 0)
        << " (" << html_escape(v.value("failed_kind", "")) << "): " << html_escape(v.value("error", "")) << "</td></tr>\n";
      continue;
    }
    h << "<td>" << v.value("parameters", int64_t(0)) << "</td><td>"
      << fmt("%.1f", double(v.value("checkpoint_bytes", int64_t(0))) / 1024) << "</td><td>"
      << fmt("%.1f", double(v.value("program_bytes", int64_t(0))) / 1024) << "</td><td>"
      << html_escape(v.value("precision", "")) << "</td><td>" << fmt("%.2f", 100 * v.value(metric_key, 0.0))
      << "</td>";
    for (const auto& k : extra) h << "<td>" << fmt("%.2f", 100 * v.value(k, 0.0)) << "</td>";
    if (v.contains("L"))
      h << "<td>" << fmt("%.3f", v["latency_ms"].get<double>()) << " (" << fmt("%.3f", v["latency_p10_ms"].get<double>())
        << "–" << fmt("%.3f", v["latency_p90_ms"].get<double>()) << ")</td><td>"
        << fmt("%+.3f", v["delta_size"].get<double>()) << "</td><td>" << fmt("%+.3f", v["delta_time"].get<double>())
        << "</td><td>" << fmt("%+.4f", v["delta_accuracy"].get<double>()) << "</td><td>"
        << fmt("%+.3f", v["L"].get<double>()) << "</td></tr>\n";
    else
      h << "<td colspan=5>not timed yet</td></tr>\n";
  }
  h << "</table>\n<p>command: <code>" << html_escape(report.value("command_line", std::string()))
    << "</code></p></body></html>\n";
  write_file_atomically(path, h.str());
}

}  // namespace finch::apps
