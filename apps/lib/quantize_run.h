// `finch quantize`: post-training quantization of a trained zoo model (static with calibration,
// dynamic, fp16), evaluated side by side with fp32: the seeds' table (size, accuracy, time and
// their changes), a JSON report, the converted model file and, with --debug, the quantization
// debugger (per fake-quant: error statistics and rmse/scale).
#pragma once

#include <string>
#include <vector>

#include "apps/lib/train_options.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct QuantizeOptions {
  DataOptions data;                // model, dataset, --data, --mean/--std, limits, threads, predictions
  std::string mode = "static";     // static | dynamic | fp16
  std::string qconfig;             // default: int8 (static, dynamic), fp16 (fp16)
  std::string observer = "minmax";
  int64_t calib_batches = 32;
  int64_t batch_size = 64;
  bool fuse = true;
  std::vector<std::string> skip;
  std::string out;                 // the converted model (safetensors)
  std::string report;              // JSON report
  std::string html;                // the same as a self-contained HTML page
  bool debug = false;
  int64_t latency_images = 100;    // batch-1 timing over this many test images
  // Series/text static int8: how the LSTMs' int8 weights are rounded (quant/rnn_rounding.h):
  // output-error (the default) or nearest.
  std::string rnn_rounding = "output-error";
};

void add_quantize_options(CLI::App& app, QuantizeOptions& o);
// Checks and fills defaults after parsing (fails with one sentence).
void finalize_quantize_options(QuantizeOptions& o);
int run_quantize(const QuantizeOptions& o, const std::string& command_line);

}  // namespace finch::apps
