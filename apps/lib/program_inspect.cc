// finch inspect's table and Graphviz text, and finch run --profile's table.
#include "apps/lib/program_inspect.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace finch::apps {

namespace {

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
  return t + "]";
}

std::string quant_text(const runtime::Value& v) {
  if (!v.quant) return "";
  char buf[96];
  if (v.quant->scale.size() == 1)
    std::snprintf(buf, sizeof buf, "s=%.4g z=%d", double(v.quant->scale[0]), v.quant->zero_point[0]);
  else
    std::snprintf(buf, sizeof buf, "per-channel(%zu) axis %lld", v.quant->scale.size(),
                  static_cast<long long>(v.quant->axis));
  return buf;
}

int64_t bytes_of(const runtime::Value& v) {
  int64_t n = 1;
  for (int64_t d : v.shape) n *= d;
  return n * int64_t(dtype_size(v.dtype));
}

}  // namespace

void print_graph_table(const runtime::Graph& g, const std::string& what) {
  std::printf("%s: %s program of %s (%s), %zu nodes\n", what.c_str(), g.meta.value("precision", "?").c_str(),
              g.meta.value("model", "?").c_str(), g.meta.value("dataset", "?").c_str(), g.nodes.size());
  std::printf("%4s  %-28s %-20s %-22s %-5s %-26s %10s %10s\n", "#", "node", "op", "output", "dtype", "quantization",
              "params", "bytes");
  int64_t total_params = 0, total_bytes = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const runtime::Node& n = g.nodes[i];
    int64_t params = 0, bytes = 0;
    for (int32_t v : n.inputs)
      if (v >= 0 && g.values[size_t(v)].is_constant()) {
        params += g.values[size_t(v)].data.numel();
        bytes += bytes_of(g.values[size_t(v)]);
      }
    total_params += params, total_bytes += bytes;
    const runtime::Value& out = g.values[size_t(n.outputs.at(0))];
    std::printf("%4zu  %-28.28s %-20.20s %-22.22s %-5s %-26.26s %10lld %10lld\n", i, n.name.c_str(), n.op.c_str(),
                shape_text(out.shape).c_str(), dtype_name(out.dtype), quant_text(out).c_str(),
                static_cast<long long>(params), static_cast<long long>(bytes));
  }
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // constants: count, bytes
  std::map<std::string, int64_t> acts;                          // activations: count
  for (const runtime::Value& v : g.values) {
    if (v.is_constant()) {
      auto& e = by_dtype[dtype_name(v.dtype)];
      e.first += 1, e.second += bytes_of(v);
    } else {
      acts[dtype_name(v.dtype)] += 1;
    }
  }
  std::printf("parameters %lld, weight bytes %lld\n", static_cast<long long>(total_params),
              static_cast<long long>(total_bytes));
  std::printf("constant tensors by dtype:");
  for (const auto& [d, e] : by_dtype)
    std::printf(" %s %lld (%lld bytes)", d.c_str(), static_cast<long long>(e.first), static_cast<long long>(e.second));
  std::printf("\nactivation tensors by dtype:");
  for (const auto& [d, c] : acts) std::printf(" %s %lld", d.c_str(), static_cast<long long>(c));
  const runtime::MemoryPlan mp = runtime::plan_memory(g);
  std::printf("\nactivation arena: %lld bytes (%lld without reuse)\n", static_cast<long long>(mp.arena_bytes),
              static_cast<long long>(mp.total_bytes));
}

std::string graph_dot(const runtime::Graph& g) {
  std::ostringstream s;
  s << "digraph program {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n";
  std::map<int32_t, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int32_t v : g.nodes[i].outputs) producer[v] = i;
  for (int32_t v : g.inputs) s << "  v" << v << " [shape=ellipse, label=\"" << g.values[size_t(v)].name << "\"];\n";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const runtime::Node& n = g.nodes[i];
    const runtime::Value& out = g.values[size_t(n.outputs.at(0))];
    s << "  n" << i << " [label=\"" << n.op << "\\n" << n.name << "\\n" << shape_text(out.shape) << " "
      << dtype_name(out.dtype) << "\"];\n";
    for (int32_t v : n.inputs) {
      if (v < 0 || g.values[size_t(v)].is_constant()) continue;
      const auto p = producer.find(v);
      if (p != producer.end()) s << "  n" << p->second << " -> n" << i << ";\n";
      else s << "  v" << v << " -> n" << i << ";\n";
    }
  }
  for (int32_t v : g.outputs) {
    s << "  out" << v << " [shape=ellipse, label=\"" << g.values[size_t(v)].name << "\"];\n";
    if (const auto p = producer.find(v); p != producer.end()) s << "  n" << p->second << " -> out" << v << ";\n";
  }
  s << "}\n";
  return s.str();
}

void print_profile(const runtime::Program& p) {
  const auto& sec = p.node_seconds();
  const double runs = double(std::max<int64_t>(1, p.profiled_runs()));
  double total = 0;
  for (double t : sec) total += t;
  std::vector<size_t> order(sec.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sec[a] > sec[b]; });
  std::printf("profile over %lld runs: %.3f ms per run\n%-32s %-20s %10s %7s\n", static_cast<long long>(p.profiled_runs()),
              1e3 * total / runs, "node", "op", "ms/run", "share");
  for (size_t i : order) {
    const auto& n = p.graph().nodes[i];
    std::printf("%-32.32s %-20.20s %10.4f %6.1f%%\n", n.name.c_str(), n.op.c_str(), 1e3 * sec[i] / runs,
                total > 0 ? 100 * sec[i] / total : 0.0);
  }
  std::map<std::string, double> by_op;
  for (size_t i = 0; i < sec.size(); ++i) by_op[p.graph().nodes[i].op] += sec[i];
  std::printf("by op:");
  for (const auto& [op, t] : by_op) std::printf(" %s %.1f%%", op.c_str(), total > 0 ? 100 * t / total : 0.0);
  std::printf("\n");
}

}  // namespace finch::apps
