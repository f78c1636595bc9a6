// Image files and the one resize every consumer shares: stb_image decoding (PNG, JPEG, BMP) to
// planar U8 [C, H, W] and PyTorch's bilinear resize. Here in framework/ (below data/ and runtime/)
// so the training data pipeline (data/image_folder.h) and the deployed runners (finch_run,
// sorter: runtime-only) preprocess an image with the same code and get the same numbers.
#pragma once

#include <cstdint>
#include <string>

#include "framework/tensor.h"

namespace finch::image {

// Decodes one image file into U8 [C, H, W] with C = `channels` (1: stb's luminance of RGB; 3: gray
// is replicated), resized (resize_bilinear) to height×width when those are non-zero. A missing or
// undecodable file is a finch::Error naming it and stb's reason.
Tensor decode_image(const std::string& path, int channels, int64_t height = 0, int64_t width = 0);

// Bilinear resize of a [C, H, W] image (U8, F32 or F64; U8 rounds to nearest and saturates) with
// align_corners=False and no antialiasing: the numbers of
// torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False).
Tensor resize_bilinear(const Tensor& image, int64_t h, int64_t w);

}  // namespace finch::image
