// The placement plan of quantization: from a model's call trace and the options, where the integer
// program will fold, fuse and quantize (the rules are listed in quant/prepare.h). A pure function:
// it reads the trace (and the traced modules' types and weight shapes) and creates nothing;
// prepare() then attaches what it says.
#pragma once

#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "autograd/nn/nn.h"
#include "compile/call_trace.h"
#include "quant/qconfig.h"

namespace finch::quant {

struct PrepareOptions {
  QConfig qconfig;
  bool fuse = true;                // fold BN into convs and fuse activations
  bool dynamic = false;            // dynamic quantization: Linear only, inputs quantized per batch
  std::vector<std::string> skip;   // module paths kept in float (a path and everything under it)
};

// One row of the plan, for printing and tests.
struct PlanEntry {
  std::string site;   // call-site key, e.g. "layer1.0.relu#1"
  std::string type;   // module type
  std::string what;   // "weight", "input", "output", "fold <bn path>", "skip"
};

// One FakeQuantize to create. Its role says which of its module's slots it fills.
struct PlannedQuantizer {
  enum class Role { weight, input, output };
  int64_t site = 0;      // the call site it belongs to (index into the trace's sites)
  Role role = Role::output;
  std::string name;      // its name under the site's module path: "weight_fake_quant", "input_fake_quant_1"
  QSpec spec;
  std::string observer;        // a make_observer() name, unless current_range
  bool current_range = false;  // observe the tensor's range as it is now (moving average, factor 1)
  int64_t channels = 1;
  int64_t unit = -1;     // an output ending a Conv/Linear unit: that unit's site (its exact integer path)
};

// What one intercepted module does, for all of its calls.
struct ModulePlan {
  nn::BatchNorm* folded_bn = nullptr;  // a Conv2d: the BN folded into it
  bool folded_away = false;            // a BatchNorm2d folded into its conv: passes its input on
  bool fp16_weights = false;           // a Conv/Linear whose weights round through fp16
  bool propagate = false;              // MaxPool/Flatten/ReLU-as-clamp: the output keeps the input's parameters
  bool root = false;                   // the model itself
  // A Conv whose input (per call) is a zero pad of codes (the "same" padding of an even kernel):
  // the input is on that quantizer's grid already (index into QuantPlan::quantizers).
  std::map<int64_t, size_t> padded_input;
};

struct QuantPlan {
  std::vector<PlanEntry> entries;              // in decision order
  std::vector<PlannedQuantizer> quantizers;    // in creation order (their state names follow it)
  std::map<nn::Module*, ModulePlan> modules;   // every module that gets an interceptor
};

// The weight tensor of a Conv2d/Conv1d/Linear module (fails for any other).
Tensor weight_of(nn::Module& m);

// The plan for `t` (a trace of the model, compile::trace_calls) under `o`.
QuantPlan plan_quantization(const compile::CallTrace& t, const PrepareOptions& o);

}  // namespace finch::quant
