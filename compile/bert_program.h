// A BERT question-answering model (Hugging Face parameter names, models/bert.h) as a program:
// the encoder and QA head recorded op by op into the graph IR, with input_ids, token_type_ids
// and attention_mask as program inputs of any sequence length up to the declared one.
//
// Why not capture_graph: capture runs one forward at one length and bakes what does not depend
// on its one input (the position rows, the additive mask) into constants; a BERT program needs
// three inputs and a run-time length. The graph here is the same op sequence BertModel executes
// (the same ops/ kernels: embedding, layer norm, fused attention, GELU), so the fp32 program
// equals the nn model to float rounding, and quantize_dynamic_graph (dynamic_rnn.h) turns its
// Linears into dq_linear like any captured program's.
#pragma once

#include <cstdint>
#include <string>

#include "autograd/nn/module.h"
#include "runtime/graph.h"

namespace finch::compile {

// What the graph needs beyond the weights (the fields of models::BertConfig that shape the ops;
// compile/ cannot see models/, so the caller copies them).
struct BertProgramSpec {
  int64_t layers = 0;
  int64_t heads = 0;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // gelu, gelu_new or relu
  int64_t max_seq_length = 384;     // the declared (longest) sequence; 1..this at run time
};

// The program of `qa_model` (a BertForQuestionAnswering: bert.embeddings.*, bert.encoder.layer.N.*,
// qa_outputs.*). Inputs: input_ids, token_type_ids, attention_mask, each I64 [1, max_seq_length]
// (dim 0 the batch, dim 1 the sequence: meta.variable_sequence). Outputs: start_logits,
// end_logits, f32 [B, S]. A missing parameter or a shape that does not fit the spec fails with
// one sentence naming it. meta: model "bert_qa", precision "fp32".
runtime::Graph bert_qa_program(const nn::Module& qa_model, const BertProgramSpec& spec);

}  // namespace finch::compile
