// Every backward rule in finch, by the name its forward passes to record(). Adding a rule means
// adding its name here and a gradcheck case in tests/autograd (the suite fails otherwise).
#include "autograd/registry.h"

#include <algorithm>
#include <mutex>

namespace finch::autograd {

const std::vector<std::string>& backward_rules() {
  static const std::vector<std::string> rules = {
      // elementwise arithmetic (autograd/functions_elementwise.cc)
      "add", "sub", "mul", "div", "neg", "add_scalar", "mul_scalar", "pow_scalar", "pow",
      "exp", "log", "sqrt", "rsqrt", "abs", "clamp", "where",
      // activations (autograd/functions_activation.cc)
      "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu",
      "hardswish", "hardsigmoid",
      // reductions (autograd/functions_reduce.cc)
      "sum", "mean", "max", "var", "softmax", "log_softmax",
      // linear algebra and convolution (autograd/functions_linalg.cc, functions_conv.cc)
      "matmul", "linear", "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
      // normalization and tables (autograd/functions_norm.cc)
      "batch_norm", "layer_norm", "embedding", "dropout",
      // batch norm over every process's batch (autograd/functions_sync_bn.cc)
      "sync_batch_norm",
      // shape and layout (autograd/functions_shape.cc)
      "view", "permute", "expand", "slice", "select", "contiguous", "cat", "index_select", "pad",
      "to_dtype",
      // losses (autograd/functions_loss.cc)
      "cross_entropy", "bce_with_logits", "mse_loss",
      // sequence models (autograd/functions_sequence.cc)
      "lstm_cell", "scaled_dot_product_attention",
      // recurrent layers, one node per layer-direction (autograd/functions_rnn.cc)
      "lstm_sequence", "gru_sequence",
      // per-sample lengths over the time axis (autograd/functions_steps.cc)
      "mask_steps", "mean_steps",
  };
  return rules;
}

const std::vector<std::string>& straight_through_rules() {
  static const std::vector<std::string> rules = {
      // fake quantization (quant/fake_quant.cc): x -> dequant(quant(x))
      "fake_quantize", "fake_quantize_lsq",
      // QAT LSTM (quant/qat_rnn.cc): the integer cell's outputs, the float cell's gradient
      "qat_lstm_sequence", "qat_gru_sequence",
      // the static int8 BERT simulation (quant/bert_sim.cc): exact value, surrogate gradient
      "qat_bert_straight_through",
  };
  return rules;
}

namespace {
std::mutex g_extension_mutex;
std::vector<std::string>& extension_rules() {
  static std::vector<std::string> rules;
  return rules;
}
}  // namespace

bool is_registered_rule(const std::string& name) {
  for (const auto* r : {&backward_rules(), &straight_through_rules()})
    if (std::find(r->begin(), r->end(), name) != r->end()) return true;
  std::lock_guard<std::mutex> lock(g_extension_mutex);
  const auto& ext = extension_rules();
  return std::find(ext.begin(), ext.end(), name) != ext.end();
}

void register_extension_rule(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_extension_mutex);
  auto& ext = extension_rules();
  if (std::find(ext.begin(), ext.end(), name) == ext.end()) ext.push_back(name);
}

}  // namespace finch::autograd
