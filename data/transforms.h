// Image transforms for training pipelines: the deterministic operations on one image
// (resize, crop, flip, rotate, normalize, brightness/contrast) and seeded random augmentations
// built from them, composable as data::Transform (data/dataset.h).
//
// Shapes: an image is [C, H, W]. Geometric operations (crop, flip, resize, rotate) accept U8,
// F32 or F64 and keep the dtype (U8 results are rounded to nearest and clamped to 0..255);
// normalize needs a float image (apply to_float first); brightness/contrast work on U8 (range
// 0..255) and float (range 0..1). Every result is a new contiguous tensor.
#pragma once

#include <vector>

#include "data/dataset.h"
#include "framework/image.h"

namespace finch::data {

// U8 → F32 divided by 255 (torchvision's ToTensor scaling); a float image is converted to F32.
Tensor to_float(const Tensor& image);
// (x[c] - mean[c]) / std[c] per channel; mean/std have C entries (or 1, used for all channels).
Tensor normalize(const Tensor& image, const std::vector<float>& mean, const std::vector<float>& std);
// Mirrors the columns.
Tensor hflip(const Tensor& image);
// The h×w window whose top-left corner is (top, left); parts outside the image are zero, so
// a negative corner is a crop from a zero-padded image (the CIFAR pad-4-crop-32 recipe).
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w);
// The centred h×w window (torchvision's rounding of the offset); zero-padded if larger.
Tensor center_crop(const Tensor& image, int64_t h, int64_t w);
// Bilinear resize with align_corners=False and no antialiasing: the numbers of
// torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False). It lives
// in framework/image.h because the deployed runners (runtime only) resize with the same code.
using image::resize_bilinear;
// Rotates counter-clockwise by `degrees` about the image centre, bilinear, zero outside.
Tensor rotate(const Tensor& image, double degrees);
// clamp(x · factor) (torchvision's adjust_brightness).
Tensor adjust_brightness(const Tensor& image, float factor);
// clamp(factor · x + (1 − factor) · mean gray) (torchvision's adjust_contrast; gray of RGB is
// 0.2989 R + 0.587 G + 0.114 B).
Tensor adjust_contrast(const Tensor& image, float factor);

// Transform factories. The random ones draw from the sample's generator in a fixed order, so a
// sample's augmentation depends only on that generator's seed.
namespace transforms {
Transform compose(std::vector<Transform> steps);
Transform to_float();
Transform normalize(std::vector<float> mean, std::vector<float> std);
Transform resize(int64_t h, int64_t w);
Transform center_crop(int64_t h, int64_t w);
// Pads `padding` zeros on every side, then crops a uniformly placed h×w window.
Transform random_crop(int64_t h, int64_t w, int64_t padding = 0);
// Flips with probability p (one uniform draw per image whether or not it flips).
Transform random_hflip(float p = 0.5f);
// Rotates by an angle uniform in [−degrees, degrees].
Transform random_rotation(double degrees);
// Brightness factor uniform in [max(0, 1 − brightness), 1 + brightness], then contrast factor
// likewise (fixed order, unlike torchvision's random order, to keep one draw sequence).
Transform color_jitter(float brightness, float contrast);
}  // namespace transforms

}  // namespace finch::data
