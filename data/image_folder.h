// Image folders (torchvision's ImageFolder layout): root/<class>/<image>, one subfolder per
// class, classes sorted by name and numbered from 0. PNG, JPEG and BMP are decoded with
// stb_image, converted to the requested channel count and resized (bilinear) to a fixed size.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "framework/image.h"

namespace finch::data {

struct ImageFolderOptions {
  int channels = 3;    // 1 (grayscale: stb's luminance of RGB) or 3 (gray is replicated)
  int64_t height = 0;  // target size; 0 keeps the decoded size (then every image must match)
  int64_t width = 0;
};

// Decodes one image file into U8 [C, H, W] with C = `channels`, resized to height×width when
// those are non-zero. An undecodable file is an error naming it and stb's reason. It lives in
// framework/image.h because the deployed runners (runtime only) decode with the same code.
using image::decode_image;

// The folder's files decoded on demand in get() (so DataLoader workers share the decoding).
// The constructor scans the folder: a missing folder, no class subfolders, or a class folder
// without images is an error. Files in a class folder are sorted by name.
class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(const std::string& root, ImageFolderOptions options = {},
                              Transform transform = nullptr);
  int64_t size() const override { return int64_t(files_.size()); }
  Sample get(int64_t index, Generator& gen) const override;
  int64_t label(int64_t index) const override;
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<std::string>& files() const { return files_; }

 private:
  ImageFolderOptions options_;
  Transform transform_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
};

// Decodes a whole image folder into memory: U8 [N, C, H, W] (needs a fixed size: either the
// options' height/width or images that all share one size), labels and class names.
LabeledImages load_image_folder(const std::string& root, ImageFolderOptions options = {});

}  // namespace finch::data
