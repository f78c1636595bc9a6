// nn::Module: the base of every layer. It owns named parameters, buffers and child modules in
// registration order, and gives them PyTorch's dotted names ("layer1.0.conv1.weight") for
// state_dict()/load_state_dict(), so checkpoints move between finch and PyTorch unchanged.
//
// A layer registers its tensors in its constructor and keeps a handle to them as members:
//   struct Affine : Module {
//     Tensor scale;
//     Affine() { scale = register_parameter("scale", ones({4})); }
//     Tensor forward_impl(const Tensor& x) override { return finch::mul(x, scale); }
//   };
// Tensor handles share their storage, so `scale` and the registered entry are one tensor;
// load_state_dict() and the optimizers update that tensor in place and the handles stay valid.
// Modules live in std::shared_ptr (children are shared, like submodules in PyTorch).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/nn/state_dict.h"
#include "framework/tensor.h"

namespace finch::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;

// Forward interception, for quant/: a model's forward() calls its children through typed
// members (`conv1->forward(x)`), so a pass cannot swap a child the way PyTorch's setattr does.
// Instead every call goes through Module::forward(), which hands it to the module's interceptor
// when one is set: it may add fake-quant around the call, or compute something else in its
// place (conv with BN folded in), while the model's code and state_dict names stay as they are.
class ForwardInterceptor {
 public:
  virtual ~ForwardInterceptor() = default;
  // Runs instead of m.forward_impl(x) (call it to get the module's own result). `call` numbers
  // m's calls within the current outermost forward (0, 1, ...): a module used twice, like
  // ResNet's shared relu, gets one call site each.
  virtual Tensor run(Module& m, const Tensor& x, int64_t call) = 0;
};

// Sees every module call on this thread while installed (graph capture, fusion analysis):
// enter() before the call with its input, exit() after it with its output.
class CallTracer {
 public:
  virtual ~CallTracer() = default;
  virtual void enter(Module& m, const Tensor& x, int64_t call) = 0;
  virtual void exit(Module& m, const Tensor& y, int64_t call) = 0;
};

// Installs `t` as this thread's tracer for the guard's lifetime (tracers do not nest).
class TraceCalls {
 public:
  explicit TraceCalls(CallTracer* t);
  ~TraceCalls();
  TraceCalls(const TraceCalls&) = delete;
  TraceCalls& operator=(const TraceCalls&) = delete;

 private:
  CallTracer* previous_;
};
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict() left out (strict mode throws instead).
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the module, not in the dict
  std::vector<std::string> unexpected_keys;  // in the dict, not in the module
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The layer's name in messages ("Linear", "Conv2d", ...).
  virtual std::string type_name() const { return "Module"; }
  // Single-input forward: runs forward_impl(), through the interceptor and tracer when present.
  // Modules with other signatures define their own methods and leave this one.
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  // What the layer computes; layers override this one.
  virtual Tensor forward_impl(const Tensor& x);

  void set_interceptor(std::shared_ptr<ForwardInterceptor> i) { interceptor_ = std::move(i); }
  const std::shared_ptr<ForwardInterceptor>& interceptor() const { return interceptor_; }

  // --- registration (names: non-empty, no '.', unique within this module) ---
  // Marks `t` as requiring grad (when defined) and returns it. An undefined tensor registers
  // an absent parameter (like torch's `register_parameter("bias", None)`): it is skipped by
  // parameters() and state_dict().
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  // Buffers are state that is not trained (running statistics, counters). Non-persistent
  // buffers stay out of state_dict().
  Tensor register_buffer(const std::string& name, Tensor t, bool persistent = true);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // --- traversal (recursive, registration order, PyTorch names) ---
  // Shared parameters are listed once (under their first name), as torch does.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  const std::vector<std::pair<std::string, ModulePtr>>& named_children() const { return children_; }
  // Swaps the child registered as `name` for `m`, keeping its name and place in the order (torch's
  // setattr on a submodule; compress/ uses it to put a factorized layer where a dense one was).
  // A parent that calls the child through a typed member (`fc->forward(x)`) still holds the old
  // one, so the old one hands every forward() to `m` before any tracer or interceptor sees it:
  // traces, captures and state dicts see only `m`. Returns the old child.
  ModulePtr replace_child(const std::string& name, ModulePtr m);
  // This module (name "") and every descendant, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules();

  // --- checkpoints ---
  // Parameters then persistent buffers of each module, depth first: torch's order and names.
  // The tensors are shared with the module (detached), not copies.
  StateDict state_dict() const;
  // Copies every entry of `dict` into the matching tensor in place (converting between
  // floating dtypes like torch). A shape mismatch, or a float/integer mismatch, always throws,
  // listing every offending name; strict mode also throws on missing or unexpected keys, all
  // reported in one message. Non-strict mode returns them instead.
  LoadResult load_state_dict(const StateDict& dict, bool strict = true);

  // --- modes and housekeeping ---
  virtual void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Drops every parameter's gradient (torch's zero_grad(set_to_none=True)).
  void zero_grad();
  // Converts floating parameters and buffers to `dtype` in place: the tensors keep their
  // identity, so handles held by layers and optimizers stay valid.
  void to(DType dtype);
  int64_t num_parameters() const;

 protected:
  bool training_ = true;

 private:
  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, ModulePtr m);
  void collect_parameters(const std::string& prefix, NamedTensors& out) const;
  void collect_buffers(const std::string& prefix, NamedTensors& out, bool persistent_only) const;
  void collect_state(const std::string& prefix, StateDict& out) const;

  NamedTensors params_;
  std::vector<Buffer> buffers_;
  std::shared_ptr<ForwardInterceptor> interceptor_;
  ModulePtr replaced_by_;  // set by the parent's replace_child(): forward() goes there
  uint64_t call_pass_ = 0;  // the outermost forward this module was last called in
  int64_t calls_ = 0;       // calls within that pass
  std::vector<std::pair<std::string, ModulePtr>> children_;
};

}  // namespace finch::nn
