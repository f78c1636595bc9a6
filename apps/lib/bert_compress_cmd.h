// `finch prune --structured` and `finch lowrank` on a BERT question-answering directory
// (config.json + model.safetensors + vocab.txt, as train_squad writes it): attention heads and FFN
// neurons removed (compress/structured.h, found from the graph) or encoder Linears factorized
// (compress/lowrank.h), fine-tuned on SQuAD through train_squad's loop (bert_train.h) on the
// training articles of --data (--split-by-article, as train_squad splits), scored (EM/F1) on the
// held-out articles before and after, and written as a directory that infer_squad and finch
// compile take with no flags (config.json records the new sizes and ranks) plus summary.json.
// `finch compile` on such a directory writes its fp32 program.
#pragma once

#include <cstdint>
#include <string>

#include "apps/lib/lowrank_cmd.h"
#include "apps/lib/program_cmds.h"
#include "apps/lib/prune_cmd.h"

namespace CLI {
class App;
}

namespace finch::apps {

// The flags only a BERT directory takes (train_squad's names and defaults where it has them).
struct BertSquadFlags {
  std::string vocab;            // default: the directory's vocab.txt
  double split = 0.8;           // --split-by-article
  uint64_t split_seed = 0;
  int64_t max_seq_length = 128, doc_stride = 64, max_query_length = 64;
  int64_t fine_tune_steps = 0;  // > 0: optimizer steps instead of --fine-tune-epochs passes
  int64_t eval_limit = 0;       // score only the first N held-out questions (0: all)
  int64_t eval_batch_size = 16;
  int64_t log_every = 50;
  bool batch_given = false;     // --batch-size given (else 16: the image default does not fit BERT)
};

void add_bert_squad_flags(CLI::App& app, BertSquadFlags& f);
// One sentence when `app` was given one of the flags above for a checkpoint that is not a BERT
// directory.
void refuse_bert_flags(const CLI::App& app, const std::string& checkpoint);

// A directory with config.json whose model_type is BERT's (finch reads only those).
bool is_bert_directory(const std::string& path);

int run_bert_prune(const PruneOptions& o, const BertSquadFlags& f, const std::string& command_line);
int run_bert_lowrank(const LowRankCmdOptions& o, const BertSquadFlags& f, const std::string& command_line);
// Fine-tuning of the BERT in o.train.checkpoint against the teacher's start/end logits (the
// model's shapes unchanged): finch compress's distill step on a BERT directory. Writes the
// directory and summary.json into o.train.out_dir as run_bert_prune does.
struct BertDistillOptions {
  TrainOptions train;  // checkpoint (the student), out_dir, lr, batch size, seed, threads
  bool lr_given = false;
  std::string teacher;
  double temperature = 4, alpha = 0.9;
  int64_t epochs = 1;  // passes over the training windows (unless --fine-tune-steps)
};
int run_bert_distill(const BertDistillOptions& o, const BertSquadFlags& f, const std::string& command_line);
// finch compile DIR: the fp32 program of the BERT in DIR, sequences up to its positions.
int run_bert_compile(const ProgramOptions& o);

}  // namespace finch::apps
