// BERT question-answering programs for infer_squad and finch: a Hugging Face directory compiled
// on the fly (fp32, or dynamic int8 with every Linear a per-row dq_linear and the word/type
// embeddings per-row int8), or a .finch program read back and checked to be one.
#pragma once

#include <cstdint>
#include <string>

#include "quant/bert_static.h"
#include "runtime/graph.h"

namespace finch::apps {

enum class BertPrecision { fp32, int8_dynamic, fp16 };

// The program of the BertForQuestionAnswering in `dir` (config.json + model.safetensors), taking
// sequences of 1..max_seq_length tokens. meta: model "bert_qa", precision "fp32", "int8-dynamic"
// or "fp16", vocab_size (so a vocabulary can be checked against a program alone). fp16 stores
// every Linear weight and the embedding tables as f16 (about half the file); the runtime widens
// them at load where the CPU has no fp16 arithmetic and runs a Pi 5's Linears natively in fp16.
runtime::Graph bert_program_from_dir(const std::string& dir, int64_t max_seq_length, BertPrecision precision);

// The static int8 program (quant/bert_static.h) of the model in `dir`, calibrated on `samples`
// ({input_ids, token_type_ids, attention_mask}, I64 [1, S] each); meta.vocab_size as above.
runtime::Graph bert_static_program_from_dir(const std::string& dir, int64_t max_seq_length,
                                            const std::vector<std::vector<Tensor>>& samples,
                                            const quant::BertStaticOptions& options);

// Reads `path` and checks that it is a BERT QA program: meta.model "bert_qa", three I64 inputs
// [B, S] (input_ids, token_type_ids, attention_mask), two f32 outputs [B, S], a positive
// meta.vocab_size. Anything else: one sentence naming the file.
runtime::Graph read_bert_program(const std::string& path);

// The program's longest sequence (its inputs' declared dim 1) and vocabulary size.
int64_t bert_program_max_seq(const runtime::Graph& g);
int64_t bert_program_vocab_size(const runtime::Graph& g);

}  // namespace finch::apps
