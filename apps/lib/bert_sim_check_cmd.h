// `finch verify` on BERT question-answering programs: a static int8 program (infer_squad
// --int8-static --save-program, train_squad --qat's export) run beside its simulated model
// (quant/bert_sim.h) built from the float weights it was made from, on the SQuAD windows of
// --data, every start/end logit and every int8 code compared for equality of bits
// (bert_sim_check.h's check_against_sim, the check infer_squad --verify makes); a dynamic int8
// program (infer_squad --int8 --save-program) likewise beside quant::bert_dynamic_sim_forward,
// every logit and every f32 Linear/attention/activation/LayerNorm output compared. Prints the
// summary line (AGREE or DIFFER) and exits 1 on DIFFER. A program and a weights directory that do
// not belong together (another model's sizes, a vocabulary of another size, an attribute edited
// out of line with the rest of the program) get one sentence before anything runs.
#pragma once

#include <cstdint>
#include <string>

#include "apps/lib/program_cmds.h"

namespace CLI {
class App;
}

namespace finch::apps {

// The flags only a BERT program takes (infer_squad's names; --data, --threads, --batch-size,
// --checkpoint (= --weights), --reference-kernels and --json are verify's own).
struct BertVerifyFlags {
  std::string weights;         // the Hugging Face directory of the float weights
  std::string vocab;           // default: WEIGHTS/vocab.txt
  int64_t limit = 0;           // the first N questions of --data (0: all)
  int64_t max_seq_length = 0;  // tokens per window (0: the program's longest sequence)
  int64_t doc_stride = 128, max_query_length = 64;
};

void add_bert_verify_flags(CLI::App& app, BertVerifyFlags& f);

// True when `path` is a BERT QA program (meta.model "bert_qa"); false for another program or a
// missing file (the other paths report those). A BERT flag given for a program that is not a
// BERT one: one sentence.
bool bert_program_or_flags(const std::string& path, const CLI::App& app);

// The run. `batch_given`: --batch-size was given (else 8 windows per run).
int run_bert_verify(const ProgramOptions& o, const BertVerifyFlags& f, bool batch_given);

}  // namespace finch::apps
