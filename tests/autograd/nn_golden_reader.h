// A minimal safetensors reader for the nn/optim golden tests (any dtype finch names): 8-byte
// little-endian header length, JSON header {name: {dtype, shape, data_offsets}}, raw data.
// Kept in the tests so they read PyTorch's numbers without Python or framework IO.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace finch::test {

inline std::map<std::string, Tensor> read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("read_safetensors: cannot open ", path);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), std::streamsize(n));
  if (!f) fail("read_safetensors: ", path, " is truncated inside its header");
  const std::vector<char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::map<std::string, Tensor> out;
  const nlohmann::json index = nlohmann::json::parse(header);
  for (auto it = index.begin(); it != index.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const nlohmann::json& v = it.value();
    Tensor t = empty(v["shape"].get<Shape>(), dtype_from_name(v["dtype"].get<std::string>()));
    const auto off = v["data_offsets"].get<std::vector<size_t>>();
    if (off[1] - off[0] != t.nbytes() || off[1] > data.size())
      fail("read_safetensors: entry ", it.key(), " of ", path, " does not fit its shape and dtype");
    std::memcpy(t.raw_data(), data.data() + off[0], t.nbytes());
    out[it.key()] = t;
  }
  return out;
}

inline std::string golden_path(const std::string& file) {
  return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + file;
}

}  // namespace finch::test
