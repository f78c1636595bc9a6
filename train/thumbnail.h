// Thumbnails for report.html: an image tensor as a PNG data URI (no network, no image library),
// and the most confidently wrong test images of an evaluation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "framework/tensor.h"
#include "train/metrics.h"

namespace finch::train {

// A PNG file of 8-bit pixels, rows top to bottom, `channels` 1 (gray) or 3 (RGB) interleaved.
// The zlib stream uses stored (uncompressed) blocks: thumbnails are tiny, and it keeps the
// encoder a few lines with no dependency.
std::string encode_png(const std::vector<uint8_t>& pixels, int64_t width, int64_t height, int channels);

std::string base64(const std::string& bytes);

// An image [C, H, W] (C 1 or 3, any dtype; normalized images are fine) as
// "data:image/png;base64,…", its values stretched min..max to 0..255.
std::string image_data_uri(const Tensor& image);

struct Thumbnail {
  int64_t index = 0;  // in the evaluated dataset
  int64_t label = 0, predicted = 0;
  double confidence = 0;  // softmax probability of `predicted`
  std::string data_uri;
};

// The (at most) `n` most confidently wrong images of `r` (evaluated over `dataset` in order).
std::vector<Thumbnail> confident_mistake_thumbnails(const data::Dataset& dataset, const EvalResult& r, size_t n);

}  // namespace finch::train
