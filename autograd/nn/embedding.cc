// Embedding.
#include "autograd/nn/embedding.h"

#include "autograd/functional.h"
#include "autograd/nn/init.h"
#include "framework/grad_mode.h"

namespace finch::nn {

Embedding::Embedding(int64_t n, int64_t dim, std::optional<int64_t> pad, Generator* gen)
    : num_embeddings(n), embedding_dim(dim) {
  if (n <= 0 || dim <= 0)
    fail("Embedding: num_embeddings and embedding_dim must be positive, got ", n, " and ", dim);
  if (pad) {
    if (*pad >= n || *pad < -n)
      fail("Embedding: padding_idx ", *pad, " is out of range for ", n, " embeddings");
    padding_idx = *pad < 0 ? *pad + n : *pad;
  }
  weight = register_parameter("weight", empty({n, dim}));
  reset_parameters(gen);
}

void Embedding::reset_parameters(Generator* gen) {
  init::normal_(weight, 0.0, 1.0, gen);
  if (padding_idx) {
    NoGradGuard ng;
    weight.select(0, *padding_idx).zero_();
  }
}

Tensor Embedding::forward_impl(const Tensor& indices) {
  return finch::embedding(indices, weight, padding_idx.value_or(-1));
}

}  // namespace finch::nn
