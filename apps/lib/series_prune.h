// `finch prune --structured` on a train_series/train_text model: the checkpoint's metadata rebuilds
// the model and its data (the same flags as finch quantize on these models), compress/ removes the
// weakest LSTM/GRU hidden units (and conv channels where the graph allows), a short Adam
// fine-tuning follows (with --distill: against the teacher's logits, compress_series_distill.h), and DIR/model.safetensors keeps the checkpoint's metadata plus the edit, so
// train_series --eval-only, finch quantize and finch verify take it with no other flags.
#pragma once

#include <string>

#include "apps/lib/prune_cmd.h"
#include "apps/lib/series_options.h"

namespace finch::apps {

// Refuses (one sentence) what does not apply to these models: unstructured masks, --model/--width;
// --distill on a forecaster. Returns the exit code (0).
int run_sequence_prune(const PruneOptions& o, SeriesOptions s, const std::string& command_line);

}  // namespace finch::apps
