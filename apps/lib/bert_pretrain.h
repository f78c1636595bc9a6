// train_bert's library part: the text corpus (files, folders of .txt files, SQuAD contexts)
// tokenized with WordPiece and packed into --seq-len sequences, masked-LM batches, and the run
// that leaves a Hugging Face directory (config.json, vocab.txt, model.safetensors) which
// train_squad --init and infer_squad --model take.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/lib/bert_train.h"
#include "data/mlm.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct BertPretrainOptions {
  BertTrainOptions train;
  std::vector<std::string> texts;           // files (one document each) or folders (*.txt below)
  std::vector<std::string> squad_contexts;  // SQuAD JSON files: each distinct context a document
  std::string vocab_path;
  int64_t seq_len = 128;
  data::MlmOptions mlm;
};

void add_bert_pretrain_options(CLI::App& app, BertPretrainOptions& o);

// The documents of every --text and --squad-contexts source, in the order given (a folder's
// .txt files sorted by path). A missing path, an empty file named directly, a folder without
// .txt files or a corpus with no text at all is one finch::Error sentence.
std::vector<std::string> read_pretraining_documents(const std::vector<std::string>& texts,
                                                    const std::vector<std::string>& squad_contexts);

// The whole run; returns the exit code (0). Bad input is a finch::Error sentence.
int run_bert_pretraining(BertPretrainOptions o, const std::string& command_line);

}  // namespace finch::apps
