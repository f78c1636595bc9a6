// train_cifar --qat: quantization-aware fine-tuning of a float model (Jacob et al. 2018) and its
// conversion, with the float, QAT and converted accuracies in summary.json.
#pragma once

#include <string>

#include "apps/lib/train_options.h"

namespace finch::apps {

// Calibrates the observers on 16 training batches, then fine-tunes o.checkpoint (float weights) for o.qat_epochs with fake quantization per
// o.qconfig, freezing BN statistics and observers at the chosen epochs, then converts. Writes
// qat_model.safetensors (float weights + quantization state), quantized.safetensors (the
// converted model, integer weights), qat_metrics.csv and adds the qat_* keys to summary.json.
int run_qat(const TrainOptions& o, const std::string& command_line, bool quiet);

}  // namespace finch::apps
