// The image-folder dataset: directory scan; decoding and resizing are framework/image.h's.
#include "data/image_folder.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "data/transforms.h"


namespace finch::data {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

void check_options(const ImageFolderOptions& o, const char* op) {
  if (o.channels != 1 && o.channels != 3) fail(op, ": expected channels 1 or 3, found ", o.channels);
  if (o.height < 0 || o.width < 0 || (o.height == 0) != (o.width == 0))
    fail(op, ": expected a target size with both height and width > 0 (or both 0 to keep the decoded "
         "size), found ", o.height, "x", o.width);
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(const std::string& root, ImageFolderOptions options, Transform transform)
    : options_(options), transform_(std::move(transform)) {
  const char* op = "ImageFolderDataset";
  check_options(options_, op);
  if (!fs::is_directory(root)) fail(op, ": image folder ", root, " does not exist");
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes_.push_back(e.path().filename().string());
  std::sort(classes_.begin(), classes_.end());
  if (classes_.empty())
    fail(op, ": ", root, " has no class subfolders (expected root/<class>/<image files>)");
  for (size_t k = 0; k < classes_.size(); ++k) {
    const fs::path dir = fs::path(root) / classes_[k];
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path().string());
    if (found.empty())
      fail(op, ": empty class folder ", dir.string(), ": expected .png, .jpg, .jpeg or .bmp files, found none");
    std::sort(found.begin(), found.end());
    for (auto& f : found) {
      files_.push_back(std::move(f));
      labels_.push_back(int64_t(k));
    }
  }
}

Sample ImageFolderDataset::get(int64_t index, Generator& gen) const {
  if (index < 0 || index >= size())
    fail("ImageFolderDataset::get: index ", index, " is outside [0, ", size(), ")");
  Sample s{decode_image(files_[size_t(index)], options_.channels, options_.height, options_.width),
           labels_[size_t(index)], {}};
  if (transform_) s.image = transform_(s.image, gen);
  return s;
}

int64_t ImageFolderDataset::label(int64_t index) const {
  if (index < 0 || index >= size())
    fail("ImageFolderDataset::label: index ", index, " is outside [0, ", size(), ")");
  return labels_[size_t(index)];
}

LabeledImages load_image_folder(const std::string& root, ImageFolderOptions options) {
  ImageFolderDataset ds(root, options);
  Generator unused(0);
  LabeledImages out;
  out.classes = ds.classes();
  const int64_t n = ds.size();
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Sample s = ds.get(i, unused);
    if (!out.images.defined()) {
      Shape sh = s.image.shape();
      sh.insert(sh.begin(), n);
      out.images = empty(sh, DType::u8);
    } else if (s.image.shape() != out.images.select(0, 0).shape()) {
      fail("load_image_folder: ", ds.files()[size_t(i)], " is ", s.image.size(1), "x", s.image.size(2),
           " but ", ds.files()[0], " is ", out.images.size(2), "x", out.images.size(3),
           "; set ImageFolderOptions height and width to resize every image to one size");
    }
    std::memcpy(static_cast<uint8_t*>(out.images.raw_data()) + i * s.image.numel(), s.image.raw_data(),
                size_t(s.image.numel()));
    labels[size_t(i)] = s.label;
  }
  out.labels = from_vector<int64_t>(labels, {n});
  return out;
}

}  // namespace finch::data
