// infer_squad: answers SQuAD questions with a Hugging Face BERT question-answering checkpoint in
// fp32 (the nn model), as a compiled fp32, dynamic int8 (--int8) or static int8 (--int8-static)
// program (or --model X.finch), and reports EM/F1, latency per question, questions per second
// and peak memory.
#include <CLI/CLI.hpp>

#include <iostream>

#include "apps/lib/squad_infer.h"
#include "apps/lib/user_errors.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Answer SQuAD questions with a BERT question-answering model in the Hugging Face layout\n"
      "(config.json, vocab.txt, model.safetensors). Prints EM/F1 when the file has answers, latency\n"
      "per question (p50, p90), questions per second and peak memory. Example:\n"
      "  infer_squad --model bert-squad/ --data dev-v1.1.json --threads 2 --predictions preds.json\n"
      "  infer_squad --model bert-squad/ --data dev-v1.1.json --int8 --save-program bert-int8.finch\n"
      "  infer_squad --model bert-squad/ --data dev-v1.1.json --int8-static --save-program bert-static.finch\n"
      "  infer_squad --model bert-squad/ --data dev-v1.1.json --int8-static --verify   # program == simulation\n"
      "  infer_squad --model bert-int8.finch --vocab bert-squad/vocab.txt --data dev-v1.1.json"};
  finch::apps::SquadInferOptions o;
  finch::apps::add_squad_infer_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "infer_squad: " << e.what() << " (see infer_squad --help)\n";
    return e.get_exit_code();
  }
  // Every error is one line: the sentence of a finch::Error, or a named internal error (exit 2).
  return finch::apps::run_with_user_errors("infer_squad", [&] { return finch::apps::run_infer_squad(o); });
}
