// finch: the model-shrinking command line: `finch quantize` (post-training quantization with a
// side-by-side table, optionally straight to a .finch program), `finch compile` (the fp32 program),
// `finch run`, `finch inspect`, `finch verify` (program vs simulated model, bit for bit), `finch bench`
// (a program's latency on random inputs) and `finch bench-program` (benchmarking aid: a program of
// any zoo model at any input size, untrained or from a checkpoint, int8 calibrated on noise).
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "apps/lib/bench_cmd.h"
#include "apps/lib/bert_compress_cmd.h"
#include "apps/lib/bert_sim_check_cmd.h"
#include "apps/lib/compress_cmd.h"
#include "apps/lib/emit_c_cmd.h"
#include "apps/lib/program_cmds.h"
#include "apps/lib/prune_cmd.h"
#include "apps/lib/lowrank_cmd.h"
#include "apps/lib/quantize_run.h"
#include "apps/lib/series_prune.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/user_errors.h"
#include "framework/error.h"

int main(int argc, char** argv) {
  CLI::App app{"finch: quantize trained models, compile them into .finch programs and run them.\n"
               "  finch quantize --checkpoint out/resnet20/model.safetensors --mode static --out resnet20-int8.finch\n"
               "  finch run resnet20-int8.finch --profile\n"
               "  finch verify resnet20-int8.finch --checkpoint resnet20-int8.finch.sim.safetensors\n"
               "  finch verify bert-int8.finch --weights bert-squad/ --data dev-v1.1.json --limit 100\n"
               "  finch bench resnet20-int8.finch --batch 1 --threads 1 --iters 200 --json bench.json"};
  app.require_subcommand(1);
  finch::apps::QuantizeOptions q;
  CLI::App* quantize = app.add_subcommand("quantize", "post-training quantization: static, dynamic or fp16");
  finch::apps::add_quantize_options(*quantize, q);
  finch::apps::ProgramOptions pc, pr, pi, pv;
  CLI::App* compile = app.add_subcommand("compile", "the fp32 program (.finch) of a trained model: BN folded, fused");
  finch::apps::add_compile_options(*compile, pc);
  CLI::App* run = app.add_subcommand("run", "evaluate a .finch program on a dataset (accuracy, latency, --profile)");
  finch::apps::add_run_options(*run, pr);
  CLI::App* inspect = app.add_subcommand("inspect", "a .finch program's graph as a table (--dot for Graphviz)");
  finch::apps::add_inspect_options(*inspect, pi);
  CLI::App* verify = app.add_subcommand("verify", "compare a quantized program with its simulated model, layer by layer (BERT: on SQuAD windows)");
  finch::apps::add_verify_options(*verify, pv);
  finch::apps::SeriesOptions qs, vs, cs, rs;  // series and text data flags (train_series/train_text's)
  finch::apps::add_sequence_data_flags(*quantize, qs);
  finch::apps::add_sequence_data_flags(*verify, vs);
  finch::apps::BertVerifyFlags bv;  // a BERT program's flags (infer_squad's names)
  finch::apps::add_bert_verify_flags(*verify, bv);
  finch::apps::add_sequence_data_flags(*compile, cs);
  finch::apps::add_sequence_data_flags(*run, rs);
  finch::apps::BenchOptions bo;
  CLI::App* bench = app.add_subcommand("bench", "latency of a .finch program on random inputs (median, p10, p90, images/s)");
  finch::apps::add_bench_options(*bench, bo);
  finch::apps::BenchProgramOptions bp;
  CLI::App* bench_program = app.add_subcommand(
      "bench-program", "benchmarking aid: fp32/fp16/int8 program of any zoo model and input size, "
                       "seeded init or a checkpoint, int8 calibrated on random-normal images");
  finch::apps::add_bench_program_options(*bench_program, bp);
  finch::apps::PruneOptions po;
  CLI::App* prune = app.add_subcommand("prune", "structured (smaller layers) or unstructured pruning, fine-tuned");
  finch::apps::add_prune_options(*prune, po);
  finch::apps::SeriesOptions ps;  // a train_series/train_text checkpoint's data flags
  finch::apps::add_sequence_data_flags(*prune, ps);
  finch::apps::LowRankCmdOptions lr;
  CLI::App* lowrank = app.add_subcommand("lowrank", "low-rank (truncated SVD) Linear/Conv2d layers, fine-tuned");
  finch::apps::add_lowrank_options(*lowrank, lr);
  finch::apps::BertSquadFlags pb, lb;  // a BERT directory's SQuAD flags (train_squad's)
  finch::apps::add_bert_squad_flags(*prune, pb);
  finch::apps::add_bert_squad_flags(*lowrank, lb);
  finch::apps::CompressOptions co;
  CLI::App* compress = app.add_subcommand("compress", "run a recipe of compression steps; report.json/html compares the variants");
  finch::apps::add_compress_options(*compress, co);
  finch::apps::EmitCOptions ec;
  CLI::App* emit_c = app.add_subcommand("emit-c", "a .finch program as one self-contained C source (weights, kernels, main)");
  finch::apps::add_emit_c_options(*emit_c, ec);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "finch: " << e.what() << " (see finch --help)\n";
    return e.get_exit_code();
  }
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // Every error is one line: the sentence of a finch::Error, or a named internal error (exit 2).
  return finch::apps::run_with_user_errors("finch", [&]() -> int {
    if (quantize->parsed()) {
      q.data.model_given = quantize->count("--model") > 0;
      q.data.width_given = quantize->count("--width") > 0;
      if (finch::apps::sequence_checkpoint_or_flags(q.data.checkpoint, *quantize))
        return finch::apps::run_sequence_quantize(q, qs, command_line);
      finch::apps::finalize_quantize_options(q);
      return finch::apps::run_quantize(q, command_line);
    }
    if (compile->parsed()) {
      pc.data.width_given = compile->count("--width") > 0;
      if (finch::apps::is_bert_directory(pc.data.checkpoint)) return finch::apps::run_bert_compile(pc);
      if (finch::apps::sequence_checkpoint_or_flags(pc.data.checkpoint, *compile))
        return finch::apps::run_sequence_compile(pc, cs, finch::apps::image_flags_given(*compile) > 0);
      return finch::apps::run_compile(pc, compile->count("--model") > 0);
    }
    if (run->parsed()) {
      if (finch::apps::sequence_program_or_flags(pr.program, *run))
        return finch::apps::run_sequence_run(pr, rs, finch::apps::image_flags_given(*run) > 0);
      return finch::apps::run_run(pr);
    }
    if (emit_c->parsed()) return finch::apps::run_emit_c(ec);
    if (inspect->parsed()) return finch::apps::run_inspect(pi);
    if (verify->parsed()) {
      if (finch::apps::bert_program_or_flags(pv.program, *verify))
        return finch::apps::run_bert_verify(pv, bv, verify->count("--batch-size") > 0);
      finch::apps::require_verify_checkpoint(pv);
      return finch::apps::sequence_program_or_flags(pv.program, *verify) ? finch::apps::run_sequence_verify(pv, vs)
                                                                          : finch::apps::run_verify(pv);
    }
    if (bench->parsed()) return finch::apps::run_bench(bo);
    if (bench_program->parsed()) {
      bp.width_given = bench_program->count("--width") > 0;
      return finch::apps::run_bench_program(bp, bench_program->count("--model") > 0);
    }
    if (prune->parsed()) {
      po.train.model_given = prune->count("--model") > 0;
      po.train.width_given = prune->count("--width") > 0;
      po.lr_given = prune->count("--lr") > 0;
      pb.batch_given = prune->count("--batch-size") > 0;
      if (finch::apps::is_bert_directory(po.train.checkpoint)) return finch::apps::run_bert_prune(po, pb, command_line);
      finch::apps::refuse_bert_flags(*prune, po.train.checkpoint);
      if (finch::apps::sequence_checkpoint_or_flags(po.train.checkpoint, *prune))
        return finch::apps::run_sequence_prune(po, ps, command_line);
      return finch::apps::run_prune(po, command_line);
    }
    if (lowrank->parsed()) {
      lr.train.model_given = lowrank->count("--model") > 0, lr.train.width_given = lowrank->count("--width") > 0;
      lr.lr_given = lowrank->count("--lr") > 0;
      lb.batch_given = lowrank->count("--batch-size") > 0;
      if (finch::apps::is_bert_directory(lr.train.checkpoint)) return finch::apps::run_bert_lowrank(lr, lb, command_line);
      finch::apps::refuse_bert_flags(*lowrank, lr.train.checkpoint);
      return finch::apps::run_lowrank(lr, command_line);
    }
    if (compress->parsed()) {
      finch::apps::check_compress_flags(*compress, co);
      return finch::apps::run_compress(co, command_line);
    }
    return 1;  // require_subcommand(1): unreachable
  });
}
