// `finch quantize` and `finch verify` for the series and text models (train_series, train_text):
// the same data flags as those apps (--train/--test/--val-split, CSV --target/--window, --data
// with the vocabulary options), the checkpoint's metadata rebuilding the model. Static int8
// quantizes the convs and the Linear head (quant::prepare, --skip keeps modules float), every
// LSTM/GRU (qlstm/qgru, min/max calibrated by the QAT layers whose forward is the deployed cell)
// and the embeddings (per-row int8), so the simulated model and the program agree bit for bit;
// dynamic int8 is compile::quantize_dynamic_graph. Writes the program, FILE.finch.sim.safetensors
// (the simulated model, for finch verify) and the report (fp32 first, int8 last). finch compile
// and run take the same data flags (series_program_cmds.cc).
#pragma once

#include <string>

#include "apps/lib/program_cmds.h"
#include "apps/lib/quantize_run.h"
#include "apps/lib/series_options.h"

namespace CLI {
class App;
}

namespace finch::apps {

// Registers the series and text data flags of train_series/train_text on a finch subcommand
// (--data is the subcommand's own).
void add_sequence_data_flags(CLI::App& app, SeriesOptions& o);
// True when any of those flags was given.
bool sequence_data_flags_given(const CLI::App& app);

// The checkpoint (model.safetensors of train_series/train_text) records a series model.
bool is_sequence_checkpoint(const std::string& path);
// The program was written by run_sequence_quantize.
bool is_sequence_program(const std::string& path);

// Which path a finch subcommand takes: true for a series checkpoint (program); false for an
// image one given no series data flag; one sentence for an image checkpoint with series flags.
bool sequence_checkpoint_or_flags(const std::string& checkpoint, const CLI::App& app);
bool sequence_program_or_flags(const std::string& program, const CLI::App& app);

int run_sequence_quantize(const QuantizeOptions& q, SeriesOptions s, const std::string& command_line);
int run_sequence_verify(const ProgramOptions& p, SeriesOptions s);
// finch compile / run (series_program_cmds.cc): the fp32 program of a series or text checkpoint;
// a series or text program scored on its recorded data or the flags given. `image_flags`: an image
// model's flag was given (--model, --width, --dataset, --mean, --std, --limit-test): one sentence.
int run_sequence_compile(const ProgramOptions& p, SeriesOptions s, bool image_flags);
int run_sequence_run(const ProgramOptions& p, SeriesOptions s, bool image_flags);
// How many of those flags `app` was given (the ones it has).
int image_flags_given(const CLI::App& app);

}  // namespace finch::apps
