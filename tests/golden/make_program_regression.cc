// Generates tests/golden/data/programs_028b406/expected.safetensors with the tree at 028b406 (its
// include paths: quant/runtime/...); kept for the record, not built (see that folder's README).
#include <cstdio>
#include "framework/safetensors.h"
#include "quant/runtime/executor.h"
#include "quant/runtime/program_file.h"
using namespace finch;
int main(int argc, char** argv) {
  const SafetensorsFile img = load_safetensors(argv[1]);
  const Tensor u8 = img.at("images").narrow(0, 0, 8).contiguous();
  Tensor x = u8.to(DType::f32).contiguous();
  float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = (p[i] / 255.0f - 0.2860f) / 0.3530f;
  x = x.reshape({8, 1, 28, 28}).contiguous();
  NamedTensors out{{"input", x}};
  for (int a = 3; a < argc; ++a) {
    std::string path = argv[a];
    std::string name = path.substr(path.rfind('/') + 1);
    name = name.substr(0, name.size() - 6);
    runtime::Program prog(runtime::read_program(path), path);
    out.emplace_back(name + ".batch8", prog.run(x).to(DType::f32).contiguous());
    std::vector<Tensor> rows;
    for (int64_t i = 0; i < 8; ++i) rows.push_back(prog.run(x.narrow(0, i, 1).contiguous()).to(DType::f32).contiguous());
    Tensor r = empty({8, rows[0].numel()}, DType::f32);
    for (int64_t i = 0; i < 8; ++i) std::copy(rows[i].data<float>(), rows[i].data<float>() + rows[i].numel(), r.data<float>() + i * rows[0].numel());
    out.emplace_back(name + ".batch1", r);
  }
  save_safetensors(argv[2], out, {{"made_by", "finch 028b406 (before the compile/runtime move)"}});
}
