// The runtime's interpreter and memory plan (see executor.h); validation is in verify.cc.
#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <optional>

#include "framework/checked_math.h"
#include "framework/cpu_features.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/parallel_internal.h"
#include "runtime/op_table.h"
#include "runtime/thread_choice.h"
#include "runtime/verify.h"

namespace finch::runtime {

namespace {

constexpr int64_t kAlign = 64;

int64_t value_bytes(const Value& v) {
  const std::string what = "value '" + v.name + "'";
  return checked_mul(checked_numel(v.shape, what.c_str()), int64_t(dtype_size(v.dtype)), what.c_str());
}

// fp16 programs store weights as f16 (half the bytes); the plain float ops compute in fp32, so
// every f16 constant v with widen[v] becomes f32.
void widen_f16_constants(Graph& g, const std::vector<bool>& widen) {
  for (size_t v = 0; v < g.values.size(); ++v) {
    Value& c = g.values[v];
    if (widen[v] && c.is_constant() && c.dtype == DType::f16) {
      c.data = c.data.to(DType::f32);
      c.dtype = DType::f32;
    }
  }
}

}  // namespace

MemoryPlan plan_memory(const Graph& g) {
  MemoryPlan p;
  p.offset.assign(g.values.size(), -1);
  std::vector<int32_t> last(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int32_t v : g.nodes[i].inputs)
      if (v >= 0) last[size_t(v)] = int32_t(i);
  for (int32_t v : g.outputs) last[size_t(v)] = int32_t(g.nodes.size());  // live to the end
  // First fit over the live blocks (ordered by offset): small programs, so O(values²) is fine.
  std::map<int64_t, std::pair<int64_t, int32_t>> live;  // offset -> (bytes, value)
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int32_t v : g.nodes[i].outputs) {
      const int64_t bytes = checked_add(value_bytes(g.values[size_t(v)]), kAlign - 1, "the memory plan") / kAlign * kAlign;
      p.total_bytes = checked_add(p.total_bytes, bytes, "the memory plan");
      int64_t at = 0;
      for (const auto& [off, blk] : live) {
        if (off - at >= bytes) break;
        at = std::max(at, off + blk.first);
      }
      live[at] = {bytes, v};
      p.offset[size_t(v)] = at;
      p.arena_bytes = std::max(p.arena_bytes, checked_add(at, bytes, "the memory plan"));
    }
    p.peak_after.push_back(p.arena_bytes);
    for (auto it = live.begin(); it != live.end();)
      it = last[size_t(it->second.second)] <= int32_t(i) ? live.erase(it) : std::next(it);
  }
  return p;
}

Program::~Program() = default;
Program::Program(Program&&) noexcept = default;
Program& Program::operator=(Program&&) noexcept = default;

int64_t Program::optimized_nodes() const {
  int64_t n = 0;
  for (const auto& k : kernels_) n += k != nullptr;
  return n;
}

int64_t Program::fused_nodes() const { return std::count(fused_away_.begin(), fused_away_.end(), true); }

void Program::fuse_residual_adds(bool enabled) {
  // A qadd reading a qconv2d's output (an add reading a conv2d's) that nothing else reads (nor
  // the graph's outputs) runs as that conv's epilogue: the add over the outputs each thread has
  // just stored, inside the conv's thread region, not one more node, pass and fork/join. The add's other operand must exist when the conv runs (made by an
  // earlier node, or an input or constant): of ResNet's downsample blocks that is the later conv.
  const size_t V = g_.values.size(), N = g_.nodes.size();
  fused_add_.assign(N, -1), fused_extra_.assign(N, -1), fused_away_.assign(N, false);
  std::vector<int32_t> producer(V, -1), readers(V, 0);
  for (size_t i = 0; i < N; ++i) {
    for (int32_t v : g_.nodes[i].outputs) producer[size_t(v)] = int32_t(i);
    for (int32_t v : g_.nodes[i].inputs)
      if (v >= 0) ++readers[size_t(v)];
  }
  for (int32_t v : g_.outputs) ++readers[size_t(v)];
  for (size_t i = 0; enabled && i < N; ++i) {
    const Node& add = g_.nodes[i];
    if ((add.op != "qadd" && add.op != "add") || !kernels_[i] || add.inputs.size() != 2 || add.outputs.size() != 1)
      continue;
    const char* conv_op = add.op == "qadd" ? "qconv2d" : "conv2d";
    int best = -1;
    for (int k = 0; k < 2; ++k) {
      const int32_t v = add.inputs[size_t(k)], other = add.inputs[size_t(1 - k)];
      if (v < 0 || other < 0 || v == other || readers[size_t(v)] != 1) continue;
      const int32_t j = producer[size_t(v)];
      if (j < 0 || !kernels_[size_t(j)] || fused_add_[size_t(j)] >= 0 || g_.nodes[size_t(j)].op != conv_op) continue;
      if (sparsity_[size_t(j)] >= 0) continue;  // a sparse conv has no fused add epilogue
      if (producer[size_t(other)] >= j) continue;  // not there yet when the conv runs
      if (best < 0 || j > producer[size_t(add.inputs[size_t(best)])]) best = k;
    }
    if (best < 0) continue;
    const int32_t j = producer[size_t(add.inputs[size_t(best)])];
    std::unique_ptr<NodeKernel> k;
    try {
      k = add.op == "qadd" ? prepare_qconv2d_add(g_.nodes[size_t(j)], add, best, g_)
                           : prepare_conv2d_add(g_.nodes[size_t(j)], add, best, g_);
    } catch (const Error& e) {
      fail(what_, ": node '", add.name, "' (", add.op, ") fused into '", g_.nodes[size_t(j)].name, "' failed: ", e.what());
    }
    if (!k) continue;
    kernels_[size_t(j)] = std::move(k);  // replaces the conv's own (one packed copy of its weights)
    fused_add_[size_t(j)] = int32_t(i), fused_extra_[size_t(j)] = add.inputs[size_t(1 - best)];
    fused_away_[i] = true;
  }
}

Program::Program(Graph g, const std::string& what, ProgramOptions options) : g_(std::move(g)), what_(what) {
  max_activation_bytes_ = activation_limit(options);
  options.max_activation_bytes = max_activation_bytes_;
  // Everything about the program as stored, before any kernel sees it (runtime/verify.h).
  if (const std::vector<std::string> problems = verify(g_, what_, options); !problems.empty()) throw Error(problems[0]);
  // The optimized kernels are prepared on the program as stored, before any widening: the
  // native fp16 conv2d/linear (float_ops.cc, ARMv8.2 FP16 CPUs only) take the f16 weights as
  // they are. Only those two ops can: an f16 constant that any other op reads is widened first,
  // so every other kernel's prepare sees f32 as it always has. Where the CPU has no fp16
  // arithmetic (x86, a Pi 4) conv2d/linear weights are widened first too, so those nodes run on
  // the packed fp32 kernels exactly as the fp32 program with the same (f16-rounded) weights does;
  // left f16, they fell back to the unpacked ops/ path, 2.8× slower than fp32 on ResNet-20.
  const bool native_fp16 = !options.reference_kernels && cpu_has_arm_fp16();
  std::vector<bool> widen(g_.values.size(), false);
  for (const Node& n : g_.nodes)
    if (!native_fp16 || (n.op != "conv2d" && n.op != "linear"))
      for (int32_t v : n.inputs)
        if (v >= 0) widen[size_t(v)] = true;
  widen_f16_constants(g_, widen);
  kernels_.resize(g_.nodes.size());
  sparsity_.assign(g_.nodes.size(), -1.0);
  if (!options.reference_kernels)
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node& n = g_.nodes[i];
      const OpImpl* impl = find_op(n.op);
      if (!impl->prepare) continue;
      try {
        kernels_[i] = prepare_sparse(n, g_, options.sparse, &sparsity_[i]);  // null: dense
        if (!kernels_[i]) kernels_[i] = impl->prepare(n, g_), sparsity_[i] = -1.0;
      } catch (const Error& e) {
        fail(what_, ": node '", n.name, "' (", n.op, ") failed: ", e.what());
      }
    }
  // The f16 constants left are widened too, unless every node reading them runs on a prepared
  // kernel (then no f32 copy is kept: the native fp16 kernels read the f16 data itself).
  std::vector<bool> read(g_.values.size(), false);
  widen.assign(g_.values.size(), false);
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    for (int32_t v : g_.nodes[i].inputs)
      if (v >= 0) read[size_t(v)] = true, widen[size_t(v)] = widen[size_t(v)] || !kernels_[i];
  for (size_t v = 0; v < g_.values.size(); ++v) widen[v] = widen[v] || !read[v];
  for (int32_t v : g_.outputs) widen[size_t(v)] = true;
  widen_f16_constants(g_, widen);
  fuse_residual_adds(options.fuse);
  if (options.choose_threads) {
    std::vector<bool> choosable(g_.nodes.size());
    for (size_t i = 0; i < choosable.size(); ++i) choosable[i] = kernels_[i] != nullptr;
    choice_ = std::make_unique<ThreadChoice>(std::move(choosable));
  }
  last_use_.assign(g_.values.size(), -1);
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    for (int32_t v : g_.nodes[i].inputs)
      if (v >= 0) last_use_[size_t(v)] = int32_t(i);
  seconds_.assign(g_.nodes.size(), 0.0);
  plan_ = plan_memory(g_);
  // Dry run at the declared shapes: every node must accept its inputs and produce the declared
  // shape and dtype (a program whose description and weights disagree fails here, not later).
  std::vector<Tensor> ins;
  // A recurrent op's lengths must be in 1..T: those inputs are ones, every other one zeros. An
  // integer input that reaches a lengths only through add_scalar (a model whose valid convs
  // shorten the sequence) holds the first input's full length (its last axis) instead.
  std::vector<bool> is_lengths(g_.values.size(), false);
  for (const Node& n : g_.nodes)
    if (is_recurrent_op(n.op) && n.inputs.size() > 1 && n.inputs[1] >= 0) is_lengths[size_t(n.inputs[1])] = true;
  const std::vector<bool> lengths = sequence_length_values(g_);
  const Shape first = g_.inputs.empty() ? Shape{} : g_.values[size_t(g_.inputs[0])].shape;
  for (int32_t v : g_.inputs) {
    const Value& d = g_.values[size_t(v)];
    if (lengths[size_t(v)] && !is_lengths[size_t(v)] && v != g_.inputs[0] && !first.empty())
      ins.push_back(full(d.shape, double(first.back()), d.dtype));
    else
      ins.push_back(is_lengths[size_t(v)] ? ones(d.shape, d.dtype) : zeros(d.shape, d.dtype));
  }
  const std::vector<Tensor> all = execute(ins, true);
  for (const Node& n : g_.nodes)
    for (int32_t v : n.outputs) {
      const Value& d = g_.values[size_t(v)];
      if (all[size_t(v)].shape() != d.shape || all[size_t(v)].dtype() != d.dtype)
        fail(what_, ": node '", n.name, "' (", n.op, ") computes ", shape_str(all[size_t(v)].shape()), " ",
             dtype_name(all[size_t(v)].dtype()), " for value '", d.name, "', but the program declares ",
             shape_str(d.shape), " ", dtype_name(d.dtype));
    }
}

std::vector<Tensor> Program::execute(const std::vector<Tensor>& inputs, bool keep_all) {
  if (inputs.size() != g_.inputs.size())
    fail(what_, ": expected ", g_.inputs.size(), " inputs, got ", inputs.size());
  const bool var_seq = g_.meta.is_object() && g_.meta.value("variable_sequence", false);
  std::vector<Tensor> vals(g_.values.size());
  for (size_t i = 0; i < g_.values.size(); ++i)
    if (g_.values[i].is_constant()) vals[i] = g_.values[i].data;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& d = g_.values[size_t(g_.inputs[i])];
    const Tensor& x = inputs[i];
    bool ok = x.defined() && x.dtype() == d.dtype && x.dim() == int64_t(d.shape.size()) && x.dim() > 0;
    // A variable-sequence program (a BERT encoder) takes any length 1..declared along dim 1; its
    // memory plan is for the declared (longest) one, so the activation limit still holds.
    for (int64_t k = 1; ok && k < x.dim(); ++k)
      ok = k == 1 && var_seq ? x.size(1) >= 1 && x.size(1) <= d.shape[1] : x.size(k) == d.shape[size_t(k)];
    if (!ok)
      fail(what_, ": input '", d.name, "' must be ", dtype_name(d.dtype), " of shape [N", [&] {
        std::string s;
        for (size_t k = 1; k < d.shape.size(); ++k)
          s += ", " + (k == 1 && var_seq ? "1.." : std::string()) + std::to_string(d.shape[k]);
        return s;
      }(), "], got ", x.defined() ? dtype_name(x.dtype()) + std::string(" ") + shape_str(x.shape()) : "nothing");
    if (i == 0) check_batch(x.size(0));  // before any node allocates its batch-sized output
    vals[size_t(g_.inputs[i])] = x.contiguous();
  }
  // The per-node thread choice (thread_choice.h), by one application thread at a time.
  std::unique_lock<std::mutex> choosing;
  if (choice_ && !keep_all) choosing = std::unique_lock(choice_->mutex(), std::try_to_lock);
  ThreadChoice* const choice = choosing.owns_lock() ? choice_.get() : nullptr;
  if (choice) choice->begin_run(get_num_threads(), inputs[0].size(0));
  const auto run_t0 = std::chrono::steady_clock::now();
  // The pool's workers stay awake for the run's small layers (framework/parallel.h), unless every
  // node that splits runs on this thread alone this time.
  std::optional<HotScope> hot;
  if (!choice || choice->any_split()) hot.emplace();
  std::vector<Tensor> in;
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    const Node& n = g_.nodes[i];
    const bool fused = !keep_all && fused_add_[i] >= 0;
    if (keep_all || !fused_away_[i]) {  // a fused-away node was computed by its conv
      in.clear();
      for (int32_t v : n.inputs) in.push_back(v >= 0 ? vals[size_t(v)] : Tensor());
      if (fused) in.push_back(vals[size_t(fused_extra_[i])]);
      const bool measure = choice && choice->measuring();
      const int64_t regions = measure ? detail::thread_pool_regions() : 0;
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<Tensor> out;
      try {
        std::optional<ThreadLimit> alone;
        if (choice && choice->cap(i) > 0) alone.emplace(choice->cap(i));
        out = kernels_[i] ? kernels_[i]->run(in) : find_op(n.op)->fn(n, in, g_);
      } catch (const Error& e) {
        fail(what_, ": node '", n.name, "' (", n.op, fused ? ", with its fused add" : "", ") failed: ", e.what());
      }
      if (profiling_ || measure) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (profiling_) seconds_[i] += s;
        if (measure) choice->record(i, s, detail::thread_pool_regions() - regions);
      }
      const std::vector<int32_t>& outs = fused ? g_.nodes[size_t(fused_add_[i])].outputs : n.outputs;
      if (out.size() != outs.size())
        fail(what_, ": node '", n.name, "' (", n.op, ") produced ", out.size(), " outputs, expected ", outs.size());
      for (size_t k = 0; k < out.size(); ++k) vals[size_t(outs[k])] = std::move(out[k]);
    }
    if (!keep_all)  // release what no later node reads (graph outputs stay)
      for (int32_t v : n.inputs)
        if (v >= 0 && last_use_[size_t(v)] == int32_t(i) && !g_.values[size_t(v)].is_constant()) {
          bool is_output = false;
          for (int32_t o : g_.outputs) is_output = is_output || o == v;
          if (!is_output) vals[size_t(v)] = Tensor();
        }
  }
  if (profiling_) ++runs_;
  if (choice)
    choice->end_run(choice->timing_whole()
                        ? std::chrono::duration<double>(std::chrono::steady_clock::now() - run_t0).count()
                        : -1.0);
  return vals;
}

void Program::check_batch(int64_t batch) const {
  // The plan is for the declared shapes, whose dim 0 (a placeholder, 1 from capture) may be more.
  const Shape& s = g_.values[size_t(g_.inputs[0])].shape;
  check_batch_memory(plan_, batch, max_activation_bytes_, what_, s.empty() ? 1 : std::max<int64_t>(1, s[0]));
}

std::vector<Tensor> Program::run(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> vals = execute(inputs, false);
  std::vector<Tensor> out;
  for (int32_t v : g_.outputs) out.push_back(vals[size_t(v)]);
  return out;
}

std::vector<Tensor> Program::run_all(const std::vector<Tensor>& inputs) { return execute(inputs, true); }

}  // namespace finch::runtime
