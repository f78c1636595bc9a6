// BERT (Devlin et al. 2019) as Hugging Face transformers builds it: embeddings, post-LN encoder
// layers, pooler, the question-answering head and the masked-LM head tied to the word
// embeddings. Module and parameter names are transformers' (bert.embeddings.word_embeddings.weight,
// bert.encoder.layer.0.attention.self.query.weight, qa_outputs.weight, cls.predictions.bias, …),
// so a directory written by save_pretrained loads unchanged (models/bert_io.h).
//
// Shape vocabulary: B batch, S sequence length, H hidden size, NH heads, HD = H / NH head width,
// I intermediate size, V vocabulary.
#pragma once

#include <memory>
#include <string>

#include "autograd/nn/nn.h"
#include "framework/random.h"
#include "models/bert_config.h"

namespace finch::models {

// attention_mask [B, S] (1 = token, 0 = padding; any integer, float or bool dtype) as the
// additive mask every layer adds to its scores, f32 [B, 1, 1, S]: 0 where attended and the
// lowest float where padded, as transformers (so a padded key gets exactly zero weight and a
// row with no key at all gets the same uniform weights transformers gives it).
Tensor bert_additive_mask(const Tensor& attention_mask);

// word + position + token-type embeddings -> LayerNorm -> dropout.
class BertEmbeddings : public nn::Module {
 public:
  BertEmbeddings(const BertConfig& c, Generator* dropout_gen);
  std::string type_name() const override { return "BertEmbeddings"; }
  // input_ids, token_type_ids I64 [B, S] (token_type_ids undefined: all 0) -> [B, S, H].
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids);

  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
  std::shared_ptr<nn::Dropout> dropout;
};

// Multi-head scaled dot-product attention over [B, S, H]. Without attention dropout (eval, or
// p = 0) it is one fused ops/attention call; with it, the scores are composed from matmul,
// softmax and dropout so the dropped probabilities are the ones the gradient sees.
class BertSelfAttention : public nn::Module {
 public:
  // `heads` of width c.head_dim() (0: c.num_attention_heads; fewer in a pruned layer).
  BertSelfAttention(const BertConfig& c, Generator* dropout_gen, int64_t heads = 0);
  std::string type_name() const override { return "BertSelfAttention"; }
  // x [B, S, H], mask f32 [B, 1, 1, S] additive or undefined -> context [B, S, H].
  Tensor forward(const Tensor& x, const Tensor& mask);

  int64_t num_heads, head_dim;
  double attention_dropout;
  Generator* dropout_gen;
  std::shared_ptr<nn::Linear> query, key, value;
};

// dense -> dropout -> + residual -> LayerNorm (the "post-LN" of the original Transformer);
// transformers' BertSelfOutput (width H) and BertOutput (I -> H) are both this.
class BertResidualOutput : public nn::Module {
 public:
  BertResidualOutput(int64_t in, const BertConfig& c, Generator* dropout_gen, std::string name);
  std::string type_name() const override { return name_; }
  Tensor forward(const Tensor& x, const Tensor& residual);

  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
  std::shared_ptr<nn::Dropout> dropout;

 private:
  std::string name_;
};

// attention.self + attention.output.
class BertAttention : public nn::Module {
 public:
  BertAttention(const BertConfig& c, Generator* dropout_gen, int64_t heads = 0);
  std::string type_name() const override { return "BertAttention"; }
  Tensor forward(const Tensor& x, const Tensor& mask);

  std::shared_ptr<BertSelfAttention> self;
  std::shared_ptr<BertResidualOutput> output;
};

// x -> attention -> intermediate.dense -> act -> output (dense, dropout, residual, LayerNorm).
class BertLayer : public nn::Module {
 public:
  // Layer `index` of the encoder: its heads and FFN width are c.heads_of(index), c.intermediate_of(index).
  BertLayer(const BertConfig& c, Generator* dropout_gen, int64_t index = 0);
  std::string type_name() const override { return "BertLayer"; }
  Tensor forward(const Tensor& x, const Tensor& mask);  // [B, S, H] -> [B, S, H]

  std::string hidden_act;
  std::shared_ptr<BertAttention> attention;
  std::shared_ptr<nn::Module> intermediate;  // holds `dense` (H -> I); the activation is hidden_act
  std::shared_ptr<nn::Linear> intermediate_dense;
  std::shared_ptr<BertResidualOutput> output;
};

// The activation named by hidden_act: gelu (erf), gelu_new (tanh approximation) or relu.
Tensor bert_activation(const Tensor& x, const std::string& hidden_act);

struct BertOutputs {
  Tensor sequence_output;  // [B, S, H]
  Tensor pooled;           // [B, H], undefined without a pooler
};

// embeddings -> encoder.layer.0 … L-1 -> (pooler: tanh(dense(first token))).
// It owns the generator (seeded by `seed`) that draws the initial weights and then every dropout
// mask, so a model built with the same seed and fed the same batches repeats itself exactly.
class BertModel : public nn::Module {
 public:
  BertModel(const BertConfig& c, bool add_pooling_layer = true, uint64_t seed = 0x5eed);
  std::string type_name() const override { return "BertModel"; }
  // input_ids I64 [B, S] with S <= max_position_embeddings; attention_mask [B, S] of 0/1 or
  // undefined (all tokens); token_type_ids I64 [B, S] or undefined (all 0).
  BertOutputs forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(),
                      const Tensor& token_type_ids = Tensor());
  Tensor forward_impl(const Tensor& input_ids) override { return forward(input_ids).sequence_output; }

  BertConfig config;
  std::unique_ptr<Generator> dropout_gen;
  std::shared_ptr<BertEmbeddings> embeddings;
  std::shared_ptr<nn::Module> encoder;  // holds `layer`
  std::shared_ptr<nn::ModuleList> layer;
  std::shared_ptr<nn::Module> pooler;   // holds `dense`; undefined without a pooler
  std::shared_ptr<nn::Linear> pooler_dense;
};

// transformers' initialisation: Linear and Embedding weights N(0, initializer_range²), biases 0,
// the padding row 0, LayerNorm weight 1 and bias 0.
void init_bert_weights(nn::Module& m, const BertConfig& c, Generator& gen);

struct BertQAOutputs {
  Tensor sequence_output, pooled;  // as BertOutputs
  Tensor start_logits, end_logits;  // [B, S] each
};

// bert (without a pooler, as transformers, unless asked) + qa_outputs: Linear(H, 2) whose two
// columns are the start and end logits of every token.
class BertForQuestionAnswering : public nn::Module {
 public:
  explicit BertForQuestionAnswering(const BertConfig& c, bool add_pooling_layer = false,
                                    uint64_t seed = 0x5eed);
  std::string type_name() const override { return "BertForQuestionAnswering"; }
  BertQAOutputs forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(),
                        const Tensor& token_type_ids = Tensor());
  // The single-input form graph capture (and compress/'s channel analysis) runs: input_ids alone
  // (every token attended, token types 0) -> the logits [B, S, 2], start and end side by side.
  Tensor forward_impl(const Tensor& input_ids) override;

  std::shared_ptr<BertModel> bert;
  std::shared_ptr<nn::Linear> qa_outputs;
};

// bert (no pooler) + cls.predictions: transform (dense, act, LayerNorm), then the decoder whose
// weight is bert.embeddings.word_embeddings.weight (tied: one tensor, one gradient sum) plus
// cls.predictions.bias [V].
class BertForMaskedLM : public nn::Module {
 public:
  explicit BertForMaskedLM(const BertConfig& c, uint64_t seed = 0x5eed);
  std::string type_name() const override { return "BertForMaskedLM"; }
  // -> logits [B, S, V]; sequence_output is also returned through `out` when given.
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(),
                 const Tensor& token_type_ids = Tensor(), BertOutputs* out = nullptr);
  // Mean cross entropy of the logits against labels I64 [B, S] (-100 = not predicted).
  Tensor loss(const Tensor& logits, const Tensor& labels) const;

  std::shared_ptr<BertModel> bert;
  std::shared_ptr<nn::Module> cls, predictions, transform;
  std::shared_ptr<nn::Linear> transform_dense;
  std::shared_ptr<nn::LayerNorm> transform_LayerNorm;
  Tensor bias;  // cls.predictions.bias [V]
};

}  // namespace finch::models
