// The runtime: a loaded program (validated graph) that runs inputs through its nodes in order,
// releasing each intermediate as soon as its last reader has run, with optional per-node timing.
// Depends only on framework/, ops/ and kernels (never on autograd or the training code).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/graph.h"
#include "runtime/sparse_choice.h"

namespace finch::runtime {

// Where each intermediate value would live in one arena, for the shapes the program declares
// (offsets 64-byte aligned; values whose lifetimes do not overlap share bytes). Byte counts are
// overflow-checked: a value too large for 64 bits fails with a sentence naming it.
struct MemoryPlan {
  std::vector<int64_t> offset;  // per value; -1 for constants and graph inputs
  int64_t arena_bytes = 0;      // the arena's size with reuse
  int64_t total_bytes = 0;      // the sum of all intermediates (no reuse), for comparison
  std::vector<int64_t> peak_after;  // per node: arena_bytes once it and those before it have run
};
MemoryPlan plan_memory(const Graph& g);

class NodeKernel;
class ThreadChoice;

struct ProgramOptions {
  // true: every node runs on its plain implementation (the scalar reference kernels for the
  // integer ops, fp32 compute for the float ops) instead of the optimized kernels prepared at
  // load. The two give identical results, except fp16 programs on an ARMv8.2 FP16 CPU, whose
  // native fp16 conv2d/linear differ from the fp32 compute by fp16 rounding. This is for
  // cross-checks and for measuring what the optimized kernels gain.
  bool reference_kernels = false;
  // The most bytes of activations (the memory plan's arena) one batch image may need; a program
  // over it is refused at load naming the node, and a run whose batch times the arena is over it
  // is refused before anything is allocated. 0: FINCH_MAX_ACTIVATION_BYTES when set, else 4 GiB
  // (runtime/verify.h). A tiny hostile file must not be able to ask for gigabytes.
  int64_t max_activation_bytes = 0;
  // false: run() runs every node as stored, as run_all() does, instead of fusing a qadd into the
  // qconv2d it reads (the results are identical; for measuring what the fusion gains).
  bool fuse = true;
  // Sparse kernels (kernels/sparse_conv.h) for conv2d/linear/qconv2d/qlinear nodes with pruned
  // weights (runtime/sparse_choice.h): measured, where the weight's sparsity reaches the crossover
  // bench/bench_sparse.cc measured; dense, never (the A/B baseline); always, every node that can.
  // int8 codes are identical either way, fp32 results within float rounding. A sparse conv runs
  // without the fused residual add (its add runs as its own node).
  SparseKernels sparse = SparseKernels::measured;
  // true: run() learns per node whether splitting it over the pool's threads pays on this
  // machine, from the program's own runs, and runs it on the calling thread alone where it does
  // not (runtime/thread_choice.h); false: every node splits as the pool's cost model plans. The
  // results are identical either way.
  bool choose_threads = true;
};

class Program {
 public:
  // Validates `g` with verify() (runtime/verify.h: structure, attributes, shapes, accumulators,
  // finite constants, metadata, activation memory; the first problem is thrown), then a dry run
  // at the declared input shapes must produce exactly the declared shapes and dtypes. `what` names
  // the program in error messages (its file). The optimized kernels are prepared (weights
  // packed) once, on the constants as stored; then f16 weight constants are widened to f32 for
  // the plain fp32 ops, except those only prepared kernels read. On a CPU with ARMv8.2 FP16
  // arithmetic (finch::cpu_has_arm_fp16(), a Pi 5) an fp16 program's conv2d/linear nodes run
  // natively in fp16 (activations rounded to f16, f16 accumulation: results differ from the fp32
  // compute by fp16 rounding, kernels/f16_conv.h); FINCH_DISABLE_FP16=1 or
  // reference_kernels gives the fp32 compute every other CPU does.
  explicit Program(Graph g, const std::string& what = "program", ProgramOptions options = {});
  ~Program();
  Program(Program&&) noexcept;
  Program& operator=(Program&&) noexcept;

  const Graph& graph() const { return g_; }
  const MemoryPlan& memory() const { return plan_; }
  // The activation limit this program was loaded with (ProgramOptions::max_activation_bytes).
  int64_t max_activation_bytes() const { return max_activation_bytes_; }
  // Fails with a sentence unless a run with a batch of `batch` fits the activation limit (what
  // run() checks first; callers that build a large input can ask before allocating it).
  void check_batch(int64_t batch) const;
  // How many nodes run on an optimized kernel prepared at load (the rest on their plain fn).
  int64_t optimized_nodes() const;
  // How many nodes run() skips because an earlier node's fused kernel computes them (a qadd
  // fused into the qconv2d it reads); run_all() runs every node as stored.
  int64_t fused_nodes() const;
  // Per node: the weight's fraction of zeros where the node runs on a sparse kernel, else -1.
  const std::vector<double>& sparse_nodes() const { return sparsity_; }

  // Runs the program. Inputs must have the declared dtypes and shapes except dim 0 (the batch,
  // at least 1, and small enough that batch × the arena stays within the activation limit).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  Tensor run(const Tensor& x) { return run(std::vector<Tensor>{x})[0]; }
  // Runs and also returns every value the nodes produced (index = value index): for
  // layer-by-layer comparisons (finch verify).
  std::vector<Tensor> run_all(const std::vector<Tensor>& inputs);

  // The per-node thread choice (ProgramOptions::choose_threads; null when off).
  const ThreadChoice* thread_choice() const { return choice_.get(); }
  // Per-node wall time summed over run() calls while profiling is on.
  void set_profiling(bool on) { profiling_ = on; }
  const std::vector<double>& node_seconds() const { return seconds_; }
  int64_t profiled_runs() const { return runs_; }

 private:
  Graph g_;
  std::string what_;
  MemoryPlan plan_;
  int64_t max_activation_bytes_ = 0;
  std::vector<int32_t> last_use_;  // per value: the last node reading it (-1: none)
  std::vector<std::unique_ptr<NodeKernel>> kernels_;  // per node; null: the op's plain fn
  // Load-time fusion (op_table.h prepare_qconv2d_add), used by run() only: where fused_add_[i]
  // >= 0, kernels_[i] is the fused kernel, which given value fused_extra_[i] after node i's inputs
  // computes node i and node fused_add_[i] at once (that node is then skipped; its own inputs
  // are still released after it), and given node i's inputs alone (run_all) node i as stored.
  std::vector<int32_t> fused_add_, fused_extra_;
  std::vector<bool> fused_away_;
  std::vector<double> sparsity_;  // sparse_nodes()
  std::unique_ptr<ThreadChoice> choice_;
  bool profiling_ = false;
  std::vector<double> seconds_;
  int64_t runs_ = 0;

  std::vector<Tensor> execute(const std::vector<Tensor>& inputs, bool keep_all);
  void fuse_residual_adds(bool enabled);
};

}  // namespace finch::runtime
