// Padded batches, the float program and program forwards of the sequence models (sequence_program.h).
#include "apps/lib/sequence_program.h"

#include <algorithm>

#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/error.h"
#include "framework/random.h"

namespace finch::apps {

std::pair<Tensor, Tensor> padded_to(const Tensor& x, const Tensor& lengths, int64_t T) {
  const int64_t t = x.size(-1);
  if (t > T) fail("a batch has ", t, " steps, more than the longest sequence found (", T, ")");
  const Tensor len = lengths.defined() ? lengths : full({x.size(0)}, double(t), DType::i64);
  if (t == T) return {x, len};
  Shape s = x.shape();
  s.back() = T;
  Tensor out = zeros(s, x.dtype());
  out.slice(x.dim() - 1, 0, t).copy_(x);
  return {out, len};
}

int64_t longest_sequence(const SequenceData& d) {
  int64_t T = std::max<int64_t>(d.max_length, 1);
  Generator g(0);
  for (int64_t i = 0; i < d.test->size(); ++i) T = std::max(T, d.test->get(i, g).image.size(-1));
  return T;
}

runtime::Graph sequence_float_graph(nn::Module& model, const data::Batch& b, int64_t T) {
  const auto [x, len] = padded_to(b.images, b.lengths, T);
  runtime::Graph g = capture_sequence_model(model, x, len);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  return g;
}

runtime::Graph capture_sequence_model(nn::Module& model, const Tensor& x, const Tensor& lengths) {
  if (dynamic_cast<nn::LengthAware*>(&model)) return compile::capture_graph_with_lengths(model, x, lengths);
  return compile::capture_graph(model, x);
}

train::BatchForward program_forward(runtime::Program& p, int64_t T) {
  return [&p, T](const data::Batch& b) {
    const auto [x, len] = padded_to(b.images, b.lengths, T);
    return p.graph().inputs.size() == 1 ? p.run(x) : p.run({x, len})[0];
  };
}

void forward_sequence_batch(nn::Module& model, const data::Batch& b) {
  if (auto* la = dynamic_cast<nn::LengthAware*>(&model); la && b.lengths.defined()) {
    nn::ForwardPass pass;
    la->forward_with_lengths(b.images, b.lengths);
  } else {
    model.forward(b.images);
  }
}

}  // namespace finch::apps
