// The sparse-kernel report of apps/lib/sparse_report.h.
#include "apps/lib/sparse_report.h"

#include <CLI/CLI.hpp>

#include <cstdio>

#include "ops/op_attrs.h"

namespace finch::apps {

void add_sparse_option(CLI::App& app, std::string& mode) {
  app.add_option("--sparse", mode,
                 "sparse kernels for pruned conv/linear layers: measured (where the weight's sparsity reaches the "
                 "crossover bench_sparse measured), dense (never; the A/B baseline) or always")
      ->check(CLI::IsMember({"dense", "measured", "always"}))
      ->capture_default_str();
}

namespace {

// The weight's fraction of zeros (f32/f16/i8 constants), or -1 when it is not a constant.
double zeros_of(const runtime::Graph& g, const runtime::Node& n) {
  if (n.inputs.size() < 2 || n.inputs[1] < 0) return -1;
  const runtime::Value& w = g.values[size_t(n.inputs[1])];
  if (!w.is_constant() || w.data.numel() == 0) return -1;
  const Tensor f = w.data.to(DType::f32).contiguous();
  int64_t z = 0;
  for (int64_t i = 0; i < f.numel(); ++i) z += f.data<float>()[i] == 0.0f;
  return double(z) / double(f.numel());
}

runtime::SparseShape shape_of(const runtime::Graph& g, const runtime::Node& n) {
  const Tensor& w = g.values[size_t(n.inputs[1])].data;
  if (n.op == "conv2d" || n.op == "qconv2d") {
    const Conv2dParams p = ops::conv2d_from_json(n.attrs, n.name);
    const bool direct = w.dim() == 4 && w.size(2) == 1 && w.size(3) == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
    return direct ? runtime::SparseShape::conv1x1 : runtime::SparseShape::conv;
  }
  const int64_t K = w.dim() == 2 ? w.size(1) : 1;
  const int64_t rows = K > 0 ? shape_numel(g.values[size_t(n.inputs[0])].shape) / K : 0;
  return rows >= 8 ? runtime::SparseShape::linear : runtime::SparseShape::linear_row;
}

}  // namespace

void print_sparse_nodes(const runtime::Program& p, runtime::SparseKernels mode) {
  const runtime::Graph& g = p.graph();
  int64_t layers = 0, sparse = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const runtime::Node& n = g.nodes[i];
    if (n.op != "conv2d" && n.op != "linear" && n.op != "qconv2d" && n.op != "qlinear") continue;
    ++layers;
    const double z = zeros_of(g, n), s = p.sparse_nodes()[i];
    sparse += s >= 0;
    if (z < 0) continue;
    const bool int8 = n.op[0] == 'q';
    const runtime::SparseShape sh = shape_of(g, n);
    const double c = runtime::sparse_crossover(int8, sh);
    char why[96];
    if (s >= 0)
      std::snprintf(why, sizeof why, "sparse");
    else if (mode == runtime::SparseKernels::dense)
      std::snprintf(why, sizeof why, "dense (--sparse dense)");
    else if (mode == runtime::SparseKernels::measured && z < c)
      std::snprintf(why, sizeof why, c > 1 ? "dense (%s %s: sparse never paid)" : "dense (%s %s crossover %.0f%%)",
                    int8 ? "int8" : "fp32", runtime::sparse_shape_name(sh), 100 * c);
    else
      std::snprintf(why, sizeof why, "dense (no sparse kernel for this node)");
    std::printf("  %-32.32s %-8s %-10s weights %5.1f%% zero  %s\n", n.name.c_str(), n.op.c_str(),
                runtime::sparse_shape_name(sh), 100 * z, why);
  }
  std::printf("sparse kernels (--sparse %s): %lld of %lld conv/linear nodes\n", runtime::sparse_kernels_name(mode),
              static_cast<long long>(sparse), static_cast<long long>(layers));
}

}  // namespace finch::apps
