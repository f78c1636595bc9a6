// safetensors: bit-exact round trips, a file written by PyTorch, every rejection rule, mutations.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "framework/random.h"
#include "framework/safetensors.h"
#include "tests/temp_dir.h"

using namespace finch;
using finch::test::TempDir;
namespace fs = std::filesystem;

namespace {

const DType kAllDtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                            DType::u8,  DType::i16, DType::i32, DType::i64,  DType::b8};

// A tensor whose bytes are random bit patterns (NaN payloads, subnormals, anything), except BOOL
// which must hold 0/1. Bit-exactness is then checked with memcmp.
Tensor random_bits(const Shape& shape, DType dt, Generator& g) {
  Tensor t = empty(shape, dt);
  auto* p = static_cast<uint8_t*>(t.raw_data());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = uint8_t(dt == DType::b8 ? g.below(2) : g.next_u64());
  return t;
}

std::vector<uint8_t> bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  auto* p = static_cast<const uint8_t*>(c.raw_data());
  return std::vector<uint8_t>(p, p + c.nbytes());
}

void expect_same_tensor(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.shape(), want.shape());
  // (Tensor::is_contiguous() currently says false for some empty shapes like [2, 0]: the
  // strides of empty() use max(size, 1). Without elements the layout does not matter.)
  EXPECT_TRUE(got.numel() == 0 || got.is_contiguous());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw_data()) % 64, 0u) << "storage must be 64-byte aligned";
  EXPECT_EQ(bytes_of(got), bytes_of(want));
}

// A file from a header text and a data section (the header is used verbatim, no padding).
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> f(8);
  f.reserve(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) f[size_t(i)] = uint8_t(n >> (8 * i));
  f.insert(f.end(), header.begin(), header.end());
  f.insert(f.end(), data.begin(), data.end());
  return f;
}

// Parsing must throw finch::Error whose message names the file and contains every `part`.
void expect_rejected(const std::vector<uint8_t>& file, std::initializer_list<const char*> parts) {
  try {
    parse_safetensors(file, "bad.safetensors");
    ADD_FAILURE() << "expected the file to be rejected (wanted: " << *parts.begin() << ")";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'bad.safetensors'"), std::string::npos) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
  }
}

// One valid F32 [2] tensor at [0, 8): the base for header-level corruptions.
const std::string kF32Entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
const std::vector<uint8_t> k8Bytes(8, 0);

}  // namespace

TEST(Safetensors, RoundTripEveryDtypeBitExact) {
  Generator g(7);
  NamedTensors in;
  for (DType dt : kAllDtypes) in.emplace_back(std::string("t_") + dtype_name(dt), random_bits({3, 5}, dt, g));
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"epoch", "3"}, {"note", "a \"quoted\" value, é"}};
  SafetensorsFile f = parse_safetensors(serialize_safetensors(in, meta), "mem");
  ASSERT_EQ(f.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, in[i].first) << "file order must be the order given";
    expect_same_tensor(f.tensors[i].second, in[i].second);
  }
  EXPECT_EQ(f.metadata, meta);
}

TEST(Safetensors, ZeroDimEmptyAndNonContiguous) {
  Generator g(8);
  Tensor base = random_bits({4, 6}, DType::f32, g);
  NamedTensors in = {
      {"scalar", scalar_tensor(2.5, DType::f64)},
      {"empty", zeros({0, 3}, DType::f16)},
      {"empty_bool", empty({2, 0}, DType::b8)},
      {"transposed", base.t()},
      {"strided", base.slice(1, 1, 6, 2)},
      {"expanded", random_bits({1, 3}, DType::i16, g).expand({4, 3})},
      {"bf16_perm", random_bits({2, 3, 4}, DType::bf16, g).permute({2, 0, 1})},
  };
  ASSERT_FALSE(in[3].second.is_contiguous());
  SafetensorsFile f = parse_safetensors(serialize_safetensors(in), "mem");
  ASSERT_EQ(f.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, in[i].first);
    expect_same_tensor(f.tensors[i].second, in[i].second);
  }
  EXPECT_EQ(f.at("scalar").dim(), 0);
  EXPECT_EQ(f.at("scalar").item(), 2.5);
  EXPECT_TRUE(f.metadata.empty());
}

TEST(Safetensors, EmptyFileAndHeaderLayout) {
  const std::vector<uint8_t> none = serialize_safetensors({});
  EXPECT_TRUE(parse_safetensors(none, "mem").tensors.empty());
  // Header padded with spaces to a multiple of 8 so the data section starts 8-byte aligned.
  NamedTensors in = {{"odd_name", ones({3}, DType::u8)}, {"w", ones({2}, DType::f64)}};
  const std::vector<uint8_t> b = serialize_safetensors(in, {{"k", "v"}});
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(b[8], '{');
  EXPECT_EQ(b.size(), 8 + n + 3 + 16);
  const std::string header(b.begin() + 8, b.begin() + 8 + long(n));
  EXPECT_EQ(header.find("\"__metadata__\""), 1u) << "metadata first, as the reference writes it: " << header;
}

TEST(Safetensors, SaveLoadFileAndLookups) {
  TempDir dir;
  Generator g(9);
  NamedTensors in = {{"layer1.0.conv1.weight", random_bits({4, 3, 3, 3}, DType::f32, g)},
                     {"bn1.num_batches_tracked", scalar_tensor(12, DType::i64)}};
  const std::string path = dir.file("m.safetensors");
  save_safetensors(path, in, {{"format", "pt"}});
  SafetensorsFile f = load_safetensors(path);
  EXPECT_EQ(f.source, path);
  EXPECT_TRUE(f.contains("bn1.num_batches_tracked"));
  EXPECT_FALSE(f.contains("fc.weight"));
  expect_same_tensor(f.at("layer1.0.conv1.weight"), in[0].second);
  EXPECT_EQ(f.to_map().at("bn1.num_batches_tracked").item(), 12.0);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  try {
    f.at("fc.weight");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  // Saving again replaces the file atomically and leaves no temporary behind.
  save_safetensors(path, {{"x", ones({1})}});
  EXPECT_EQ(load_safetensors(path).tensors.size(), 1u);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) files += 1, (void)e;
  EXPECT_EQ(files, 1);
}

TEST(Safetensors, ReadsFileWrittenByPyTorch) {
  // Generated by tests/golden/make_safetensors_sample.py (torch 1.13 + shared/tools/peer/st.py).
  SafetensorsFile f = load_safetensors(FINCH_TEST_DATA_DIR "/golden/data/torch_sample.safetensors");
  std::vector<std::string> names;
  for (auto& [n, t] : f.tensors) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"f32", "f64", "f16", "bf16", "i8", "u8", "i16", "i32",
                                             "i64", "bool", "scalar", "empty", "transposed"}));
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"source", "make_safetensors_sample.py"}}));

  const Tensor& f32 = f.at("f32");
  EXPECT_EQ(f32.shape(), (Shape{2, 3}));
  std::vector<uint32_t> f32_bits(6);
  std::memcpy(f32_bits.data(), f32.raw_data(), 24);
  EXPECT_EQ(f32_bits, (std::vector<uint32_t>{0x3fc00000, 0xc0100000, 0x3dcccccd, 0x7f61b1e6, 0x80000000, 0x1}));
  EXPECT_EQ(f32.to_vector<float>()[2], 0.1f);
  EXPECT_EQ(f.at("f64").to_vector<double>(), (std::vector<double>{0.1, -1e300, 0x1p-1074}));
  const f16* h = f.at("f16").data<f16>();
  EXPECT_EQ(h[0].bits, 0x3800);
  EXPECT_EQ(h[1].bits, 0xbd00);
  EXPECT_EQ(h[2].bits, 0x7bff);
  EXPECT_EQ(h[3].bits, 0x0001);
  EXPECT_EQ(f.at("f16").to_vector<float>()[2], 65504.0f);
  const bf16* b = f.at("bf16").data<bf16>();
  EXPECT_EQ(b[0].bits, 0x3f80);
  EXPECT_EQ(b[1].bits, 0xc060);
  EXPECT_EQ(b[2].bits, 0x714a);
  EXPECT_EQ(f.at("i8").to_vector<int64_t>(), (std::vector<int64_t>{-128, 0, 127}));
  EXPECT_EQ(f.at("u8").to_vector<int64_t>(), (std::vector<int64_t>{0, 200, 255}));
  EXPECT_EQ(f.at("i16").to_vector<int64_t>(), (std::vector<int64_t>{-32768, 1234, 32767}));
  EXPECT_EQ(f.at("i32").to_vector<int64_t>(), (std::vector<int64_t>{INT32_MIN, 7, INT32_MAX}));
  const int64_t* i64 = f.at("i64").data<int64_t>();
  EXPECT_EQ(i64[0], INT64_MIN);
  EXPECT_EQ(i64[1], 42);
  EXPECT_EQ(i64[2], INT64_MAX);
  EXPECT_EQ(f.at("bool").dtype(), DType::b8);
  EXPECT_EQ(f.at("bool").to_vector<int>(), (std::vector<int>{1, 0, 0, 1}));
  EXPECT_EQ(f.at("scalar").dim(), 0);
  EXPECT_EQ(f.at("scalar").item(), 3.25);
  EXPECT_EQ(f.at("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(f.at("transposed").shape(), (Shape{3, 2}));
  EXPECT_EQ(f.at("transposed").to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));

  // And finch's own output of these tensors reads back identically.
  SafetensorsFile again = parse_safetensors(serialize_safetensors(f.tensors, f.metadata), "mem");
  for (size_t i = 0; i < f.tensors.size(); ++i) expect_same_tensor(again.tensors[i].second, f.tensors[i].second);
}

TEST(SafetensorsRejects, FileAndHeaderLength) {
  expect_rejected({1, 2, 3}, {"at least 8 bytes", "3 bytes"});
  expect_rejected({}, {"at least 8 bytes", "0 bytes"});
}

TEST(SafetensorsRejects, EveryRule) {
  // A valid minimal file first, so each case below fails for its own reason only.
  ASSERT_EQ(parse_safetensors(make_file("{" + kF32Entry + "}", k8Bytes), "ok").tensors.size(), 1u);
  ASSERT_EQ(parse_safetensors(make_file("{}"), "ok").tensors.size(), 0u);

  // Header length.
  std::vector<uint8_t> f = make_file("{}");
  f[0] = 200;
  expect_rejected(f, {"header length", "200 bytes", "truncated"});
  f = make_file("{}");
  f[4] = 1;  // 2^32 + 2
  expect_rejected(f, {"header length", "at most 100000000"});
  // Header JSON.
  expect_rejected(make_file("{\"a\":"), {"valid JSON"});
  expect_rejected(make_file("[1,2]"), {"JSON object", "array"});
  expect_rejected(make_file(""), {"valid JSON"});
  expect_rejected(make_file("{\"a\":\"\xff\"}"), {"valid JSON"});  // not UTF-8
  expect_rejected(make_file("{\"a\":5}"), {"tensor \"a\"", "expected an object", "number"});
  // Missing fields / wrong JSON types.
  expect_rejected(make_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", k8Bytes), {"\"dtype\" field"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", k8Bytes), {"\"shape\" field"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2]}})", k8Bytes), {"\"data_offsets\" field"});
  expect_rejected(make_file(R"({"a":{"dtype":5,"shape":[2],"data_offsets":[0,8]}})", k8Bytes), {"\"dtype\" to be a string"});
  expect_rejected(make_file(R"({"a":{"dtype":"F8","shape":[2],"data_offsets":[0,8]}})", k8Bytes), {"expected dtype", "\"F8\""});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", k8Bytes), {"\"shape\" to be an array"});
  // Shapes.
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", k8Bytes), {"shape[0]", "-2", "non-negative"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", k8Bytes), {"shape[0]", "non-negative integer"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", k8Bytes), {"more than 2^63 elements"});
  expect_rejected(make_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", k8Bytes), {"more than 2^63 bytes"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", k8Bytes), {"below 2^63"});
  // data_offsets.
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", k8Bytes), {"[begin, end]"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":{"b":0}}})", k8Bytes), {"[begin, end]"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", k8Bytes), {"data_offsets[1]"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", k8Bytes), {"begin <= end", "[8, 0]"});
  expect_rejected(make_file("{" + kF32Entry + "}", {0, 0, 0, 0}), {"[0, 8]", "only 4 bytes", "truncated"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", k8Bytes), {"needs 12 bytes", "hold 8"});
  // Tiling of the data section.
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8Bytes),
                  {"\"b\"", "overlaps", "\"a\""});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8Bytes), {"bytes [0, 4)", "no tensor"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[0],"data_offsets":[6,6]}})", k8Bytes),
                  {"bytes [4, 6)", "no tensor"});
  expect_rejected(make_file("{" + kF32Entry + "}", std::vector<uint8_t>(12, 0)), {"12 bytes", "cover only 8", "trailing"});
  expect_rejected(make_file("{}", {1, 2}), {"2 bytes", "cover only 0"});
  // Names and metadata.
  expect_rejected(make_file("{" + kF32Entry + "," + kF32Entry + "}", k8Bytes), {"\"a\" twice"});
  expect_rejected(make_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8Bytes), {"\"dtype\" twice"});
  expect_rejected(make_file(R"({"__metadata__":{"k":1}})"), {"__metadata__", "\"k\"", "expected a string"});
  expect_rejected(make_file(R"({"__metadata__":["x"]})"), {"__metadata__", "array"});
  // BOOL bytes other than 0/1 would be undefined behaviour when read as C++ bool.
  expect_rejected(make_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", {1, 0, 2}),
                  {"BOOL tensor \"m\"", "byte 2", "element 2", "0 or 1"});
  // null metadata is what the reference's Option reads as "none": accepted.
  EXPECT_TRUE(parse_safetensors(make_file(R"({"__metadata__":null})"), "ok").metadata.empty());
}

TEST(SafetensorsRejects, FileSystemAndWriterErrors) {
  TempDir dir;
  auto expect_error = [](auto&& fn, std::initializer_list<const char*> parts) {
    try {
      fn();
      ADD_FAILURE() << "expected finch::Error containing " << *parts.begin();
    } catch (const Error& e) {
      for (const char* p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  const std::string missing = dir.file("nope.safetensors");
  expect_error([&] { load_safetensors(missing); }, {missing.c_str(), "No such file"});
  expect_error([&] { load_safetensors(dir.path.string()); }, {"directory"});
  const std::string in_missing_dir = dir.file("no_dir/m.safetensors");
  expect_error([&] { save_safetensors(in_missing_dir, {{"a", ones({1})}}); }, {in_missing_dir.c_str(), "does not exist"});
  expect_error([&] { serialize_safetensors({{"a", ones({1})}, {"a", ones({1})}}); }, {"\"a\" twice"});
  expect_error([&] { serialize_safetensors({{"a", Tensor()}}); }, {"\"a\"", "undefined"});
  expect_error([&] { serialize_safetensors({{"__metadata__", ones({1})}}); }, {"reserved"});
  expect_error([&] { serialize_safetensors({{"\xff", ones({1})}}); }, {"UTF-8"});
  // A truncated file on disk reports the file name and the truncation.
  const std::string cut = dir.file("cut.safetensors");
  std::vector<uint8_t> b = serialize_safetensors({{"w", ones({16})}});
  std::ofstream(cut, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size() - 5));
  expect_error([&] { load_safetensors(cut); }, {cut.c_str(), "truncated"});
}

// Random corruption of valid files must end in success or finch::Error: never a crash, a hang,
// or another exception type (this test also runs under AddressSanitizer/UBSan; see fuzz/).
TEST(SafetensorsRejects, RandomMutationsNeverCrash) {
  Generator g(2024);
  const std::vector<uint8_t> valid = serialize_safetensors(
      {{"w", random_bits({3, 4}, DType::f32, g)},
       {"m", random_bits({5}, DType::b8, g)},
       {"h", random_bits({2, 2}, DType::bf16, g)},
       {"s", scalar_tensor(1, DType::i64)},
       {"e", zeros({0})}},
      {{"format", "pt"}});
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> f = valid;
    const int kind = int(g.below(4));
    const int edits = 1 + int(g.below(4));
    for (int k = 0; k < edits; ++k) {
      const size_t pos = size_t(g.below(f.size()));
      if (kind == 0) f[pos] ^= uint8_t(1u << g.below(8));                  // bit flip anywhere
      else if (kind == 1) f[size_t(g.below(std::min<size_t>(f.size(), 24)))] = uint8_t(g.next_u64());  // length/start
      else if (kind == 2) f[pos] = "{}[],:\"0123456789-e. "[g.below(21)];  // JSON-ish bytes
      else f.resize(size_t(g.below(f.size())));                          // truncation
      if (f.empty()) break;
    }
    try {
      SafetensorsFile r = parse_safetensors(f, "mutated");
      ++accepted;
      for (auto& [n, t] : r.tensors) ASSERT_TRUE(t.defined());
    } catch (const Error& e) {
      ++rejected;
      ASSERT_NE(std::string(e.what()).find("mutated"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": unexpected exception type: " << e.what();
    }
  }
  EXPECT_GT(rejected, 1000);  // most corruptions are caught...
  EXPECT_GT(accepted, 0);     // ...while flips inside tensor data are legitimately accepted
}
