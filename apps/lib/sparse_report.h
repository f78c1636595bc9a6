// Which nodes of a loaded program run on the sparse kernels (runtime/sparse_choice.h), for
// `finch inspect` and `finch bench`, and the --sparse option both take.
#pragma once

#include <string>

#include "runtime/executor.h"

namespace CLI {
class App;
}  // namespace CLI

namespace finch::apps {

// Adds --sparse dense|measured|always (default measured) writing its name into `mode`.
void add_sparse_option(CLI::App& app, std::string& mode);
// One line per conv2d/linear/qconv2d/qlinear node: its weight's fraction of zeros and whether it
// runs sparse or dense (and why not sparse: its crossover, or a kernel that has no sparse form).
void print_sparse_nodes(const runtime::Program& p, runtime::SparseKernels mode);

}  // namespace finch::apps
