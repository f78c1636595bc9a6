// TT-SVD of a Linear's weight and the "tt_linear" edit.
#include "compress/tt.h"

#include <algorithm>

#include "compress/lowrank_edit.h"
#include "compress/svd.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/grad_mode.h"

namespace finch::compress {

namespace {
void check_modes(const nn::Linear& dense, const std::vector<int64_t>& in_modes, const std::vector<int64_t>& out_modes) {
  int64_t in = 1, out = 1;
  // Saturating at 2^31 (modes are ≤ 2^31 here), so hostile modes cannot overflow the products.
  for (int64_t m : in_modes)
    if (in <= (int64_t(1) << 31)) in *= std::clamp<int64_t>(m, 1, int64_t(1) << 31);
  for (int64_t n : out_modes)
    if (out <= (int64_t(1) << 31)) out *= std::clamp<int64_t>(n, 1, int64_t(1) << 31);
  if (in != dense.in_features || out != dense.out_features)
    fail("tensor-train: the modes multiply to ", in, " → ", out, ", expected the layer's ", dense.in_features,
         " → ", dense.out_features);
}
}  // namespace

std::shared_ptr<nn::TTLinear> tt_from_linear(const nn::Linear& dense, const std::vector<int64_t>& in_modes,
                                             const std::vector<int64_t>& out_modes,
                                             const std::vector<int64_t>& max_ranks) {
  for (int64_t m : in_modes)
    if (m < 1) fail("tensor-train: expected input modes ≥ 1, found ", m);
  for (int64_t n : out_modes)
    if (n < 1) fail("tensor-train: expected output modes ≥ 1, found ", n);
  check_modes(dense, in_modes, out_modes);
  const size_t d = in_modes.size();
  if (d < 2 || out_modes.size() != d || max_ranks.size() + 1 != d)
    fail("tensor-train: expected d ≥ 2 input and output modes and d − 1 ranks, found ", in_modes.size(), ", ",
         out_modes.size(), " and ", max_ranks.size());
  // W [in, out] as a tensor [m_1 … m_d, n_1 … n_d], interleaved to [m_1, n_1, …, m_d, n_d].
  Shape shape;
  std::vector<int64_t> perm;
  for (int64_t m : in_modes) shape.push_back(m);
  for (int64_t n : out_modes) shape.push_back(n);
  for (size_t k = 0; k < d; ++k) perm.push_back(int64_t(k)), perm.push_back(int64_t(d + k));
  const Tensor w = dense.weight.detach().to(DType::f64).t().contiguous().reshape(shape).permute(perm).contiguous();
  std::vector<double> c = w.to_vector<double>();
  std::vector<std::vector<double>> core_values;
  std::vector<int64_t> ranks{1};
  int64_t cols = w.numel();
  for (size_t k = 0; k + 1 < d; ++k) {
    const int64_t rows = ranks.back() * in_modes[k] * out_modes[k];
    cols /= in_modes[k] * out_modes[k];
    if (max_ranks[k] < 1) fail("tensor-train: expected ranks ≥ 1, found ", max_ranks[k]);
    const Svd s = svd(c, rows, cols);
    const int64_t r = std::min(max_ranks[k], s.k);
    std::vector<double> core(size_t(rows * r));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < r; ++j) core[size_t(i * r + j)] = s.u[size_t(i * s.k + j)];
    core_values.push_back(std::move(core));
    std::vector<double> next(size_t(r * cols));  // diag(S_r) · Vt_r, carried to the next core
    for (int64_t j = 0; j < r; ++j)
      for (int64_t q = 0; q < cols; ++q) next[size_t(j * cols + q)] = s.s[size_t(j)] * s.vt[size_t(j * cols + q)];
    c = std::move(next);
    ranks.push_back(r);
  }
  core_values.push_back(c);
  Generator throwaway(0);  // the cores are overwritten; the default generator must not move
  auto tt = std::make_shared<nn::TTLinear>(in_modes, out_modes, std::vector<int64_t>(ranks.begin() + 1, ranks.end()),
                                           dense.bias.defined(), &throwaway);
  NoGradGuard ng;
  for (size_t k = 0; k < d; ++k) tt->cores[k].copy_(from_vector(core_values[k], tt->cores[k].shape()));
  if (dense.bias.defined()) tt->bias.copy_(dense.bias.detach());
  return tt;
}

nlohmann::json tt_factorize_module(nn::Module& root, const std::string& path, const std::vector<int64_t>& in_modes,
                                   const std::vector<int64_t>& out_modes, const std::vector<int64_t>& max_ranks) {
  nn::Module& m = module_at(root, path);
  auto* dense = dynamic_cast<nn::Linear*>(&m);
  if (!dense) fail("tensor-train: the module at '", path, "' is a ", m.type_name(), ", not a Linear");
  auto tt = tt_from_linear(*dense, in_modes, out_modes, max_ranks);
  tt->train(dense->is_training());
  replace_module(root, path, tt);
  std::vector<int64_t> inner(tt->ranks.begin() + 1, tt->ranks.end() - 1);
  return {{"kind", "tt_linear"}, {"module", path}, {"in_modes", in_modes}, {"out_modes", out_modes}, {"ranks", inner}};
}

void apply_tt_edit(nn::Module& root, const nlohmann::json& edit) {
  const char* what = "a \"tt_linear\" edit";
  if (!edit.is_object() || edit.value("kind", "") != "tt_linear")
    fail(what, ": expected an object with \"kind\": \"tt_linear\", found ", edit.dump());
  const auto module = edit.find("module");
  if (module == edit.end() || !module->is_string() || module->get<std::string>().empty())
    fail(what, ": expected \"module\" to be a non-empty module path, found ", edit.dump());
  const std::string path = module->get<std::string>();
  auto ints = [&](const char* key) {
    const auto it = edit.find(key);
    bool ok = it != edit.end() && it->is_array() && !it->empty() && it->size() <= 16;
    std::vector<int64_t> v;
    if (ok)
      for (const auto& x : *it) {
        ok &= (x.is_number_integer() || x.is_number_unsigned()) && x.get<int64_t>() >= 1 && x.get<int64_t>() <= (int64_t(1) << 31);
        if (ok) v.push_back(x.get<int64_t>());
      }
    if (!ok)
      fail(what, " for '", path, "': expected \"", key, "\" to be a list of 1 to 16 integers in 1..2^31, found ",
           it == edit.end() ? std::string("nothing") : it->dump());
    return v;
  };
  const auto in_modes = ints("in_modes"), out_modes = ints("out_modes");
  const auto ranks = edit.contains("ranks") && edit["ranks"].is_array() && edit["ranks"].empty() ? std::vector<int64_t>{}
                                                                                                  : ints("ranks");
  nn::Module& m = module_at(root, path);
  auto* dense = dynamic_cast<nn::Linear*>(&m);
  if (!dense) fail(what, " for '", path, "': expected a Linear there, found a ", m.type_name());
  try {
    check_modes(*dense, in_modes, out_modes);
    Generator throwaway(0);  // the state dict fills the cores; the default generator must not move
    auto tt = std::make_shared<nn::TTLinear>(in_modes, out_modes, ranks, dense->bias.defined(), &throwaway);
    replace_module(root, path, tt);
  } catch (const Error& e) {
    fail(what, " for '", path, "': ", e.what());
  }
}

}  // namespace finch::compress
