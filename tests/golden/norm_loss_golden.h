// A minimal safetensors reader for the norm/loss golden tests (F64 and I64 only), so the tests
// read PyTorch's numbers without Python and without depending on framework IO.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "framework/tensor.h"

namespace finch::test {

inline std::map<std::string, Tensor> read_goldens(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("read_goldens: cannot open ", path);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), std::streamsize(n));
  const auto j = nlohmann::json::parse(header);
  const std::streamoff base = std::streamoff(8 + n);
  std::map<std::string, Tensor> out;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") continue;
    const DType dt = dtype_from_name(v["dtype"].get<std::string>());
    const Shape shape = v["shape"].get<Shape>();
    const auto off = v["data_offsets"].get<std::vector<int64_t>>();
    Tensor t = empty(shape, dt);
    FINCH_CHECK(int64_t(t.nbytes()) == off[1] - off[0], "golden ", name, " size mismatch");
    f.seekg(base + off[0]);
    f.read(static_cast<char*>(t.raw_data()), std::streamsize(t.nbytes()));
    FINCH_CHECK(bool(f), "read_goldens: truncated file ", path);
    out[name] = t;
  }
  return out;
}

inline std::string golden_path(const std::string& file) {
  return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + file;
}

}  // namespace finch::test
