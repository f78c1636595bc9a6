// The program verifier: every check a program must pass before any kernel is prepared or run
// (the role of TFLite's flatbuffer verifier and ONNX's checker). A program file is input, so
// nothing in it is trusted: structure, every attribute against the op schema, every shape
// inferred with overflow-checked arithmetic, the int32 accumulator bound, finite constants,
// preprocessing metadata, and the activation memory per batch image against a limit. After it
// passes, the kernels may assume valid input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/executor.h"
#include "runtime/graph.h"

namespace finch::runtime {

// The default activation limit: 4 GiB per batch image, or FINCH_MAX_ACTIVATION_BYTES when set
// (a positive integer; anything else fails with a sentence naming the variable).
inline constexpr int64_t kDefaultMaxActivationBytes = int64_t(4) << 30;
// The limit `o` asks for (o.max_activation_bytes when > 0, else the default above).
int64_t activation_limit(const ProgramOptions& o);

// Every problem of `g`, one sentence each starting with `what` (the program's file), in the
// order the checks run; empty when the program is valid. A structural problem (an index out of
// range, an unknown op) ends the list early: the later checks would read past it.
std::vector<std::string> verify(const Graph& g, const std::string& what, const ProgramOptions& o = {});

// Bytes of activations one run with a batch of `batch` needs (the arena per image, the plan's
// arena for `declared_batch` images, times the batch), or fails with a sentence naming the batch
// and the limit when it exceeds `limit` or the batch is below 1.
int64_t check_batch_memory(const MemoryPlan& plan, int64_t batch, int64_t limit, const std::string& what,
                           int64_t declared_batch = 1);

}  // namespace finch::runtime
