// Sequential and ModuleList.
#include "autograd/nn/container.h"

#include <string>

namespace finch::nn {

Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(const std::vector<ModulePtr>& modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(ModulePtr m) {
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
}

const ModulePtr& Sequential::operator[](size_t i) const {
  if (i >= layers_.size()) fail("Sequential: index ", i, " is out of range for ", layers_.size(), " modules");
  return layers_[i];
}

Tensor Sequential::forward_impl(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : layers_) y = m->forward(y);
  return y;
}

ModuleList::ModuleList(std::initializer_list<ModulePtr> modules) {
  for (const auto& m : modules) push_back(m);
}

void ModuleList::push_back(ModulePtr m) {
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

const ModulePtr& ModuleList::operator[](size_t i) const {
  if (i >= items_.size()) fail("ModuleList: index ", i, " is out of range for ", items_.size(), " modules");
  return items_[i];
}

}  // namespace finch::nn
