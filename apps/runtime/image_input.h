// The image side of the deployed runners (finch_run, sorter): what a program's input and meta
// say about its images, and one image file → the normalized network input. Shared so both
// runners preprocess every file identically (runtime-only: no data/ or autograd).
#pragma once

#include <string>
#include <vector>

#include "framework/tensor.h"
#include "runtime/graph.h"

namespace finch::apps {

// A classifier program's image input: [N, C, H, W] f32 and the normalization of its meta.
struct ImageInput {
  Shape shape;                       // [N, C, H, W] as recorded (N is a placeholder)
  std::vector<float> mean, std;      // one per channel (meta "mean"/"std"; 0 and 1 without them)
  std::vector<std::string> classes;  // meta "classes" (may be empty: classes are numbered)
  bool softmax_output = false;       // the program ends in a softmax (its outputs are probabilities)
};

// Checks that `g` classifies images (one f32 [N, C, H, W] input, one output) and reads its meta.
// `program` names the file in the error sentence. The verifier (runtime/verify.h, run when the
// Program is built) has already checked meta.mean/std/classes' types and values.
ImageInput image_input_of(const runtime::Graph& g, const std::string& program);

// One image file → [1, C, H, W] f32, preprocessed as the program was trained:
//  - binary PGM (P5) / PPM (P6), maxval 255, exactly the program's size (finch_run's original
//    format): x = (pixel / 255 − mean[c]) / std[c];
//  - PNG, JPEG or BMP (stb_image, framework/image.h) at any size: converted to C channels,
//    resized bilinearly to H×W, then x = (pixel / 255 − mean[c]) · (1 / std[c]) — the float
//    operations of data/'s to_float + normalize, so the logits equal `finch run`'s on an image
//    folder bit for bit.
// A file that is missing, truncated, of the wrong size (PNM) or undecodable is a finch::Error
// naming it.
Tensor load_image(const std::string& path, const ImageInput& in);

// The top class of one output row: its index, its name (meta class or the index) and its
// confidence (the softmax probability of the logits, or the output itself when the program
// already ends in a softmax); `score` is the raw output value finch_run prints.
struct Decision {
  int64_t index = 0;
  std::string name;
  float score = 0, confidence = 0;
};
Decision decide(const float* row, int64_t n, const ImageInput& in);

}  // namespace finch::apps
