// The "lowrank" edit: building the two-layer factorized module, finding and replacing modules by
// path, and reading the edit back from a weight file's metadata.
#include "compress/lowrank_edit.h"

#include <algorithm>
#include <memory>

#include "autograd/nn/container.h"
#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "framework/error.h"
#include "framework/random.h"

namespace finch::compress {

namespace {
// Zero weights; the constructors' init draws from a throwaway generator, so factorizing (or
// loading a factorized file) never moves the default generator that training's shuffling, dropout
// and later inits draw from.
template <typename M>
std::shared_ptr<M> zeroed(std::shared_ptr<M> m) {
  for (Tensor& p : m->parameters()) p.detach().zero_();
  return m;
}
}  // namespace

nn::ModulePtr make_factorized(const nn::Module& dense, int64_t rank) {
  Generator throwaway(0);
  if (auto* l = dynamic_cast<const nn::Linear*>(&dense)) {
    const int64_t full = std::min(l->in_features, l->out_features);
    if (rank < 1 || rank > full) fail("low-rank Linear: rank ", rank, " is outside 1..", full);
    auto first = zeroed(std::make_shared<nn::Linear>(l->in_features, rank, /*bias=*/false, &throwaway));
    auto second = zeroed(std::make_shared<nn::Linear>(rank, l->out_features, l->bias.defined(), &throwaway));
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{first, second});
  }
  if (auto* c = dynamic_cast<const nn::Conv2d*>(&dense)) {
    if (c->options.groups != 1)
      fail("low-rank Conv2d: a grouped conv (groups ", c->options.groups, ") is not factorized");
    const int64_t fan_in = c->in_channels * c->kernel_size.first * c->kernel_size.second;
    const int64_t full = std::min(fan_in, c->out_channels);
    if (rank < 1 || rank > full) fail("low-rank Conv2d: rank ", rank, " is outside 1..", full);
    auto first = zeroed(std::make_shared<nn::Conv2d>(c->in_channels, rank, c->kernel_size, c->options, false, &throwaway));
    auto second = zeroed(std::make_shared<nn::Conv2d>(rank, c->out_channels, std::pair<int64_t, int64_t>{1, 1},
                                                      Conv2dParams{}, c->bias.defined(), &throwaway));
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{first, second});
  }
  fail("low-rank: a ", dense.type_name(), " cannot be factorized (only Linear and Conv2d)");
}

nn::Module& module_at(nn::Module& root, const std::string& path) {
  if (path.empty()) return root;
  for (auto& [name, m] : root.named_modules())
    if (name == path) return *m;
  fail("the model has no module at '", path, "'");
}

void replace_module(nn::Module& root, const std::string& path, nn::ModulePtr m) {
  const size_t dot = path.rfind('.');
  nn::Module& parent = dot == std::string::npos ? root : module_at(root, path.substr(0, dot));
  const std::string child = dot == std::string::npos ? path : path.substr(dot + 1);
  if (path.empty()) fail("low-rank: the model's root cannot be replaced");
  parent.replace_child(child, std::move(m));
}

nlohmann::json lowrank_edit(const std::string& path, int64_t rank, const std::string& layer) {
  return {{"kind", "lowrank"}, {"module", path}, {"rank", rank}, {"layer", layer}};
}

void apply_lowrank_edit(nn::Module& root, const nlohmann::json& edit) {
  const char* what = "a \"lowrank\" edit";
  if (!edit.is_object() || edit.value("kind", "") != "lowrank")
    fail(what, ": expected an object with \"kind\": \"lowrank\", found ", edit.dump());
  const auto module = edit.find("module");
  const auto rank = edit.find("rank");
  const auto layer = edit.find("layer");
  if (module == edit.end() || !module->is_string() || module->get<std::string>().empty())
    fail(what, ": expected \"module\" to be a non-empty module path, found ", edit.dump());
  if (rank == edit.end() || !(rank->is_number_integer() || rank->is_number_unsigned()) || rank->get<int64_t>() < 1)
    fail(what, " for '", module->get<std::string>(), "': expected \"rank\" to be an integer ≥ 1, found ",
         rank == edit.end() ? std::string("nothing") : rank->dump());
  if (layer == edit.end() || !layer->is_string() || (*layer != "linear" && *layer != "conv"))
    fail(what, " for '", module->get<std::string>(), "': expected \"layer\" to be \"linear\" or \"conv\", found ",
         layer == edit.end() ? std::string("nothing") : layer->dump());
  const std::string path = module->get<std::string>();
  nn::Module& dense = module_at(root, path);
  const bool is_linear = dynamic_cast<nn::Linear*>(&dense) != nullptr;
  const bool is_conv = dynamic_cast<nn::Conv2d*>(&dense) != nullptr;
  if ((*layer == "linear" && !is_linear) || (*layer == "conv" && !is_conv))
    fail(what, " for '", path, "': expected a ", *layer == "linear" ? "Linear" : "Conv2d", " there, found a ",
         dense.type_name());
  try {
    replace_module(root, path, make_factorized(dense, rank->get<int64_t>()));
  } catch (const Error& e) {
    fail(what, " for '", path, "': ", e.what());
  }
}

}  // namespace finch::compress
