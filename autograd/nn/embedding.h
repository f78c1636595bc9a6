// Embedding: a lookup table weight [num_embeddings, embedding_dim], as torch.nn.Embedding.
#pragma once

#include <optional>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::nn {

// Default init N(0, 1) with the padding_idx row zeroed; that row gets no gradient.
// A negative padding_idx counts from the end, as torch.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim,
            std::optional<int64_t> padding_idx = std::nullopt, Generator* gen = nullptr);
  std::string type_name() const override { return "Embedding"; }
  Tensor forward_impl(const Tensor& indices) override;  // indices i64 [...] -> [..., E]
  void reset_parameters(Generator* gen = nullptr);

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // normalized to [0, num_embeddings)
  Tensor weight;
};

}  // namespace finch::nn
