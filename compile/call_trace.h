// Call traces: which modules a model's forward calls, in what nesting, and which call's output
// feeds which call's input — recorded by running the forward once on an example input. The
// quantization passes (fusion, fake-quant placement) read the model's structure from here, so
// they work on any model built from nn modules, without a per-model list of names.
#pragma once

#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "framework/tensor.h"

namespace finch::compile {

// One call of one module.
struct CallSite {
  nn::Module* module = nullptr;
  std::string path;   // the module's named_modules() path: "layer1.0.conv1" ("" for the root)
  std::string type;   // type_name(): "Conv2d", "BatchNorm2d", "ReLU", ...
  int64_t call = 0;   // the module's call index within the forward (a shared ReLU: 0, 1, ...)
  int64_t parent = -1;
  std::vector<int64_t> children;  // direct child calls, in call order
  // Kept alive so tensor identities stay unique while the trace is analysed.
  Tensor input, output;
  bool leaf() const { return children.empty(); }
  // "layer1.0.relu#1": the call site's name in tables and state dicts ('#0' is left out).
  std::string key() const;
};

struct CallTrace {
  std::vector<CallSite> sites;       // in the order the calls started
  std::vector<int64_t> exit_order;   // site indices in the order the calls returned
  // The leaf call that produced t (same tensor object; identity-like leaves that return their
  // input are skipped to what fed them), or -1 (the model input, or a functional op's output).
  int64_t producer(const Tensor& t) const;
  // The leaf calls that took t as their input.
  std::vector<int64_t> consumers(const Tensor& t) const;
  // How many calls module m got in this trace.
  int64_t calls_of(const nn::Module* m) const;
  // Functional zero pads (constant 0, e.g. the "same" padding of an even-kernel Conv1d): a zero
  // pad of int8 codes stays on their grid, so quantization planning passes codes through it.
  struct ZeroPad {
    Tensor input, output;
  };
  std::vector<ZeroPad> zero_pads;
  // The tensor that t is a zero pad of (same object), or null.
  const Tensor* zero_pad_source(const Tensor& t) const;
};

// Runs model.forward(example) in eval mode without gradients (so no running statistic moves),
// restores the model's train/eval mode, and returns the calls. Fails if the model is not built
// of modules reachable through named_modules().
CallTrace trace_calls(nn::Module& model, const Tensor& example);

}  // namespace finch::compile
