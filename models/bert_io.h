// Loading and saving BERT models in the Hugging Face directory layout: DIR/config.json and
// DIR/model.safetensors with transformers' parameter names, as save_pretrained writes them.
#pragma once

#include <memory>
#include <string>

#include "framework/safetensors.h"
#include "models/bert.h"

namespace finch::models {

// What load_bert_* read: the checkpoint's tensors renamed to finch's state_dict names (a bare
// BertModel checkpoint without the "bert." prefix gets it), with the entries transformers may
// save but finch recomputes or shares taken out: the position_ids / token_type_ids buffers, the
// tied decoder (cls.predictions.decoder.weight must equal the word embeddings, decoder.bias
// the cls.predictions.bias), and the next-sentence head cls.seq_relationship of BertForPreTraining.
struct BertCheckpoint {
  BertConfig config;
  nn::StateDict weights;
  std::string weights_path;  // for error messages
};
BertCheckpoint read_bert_checkpoint(const std::string& dir);

// The QA model of DIR: qa_outputs.* must be there; bert.pooler.* is loaded when present (the
// model then has a pooler), as transformers' BertForQuestionAnswering ignores it. Every other
// tensor must match by name and shape (strict): a missing or unexpected tensor, or a shape that
// differs from config.json's, is one error sentence naming the file.
std::shared_ptr<BertForQuestionAnswering> load_bert_for_question_answering(const std::string& dir);
// The masked-LM model of DIR: cls.predictions.transform.* and cls.predictions.bias must be there.
std::shared_ptr<BertForMaskedLM> load_bert_for_masked_lm(const std::string& dir);

// Writes DIR/config.json and DIR/model.safetensors (DIR must exist) in the layout above, which
// transformers' from_pretrained reads back. The per-layer heads, FFN widths and low-rank
// factorized Linears of a compressed model are read from its weights into config.json's finch_*
// keys (bert_config.h), so load_bert_* rebuilds it with no other input (transformers cannot).
void save_bert(const std::string& dir, const BertConfig& config, const nn::Module& model);

}  // namespace finch::models
