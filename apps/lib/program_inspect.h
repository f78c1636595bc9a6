// Looking inside programs: the graph as a table (seed 002's analyzer: ops, shapes, dtypes,
// quantization parameters, parameter counts, bytes per tensor, tensor counts by dtype), as
// Graphviz text, and the per-node profile of a run.
#pragma once

#include <string>

#include "runtime/executor.h"
#include "runtime/graph.h"

namespace finch::apps {

void print_graph_table(const runtime::Graph& g, const std::string& what);
std::string graph_dot(const runtime::Graph& g);
// Per node: mean ms per run and share of the total, slowest first; then the totals per op kind.
void print_profile(const runtime::Program& p);

}  // namespace finch::apps
