// infer_squad's library part: options, their validation and the run (read a Hugging Face BERT
// question-answering directory and a SQuAD file, answer every question, score, time, write).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/wordpiece.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct SquadInferOptions {
  std::string model_dir, data_path, vocab_path;  // vocab_path empty: model_dir/vocab.txt
  // model_dir may also be a .finch program (vocab_path then required); int8: compile the
  // directory to a dynamic int8 program on the fly; save_program: write the program used.
  bool int8 = false;
  // fp16: compile the directory to an fp16 program (f16 Linear weights and embedding tables).
  bool fp16 = false;
  // int8_static: the static int8 encoder (quant/bert_static.h), calibrated on the features of the
  // last calibration_questions questions of the data file with `observer`; integer_gelu: I-BERT's
  // integer GELU instead of the float GELU table.
  bool int8_static = false, integer_gelu = false;
  int64_t calibration_questions = 32;
  std::string observer = "minmax";
  std::string save_program_path;
  // verify: run the static int8 program beside its simulation (quant/bert_sim.h) and compare every
  // logit and int8 code bit for bit; the float weights come from the directory (--int8-static) or
  // from weights_dir (a .finch program as --model, e.g. train_squad --qat's export).
  bool verify = false;
  std::string weights_dir;
  std::string predictions_path;                  // empty: none written
  std::string logits_path;                       // empty: none written (for the parity script)
  int threads = 0;                               // 0: all cores
  int64_t limit = 0;                             // 0: every question
  int64_t batch_size = 8;                        // features per forward pass
  int64_t max_seq_length = 384, doc_stride = 128, max_query_length = 64;
  int64_t n_best = 20, max_answer_length = 30;
  // pad: every feature runs at max_seq_length, padding included. Default: a feature runs at its
  // real length (trimmed_length), batched only with features of that length; the attention mask
  // hides padding from the real tokens, so their logits are the padded run's (the test checks
  // this bit for bit for fp32, dynamic and static int8), and the n-best decoding, the logits file
  // and the time cover the real tokens only.
  bool pad = false;
};

// The real length of a feature: its attention mask with the trailing padding (zeros) cut, at
// least 1. Features are [CLS] question [SEP] context [SEP] then padding, so every token before
// that length is real.
int64_t trimmed_length(const std::vector<int32_t>& attention_mask);

// The tokenizer settings of a BERT directory: do_lower_case (and strip_accents,
// tokenize_chinese_chars) from DIR/tokenizer_config.json when the file has them (cased checkpoints
// say false there); absent file or key: lower-case, as bert-base-uncased. Malformed: one sentence.
data::WordPieceOptions tokenizer_options(const std::string& dir);

// Adds the options above to `app` (names as in infer_squad --help).
void add_squad_infer_options(CLI::App& app, SquadInferOptions& o);

// Throws one finch::Error sentence for the first option out of range.
void validate(const SquadInferOptions& o);

// The whole run; prints the summary on stdout and returns the exit code (0). Bad input (a file
// that cannot be read, a vocabulary that does not match the checkpoint, options the model cannot
// take) throws one finch::Error sentence.
int run_infer_squad(const SquadInferOptions& o);

}  // namespace finch::apps
