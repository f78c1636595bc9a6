// Preparing a model for quantization, without touching its code: trace its module calls once,
// decide where the integer program will quantize (fusion, fake-quant placement: quant/plan.h,
// plan_quantization), and attach forward interceptors that add observers and fake quantization
// there (prepare.cc). The same plan serves post-training quantization (observe → calibrate →
// convert) and QAT (fake-quant while training).
//
// Placement, read from the call trace (call_trace.h), so it works on any nn model:
//   - Conv2d followed only by BatchNorm2d (each called once) is folded: in QAT the BN is
//     simulated as in Jacob et al. 2018 §3.2 (weights scaled by γ/σ before fake-quant; batch
//     statistics while training until freeze_bn_stats()), in eval and after convert it is an
//     exact fold w·γ/σ, β + (b − μ)·γ/σ.
//   - Conv/Linear (+ folded BN) followed only by ReLU/ReLU6 is one unit: one requantization, after
//     the activation. A ReLU fed by an already quantized tensor only clamps (no requantization); fed
//     by a float tensor (after a residual add) it quantizes its output: add + ReLU fused.
//   - Conv/Linear inputs that are not quantized get an input fake-quant (the model input, and
//     tensors made by functional ops such as a global average pool in the model's forward).
//   - A module whose output comes from a functional op (a residual add inside a block) gets an
//     output fake-quant; pools that average and any other op that computes new values too.
//     MaxPool, Flatten, Dropout and Identity pass the quantization through.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "compile/call_trace.h"
#include "quant/fake_quantize_module.h"
#include "quant/plan.h"
#include "quant/qconfig.h"

namespace finch::quant {

// The prepared model: interceptors are attached to `model`'s modules and all the FakeQuantize
// modules live in `state` with PyTorch-like names ("layer1.0.conv1.weight_fake_quant.scale",
// "layer1.0.relu.activation_post_process_1.zero_point"), so a checkpoint is
// model.state_dict() plus state->state_dict().
class QuantizedModel {
 public:
  nn::Module& model;
  std::shared_ptr<nn::Module> state;
  std::vector<PlanEntry> plan;
  PrepareOptions options;

  explicit QuantizedModel(nn::Module& m) : model(m), state(std::make_shared<nn::Module>()) {}
  ~QuantizedModel();
  QuantizedModel(const QuantizedModel&) = delete;
  QuantizedModel& operator=(const QuantizedModel&) = delete;

  // Every FakeQuantize, by state name ("layer1.0.conv1.weight_fake_quant").
  std::vector<std::pair<std::string, FakeQuantize*>> fake_quants();
  void enable_observers(bool on);
  void enable_fake_quant(bool on);
  void freeze_observers();
  // QAT: BN folded into convs stops using batch statistics and stops updating its running ones.
  void freeze_bn_stats();
  bool bn_frozen() const { return *bn_frozen_; }
  // The model's parameters plus learned scales (LSQ), for the optimizer.
  std::vector<Tensor> parameters();
  // Detaches every interceptor: the model computes in float again (its weights unchanged).
  void remove();

  // The weights the integer program stores, per Conv/Linear module (path order): the weight
  // after folding (w·γ/σ) and its bias (β + (b − μ)·γ/σ, or the module's own), with the
  // FakeQuantize that quantizes it (null for fp16 or float weights), and the folded BN's path.
  struct DeployedWeight {
    std::string path, folded_bn;
    Tensor weight, bias;
    FakeQuantize* fake_quant = nullptr;
    bool fp16 = false;
  };
  std::vector<DeployedWeight> deployed_weights();

  // Conv/Linear calls in eval mode since prepare that ran the exact integer arithmetic
  // (integer_sim.h) and that fell back to float fake-quant (a parameter was unknown).
  struct UnitCounts {
    int64_t exact = 0, float_fallback = 0;
  };
  UnitCounts unit_counts();

  std::shared_ptr<bool> bn_frozen_ = std::make_shared<bool>(false);
  std::vector<nn::Module*> intercepted;
};

// Traces `model` on `example` (a batch of the model's input shape), plans and attaches the
// interceptors. QAT: observers and fake-quant on. PTQ: observers on, fake-quant off (calibrate
// by running batches in eval mode, then convert()).
std::unique_ptr<QuantizedModel> prepare(nn::Module& model, const Tensor& example, const PrepareOptions& o,
                                        bool qat);
// PTQ's last step: freezes observers and turns fake quantization on; the model now computes
// what the integer program computes.
void convert(QuantizedModel& q);

}  // namespace finch::quant
