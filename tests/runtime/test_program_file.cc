// .finch program files: exact round trips (every dtype, per-tensor and per-channel quant, absent
// inputs, meta), the compressed JSON and short float scales, every rejection rule, mutations.
#include <gtest/gtest.h>

#include <bit>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "framework/random.h"
#include "runtime/program_file.h"
#include "tests/error_text.h"
#include "tests/runtime/program_bytes.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::runtime;
using finch::test::ProgramParts;
using ojson = nlohmann::ordered_json;

namespace {

const DType kAllDtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                            DType::u8,  DType::i16, DType::i32, DType::i64,  DType::b8};

// Random bit patterns (NaN payloads, subnormals, anything); BOOL holds 0/1.
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

QuantInfo per_tensor(float s, int32_t z, int64_t qmin = -128, int64_t qmax = 127) {
  return QuantInfo{{s}, {z}, -1, qmin, qmax};
}

// A small int8 program touching every feature the file stores: a constant of every dtype (one
// empty), per-tensor and per-channel quant, an absent optional input, attrs and meta.
Graph sample_graph(uint64_t seed = 7) {
  Generator g(seed);
  Graph gr;
  const int32_t x = gr.add_value({"input", {1, 3, 4, 4}, DType::f32, std::nullopt, {}});
  const int32_t xq = gr.add_value({"input.q", {1, 3, 4, 4}, DType::i8, per_tensor(0.0213f, -3), {}});
  QuantInfo wq{{0.011f, 0.0007312f, 1.5e-9f, 3.0f}, {0, 0, 0, 0}, 0, -127, 127};
  const int32_t w = gr.add_value({"conv.weight", {4, 3, 3, 3}, DType::i8, wq, random_bits({4, 3, 3, 3}, DType::i8, g)});
  const int32_t rq = gr.add_value({"conv.rq", {4, 2}, DType::i32, std::nullopt, random_bits({4, 2}, DType::i32, g)});
  const int32_t y = gr.add_value({"conv.out", {1, 4, 2, 2}, DType::u8, per_tensor(0.05f, 128, 0, 255), {}});
  const int32_t out = gr.add_value({"output", {1, 4, 2, 2}, DType::f32, std::nullopt, {}});
  for (DType dt : kAllDtypes)
    gr.add_value({std::string("const_") + dtype_name(dt), {3, 5}, dt, std::nullopt, random_bits({3, 5}, dt, g)});
  gr.add_value({"empty", {0, 4}, DType::f32, std::nullopt, zeros({0, 4})});
  gr.nodes.push_back({"quantize", "input.quant", {x}, {xq}, nlohmann::json::object()});
  gr.nodes.push_back({"qconv2d", "conv", {xq, w, -1, rq}, {y},
                      {{"stride", {2, 2}}, {"padding", {0, 0}}, {"dilation", {1, 1}}, {"groups", 1},
                       {"act", "relu"}, {"qmin", 128}, {"qmax", 255}}});
  gr.nodes.push_back({"dequantize", "conv.dq", {y}, {out}, nlohmann::json::object()});
  gr.inputs = {x};
  gr.outputs = {out};
  gr.meta = {{"model", "tiny"}, {"precision", "int8"}, {"mean", {0.4914, 0.4822, 0.4465}},
             {"classes", {"cat", "dog"}}, {"nested", {{"depth", {{"ok", true}}}}}};
  return gr;
}

void expect_same_graph(const Graph& got, const Graph& want) {
  ASSERT_EQ(got.values.size(), want.values.size());
  for (size_t i = 0; i < want.values.size(); ++i) {
    const Value& a = got.values[i];
    const Value& b = want.values[i];
    SCOPED_TRACE(b.name);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(a.dtype, b.dtype);
    ASSERT_EQ(a.quant.has_value(), b.quant.has_value());
    if (b.quant) {
      ASSERT_EQ(a.quant->scale.size(), b.quant->scale.size());
      for (size_t k = 0; k < b.quant->scale.size(); ++k)
        EXPECT_EQ(std::bit_cast<uint32_t>(a.quant->scale[k]), std::bit_cast<uint32_t>(b.quant->scale[k]));
      EXPECT_EQ(a.quant->zero_point, b.quant->zero_point);
      EXPECT_EQ(a.quant->axis, b.quant->axis);
      EXPECT_EQ(a.quant->qmin, b.quant->qmin);
      EXPECT_EQ(a.quant->qmax, b.quant->qmax);
    }
    ASSERT_EQ(a.is_constant(), b.is_constant());
    if (b.is_constant()) {
      EXPECT_EQ(a.data.dtype(), b.dtype);
      EXPECT_EQ(a.data.shape(), b.shape);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data.raw_data()) % 64, 0u);
      EXPECT_EQ(bytes_of(a.data), bytes_of(b.data));
    }
  }
  ASSERT_EQ(got.nodes.size(), want.nodes.size());
  for (size_t j = 0; j < want.nodes.size(); ++j) {
    EXPECT_EQ(got.nodes[j].op, want.nodes[j].op);
    EXPECT_EQ(got.nodes[j].name, want.nodes[j].name);
    EXPECT_EQ(got.nodes[j].inputs, want.nodes[j].inputs);
    EXPECT_EQ(got.nodes[j].outputs, want.nodes[j].outputs);
    EXPECT_EQ(got.nodes[j].attrs, want.nodes[j].attrs);
  }
  EXPECT_EQ(got.inputs, want.inputs);
  EXPECT_EQ(got.outputs, want.outputs);
  EXPECT_EQ(got.meta, want.meta);
}

// Parsing must throw finch::Error naming the file and containing every `part`.
void expect_rejected(const std::vector<uint8_t>& file, std::initializer_list<const char*> parts) {
  try {
    parse_program(file.data(), file.size(), "bad.finch");
    ADD_FAILURE() << "expected the file to be rejected (wanted: " << *parts.begin() << ")";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("program file 'bad.finch': "), std::string::npos) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
  }
}

// The sample program with its JSON edited by `edit` (then re-packed with a correct CRC).
template <typename Edit>
std::vector<uint8_t> edited(Edit edit, uint32_t flags = 1) {
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  ojson doc = ojson::parse(p.json);
  edit(doc);
  p.json = doc.dump();
  p.flags = flags;
  return finch::test::join_program(p);
}

}  // namespace

TEST(ProgramFile, RoundTripEveryFeatureBitExact) {
  const Graph g = sample_graph();
  const std::vector<uint8_t> bytes = serialize_program(g);
  const Graph back = parse_program(bytes.data(), bytes.size(), "mem");
  expect_same_graph(back, g);
  EXPECT_EQ(back.nodes[1].inputs[2], -1);
  // Writing what was read gives the same bytes: nothing is lost or reordered.
  EXPECT_EQ(serialize_program(back), bytes);
}

TEST(ProgramFile, WriteAndReadThroughAFile) {
  finch::test::TempDir dir("program");
  const Graph g = sample_graph();
  write_program(g, dir / "p.finch");
  EXPECT_EQ(dir.count(), 1);  // no temporary left behind
  expect_same_graph(read_program(dir / "p.finch"), g);
  EXPECT_ERROR_HAS(read_program(dir / "missing.finch"), "cannot read program file '" + dir / "missing.finch");
  EXPECT_ERROR_HAS(read_program(dir.str()), "found a directory");
}

TEST(ProgramFile, MetaAloneReadsHeaderAndJsonOnly) {
  finch::test::TempDir dir("program_meta");
  const Graph g = sample_graph();
  const auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), long(bytes.size()));
    return dir / name;
  };
  const std::vector<uint8_t> f = serialize_program(g);
  EXPECT_EQ(read_program_meta(write("p.finch", f)), g.meta);
  ProgramParts plain = finch::test::split_program(f);  // the flag-0 layout too
  plain.flags = 0;
  EXPECT_EQ(read_program_meta(write("plain.finch", finch::test::join_program(plain))), g.meta);
  // A flipped weight byte is past what it reads: only read_program's CRC notices it.
  std::vector<uint8_t> weight = f;
  weight[finch::test::data_start(f) + 3] ^= 0x10;
  EXPECT_EQ(read_program_meta(write("w.finch", weight)), g.meta);
  EXPECT_ERROR_HAS(read_program(dir / "w.finch"), "checksum mismatch");
  // What it does read is checked as read_program checks it.
  EXPECT_ERROR_HAS(read_program_meta(write("cut.finch", std::vector<uint8_t>(f.begin(), f.begin() + 40))),
                   "JSON length field says");
  std::vector<uint8_t> magic = f;
  magic[0] = 'X';
  EXPECT_ERROR_HAS(read_program_meta(write("m.finch", magic)), "not a finch program");
  ProgramParts half = finch::test::split_program(f);
  half.json.resize(half.json.size() / 2);
  EXPECT_ERROR_HAS(read_program_meta(write("half.finch", finch::test::join_program(half))),
                   "expected the JSON description to be valid JSON");
  EXPECT_ERROR_HAS(read_program_meta(dir / "missing.finch"), "cannot read program file");
  EXPECT_ERROR_HAS(read_program_meta(dir.str()), "found a directory");
}

TEST(ProgramFile, HeaderSaysCompressedJson) {
  const std::vector<uint8_t> f = serialize_program(sample_graph());
  EXPECT_EQ(finch::test::get_u32(f, 8), kProgramVersion);
  EXPECT_EQ(finch::test::get_u32(f, 12), kFlagZlibJson);
  const ProgramParts p = finch::test::split_program(f);
  EXPECT_EQ(finch::test::get_u64(f, 24), p.json.size());
  EXPECT_LT(finch::test::get_u64(f, 16), p.json.size());
  EXPECT_EQ(finch::test::data_start(f) % 64, 0u);
}

TEST(ProgramFile, ReadsUncompressedFlagZeroFiles) {
  // The first writer's layout: flags 0, JSON as text at offset 24.
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  p.flags = 0;
  const std::vector<uint8_t> plain = finch::test::join_program(p);
  EXPECT_EQ(std::string(plain.begin() + 24, plain.begin() + 34), "{\"format\":");
  expect_same_graph(parse_program(plain.data(), plain.size(), "plain"), sample_graph());
}

TEST(ProgramFile, ScalesAreShortAndBitExact) {
  // Positive finite floats of every magnitude (subnormals to FLT_MAX), random mantissas.
  Generator g(11);
  constexpr int64_t kN = 20000;
  QuantInfo q{{}, std::vector<int32_t>(kN, 0), 0, -127, 127};
  for (int64_t i = 0; i < kN; ++i) {
    uint32_t bits = uint32_t(g.next_u64()) & 0x7fffffffu;
    if ((bits >> 23) == 0xff) bits &= 0xbfffffffu;  // not inf/NaN
    if (bits == 0) bits = 1;
    q.scale.push_back(std::bit_cast<float>(bits));
  }
  q.scale[0] = 0.1f;
  q.scale[1] = 0.0123f;
  Graph gr;
  gr.add_value({"w", {kN}, DType::i8, q, zeros({kN}, DType::i8)});
  const std::vector<uint8_t> f = serialize_program(gr);
  expect_same_graph(parse_program(f.data(), f.size(), "scales"), gr);
  const std::string json = finch::test::split_program(f).json;
  EXPECT_NE(json.find("\"scale\":[0.1,0.0123,"), std::string::npos) << json.substr(0, 200);
}

// A per-channel int8 program with ResNet-20's 22 layers (conv1, 18 block convs, 2 downsamples,
// fc; 16-64 channels; weight and bias scales per channel, activations per tensor), to measure
// the JSON: the old writer printed every float scale as a 17-digit double and did not compress.
// The data section is the real size, so the whole file can be compared with the fp32 weights.
TEST(ProgramFile, ResNet20JsonIsSmall) {
  struct Layer {
    std::string name;
    int64_t oc, ic, k;
  };
  std::vector<Layer> layers = {{"conv1", 16, 3, 3}};
  int64_t width = 16;
  for (int stage = 1; stage <= 3; ++stage) {
    const int64_t c = 16 << (stage - 1);
    for (int blk = 0; blk < 3; ++blk) {
      const std::string pre = "layer" + std::to_string(stage) + "." + std::to_string(blk);
      layers.push_back({pre + ".conv1", c, width, 3});
      layers.push_back({pre + ".conv2", c, c, 3});
      if (blk == 0 && c != width) layers.push_back({pre + ".downsample.0", c, width, 1});
      width = c;
    }
  }
  layers.push_back({"fc", 10, 64, 1});
  ASSERT_EQ(layers.size(), 22u);
  Generator g(3);
  Graph gr;
  int32_t x = gr.add_value({"input.q", {1, 3, 32, 32}, DType::i8, per_tensor(0.02f, 0), {}});
  gr.inputs = {x};
  size_t fp32_bytes = 0;  // the fp32 safetensors' tensor bytes: weights, BN (4 x OC, i64 count), fc bias
  for (const Layer& l : layers) {
    QuantInfo wq{{}, std::vector<int32_t>(size_t(l.oc), 0), 0, -127, 127};
    QuantInfo bq = wq;
    bq.qmin = -2147483647 - 1, bq.qmax = 2147483647;
    const float sx = gr.values[size_t(x)].quant->scale[0];
    for (int64_t c = 0; c < l.oc; ++c) {
      wq.scale.push_back(0.002f + 0.05f * g.uniform());
      bq.scale.push_back(sx * wq.scale.back());
    }
    const Shape ws = {l.oc, l.ic, l.k, l.k};
    fp32_bytes += size_t(4 * l.oc * l.ic * l.k * l.k) + (l.name == "fc" ? size_t(4 * l.oc) : size_t(16 * l.oc + 8));
    const int32_t w = gr.add_value({l.name + ".weight", ws, DType::i8, wq, zeros(ws, DType::i8)});
    const int32_t b = gr.add_value({l.name + ".bias", {l.oc}, DType::i32, bq, zeros({l.oc}, DType::i32)});
    const int32_t rq = gr.add_value({l.name + ".rq", {l.oc, 2}, DType::i32, std::nullopt, zeros({l.oc, 2}, DType::i32)});
    const int32_t y = gr.add_value({l.name + ".out", {1, l.oc, 32, 32}, DType::i8, per_tensor(0.01f + 0.1f * g.uniform(), -5), {}});
    gr.nodes.push_back({"qconv2d", l.name, {x, w, b, rq}, {y},
                        {{"stride", {1, 1}}, {"padding", {1, 1}}, {"dilation", {1, 1}}, {"groups", 1},
                         {"act", "relu"}, {"qmin", -5}, {"qmax", 127}}});
    x = y;
  }
  gr.outputs = {x};
  const std::vector<uint8_t> f = serialize_program(gr);
  const ProgramParts p = finch::test::split_program(f);
  // The old form: the same document with every scale widened to a double before printing.
  ojson doc = ojson::parse(p.json);
  for (auto& v : doc["values"])
    if (v.contains("quant"))
      for (auto& s : v["quant"]["scale"]) s = double(float(s.get<double>()));
  const size_t old_len = doc.dump().size(), text_len = p.json.size();
  const size_t zipped = size_t(finch::test::get_u64(f, 16));
  const size_t old_file = f.size() - (32 + zipped) + (24 + old_len);  // about: padding differs
  std::printf("ResNet-20 JSON: %zu bytes with double scales, %zu with short float scales, %zu "
              "compressed (%.1f%%); file %zu bytes = %.3fx the fp32 weights (%zu), old writer "
              "about %.3fx\n",
              old_len, text_len, zipped, 100.0 * double(zipped) / double(old_len), f.size(),
              double(f.size()) / double(fp32_bytes), fp32_bytes, double(old_file) / double(fp32_bytes));
  EXPECT_LT(text_len, old_len * 3 / 4);
  EXPECT_LT(zipped, old_len / 3);
  EXPECT_LE(double(f.size()), 0.27 * double(fp32_bytes));
  expect_same_graph(parse_program(f.data(), f.size(), "resnet20"), gr);
}

// --- rejections: header ------------------------------------------------------------------

TEST(ProgramFileRejects, WrongMagic) {
  std::vector<uint8_t> f = serialize_program(sample_graph());
  f[0] = 'X';
  expect_rejected(f, {"expected the magic bytes \"FINCHPRG\"", "found \"XINCHPRG\""});
  std::vector<uint8_t> st = {18, 0, 0, 0, 0, 0, 0, 0};  // a safetensors file, say
  for (char c : std::string("{\"__metadata__\":{}}")) st.push_back(uint8_t(c));
  expect_rejected(st, {"not a finch program"});
}

TEST(ProgramFileRejects, UnknownVersion) {
  std::vector<uint8_t> f = serialize_program(sample_graph());
  finch::test::put_u32(f, 8, 2);
  finch::test::fix_crc(f);
  expect_rejected(f, {"format version is 2", "supports version 1", "newer finch"});
  finch::test::put_u32(f, 8, 0);
  expect_rejected(f, {"format version is 0"});
}

TEST(ProgramFileRejects, UnknownFlag) {
  for (uint32_t flags : {2u, 3u, 0x80000001u}) {
    std::vector<uint8_t> f = serialize_program(sample_graph());
    finch::test::put_u32(f, 12, flags);
    finch::test::fix_crc(f);
    expect_rejected(f, {("header flags are " + std::to_string(flags)).c_str(), "expected 0 or 1"});
  }
}

TEST(ProgramFileRejects, TruncatedAnywhere) {
  const std::vector<uint8_t> f = serialize_program(sample_graph());
  const size_t ds = finch::test::data_start(f);
  const std::vector<size_t> cuts = {0, 5, 8, 20, 27, 30, 35, 40, ds - 1, ds, ds + 100, f.size() - 4, f.size() - 1};
  for (size_t n : cuts) {
    SCOPED_TRACE("truncated to " + std::to_string(n));
    expect_rejected(std::vector<uint8_t>(f.begin(), f.begin() + long(n)), {"truncated"});
  }
  expect_rejected(std::vector<uint8_t>(f.begin(), f.begin() + 30), {"expected at least 36 bytes"});
  expect_rejected(std::vector<uint8_t>(f.begin(), f.begin() + 40), {"JSON length field says"});
  expect_rejected(std::vector<uint8_t>(f.begin(), f.begin() + long(ds + 100)), {"checksum mismatch"});
}

TEST(ProgramFileRejects, ChecksumMismatch) {
  std::vector<uint8_t> f = serialize_program(sample_graph());
  f[finch::test::data_start(f) + 3] ^= 0x10;  // a weight byte: only the CRC can notice
  expect_rejected(f, {"checksum mismatch", "corrupt"});
  f = serialize_program(sample_graph());
  f.back() ^= 1;
  expect_rejected(f, {"checksum mismatch"});
}

TEST(ProgramFileRejects, NonZeroPaddingAfterJson) {
  std::vector<uint8_t> f = serialize_program(sample_graph());
  const size_t ds = finch::test::data_start(f);
  ASSERT_LT(32 + finch::test::get_u64(f, 16), ds) << "the sample needs padding for this test";
  f[ds - 1] = 7;
  finch::test::fix_crc(f);
  expect_rejected(f, {"of the padding after the JSON is 7", "expected 0"});
}

// --- rejections: the compressed JSON --------------------------------------------------------

TEST(ProgramFileRejects, DecompressionBomb) {
  std::vector<uint8_t> f = serialize_program(sample_graph());
  const uint64_t j = finch::test::get_u64(f, 16);
  for (uint64_t u : {uint64_t(1) << 40, ~uint64_t(0), uint64_t(1032) * j + 65}) {
    finch::test::put_u64(f, 24, u);
    finch::test::fix_crc(f);
    expect_rejected(f, {("inflate to " + std::to_string(u) + " bytes").c_str(), "expected at most"});
  }
  // A genuinely highly compressible stream within the ratio bound is still capped at 16 MiB.
  ProgramParts p;
  p.json = std::string(size_t(17) << 20, ' ');
  const std::vector<uint8_t> big = finch::test::join_program(p);
  expect_rejected(big, {"inflate to 17825792 bytes", "expected at most 16777216"});
}

TEST(ProgramFileRejects, CorruptCompressedStream) {
  const std::vector<uint8_t> good = serialize_program(sample_graph());
  const uint64_t j = finch::test::get_u64(good, 16), u = finch::test::get_u64(good, 24);
  std::vector<uint8_t> f = good;
  f[32] = 0;  // the zlib header byte (CMF)
  finch::test::fix_crc(f);
  expect_rejected(f, {"compressed JSON do not inflate", "zlib: data error"});
  f = good;
  f[32 + j - 1] ^= 0xff;  // the Adler-32 trailer
  finch::test::fix_crc(f);
  expect_rejected(f, {"do not inflate", "data error"});
  f = good;
  finch::test::put_u64(f, 24, u - 1);  // the stream is longer than the header says
  finch::test::fix_crc(f);
  expect_rejected(f, {"does not end within the", "expected a zlib stream of exactly"});
  f = good;
  finch::test::put_u64(f, 24, u + 1);  // ... or shorter
  finch::test::fix_crc(f);
  expect_rejected(f, {("inflates to " + std::to_string(u) + " bytes; expected " + std::to_string(u + 1)).c_str()});
  // Bytes after the stream but inside J (the padding is zero, so J can grow over it).
  f = good;
  ASSERT_LT(32 + j, finch::test::data_start(f));
  finch::test::put_u64(f, 16, j + 1);
  finch::test::fix_crc(f);
  expect_rejected(f, {"the zlib stream ends after", "expected it to fill them"});
}

// --- rejections: the JSON document (compressed and plain alike) ------------------------------

TEST(ProgramFileRejects, JsonNotParseable) {
  for (uint32_t flags : {0u, 1u}) {
    ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
    p.flags = flags;
    p.json.resize(p.json.size() / 2);
    expect_rejected(finch::test::join_program(p), {"expected the JSON description to be valid JSON"});
  }
}

TEST(ProgramFileRejects, JsonNotAnObjectOrMissingKeys) {
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  p.json = "[1, 2]";
  expect_rejected(finch::test::join_program(p), {"the JSON description is [1,2] (a JSON array); expected an object"});
  for (const char* key : {"format", "version", "meta", "values", "inputs", "outputs", "nodes"}) {
    SCOPED_TRACE(key);
    expect_rejected(edited([&](ojson& d) { d.erase(key); }),
                    {(std::string("the JSON description has no \"") + key + "\" field; expected one").c_str()});
  }
  expect_rejected(edited([](ojson& d) { d["values"][2].erase("dtype"); }),
                  {"values[2] (\"conv.weight\") has no \"dtype\" field"});
  expect_rejected(edited([](ojson& d) { d["nodes"][1].erase("attrs"); }), {"nodes[1] has no \"attrs\" field"});
  expect_rejected(edited([](ojson& d) { d["values"][1]["quant"].erase("scale"); }),
                  {"quant has no \"scale\" field"});
  expect_rejected(edited([](ojson& d) { d["format"] = "onnx"; }), {"\"format\" is \"onnx\"; expected \"finch-program\""});
  expect_rejected(edited([](ojson& d) { d["version"] = 2; }), {"the JSON says version 2 but the header says 1"});
  expect_rejected(edited([](ojson& d) { d["meta"] = 3; }), {"\"meta\" is 3 (a JSON number); expected an object"});
  expect_rejected(edited([](ojson& d) { d["values"] = ojson::array({42}); }), {"values[0] is 42 (a JSON number); expected an object"});
}

TEST(ProgramFileRejects, DuplicateKeyAndDeepNesting) {
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  p.json.insert(1, "\"meta\":{},");
  expect_rejected(finch::test::join_program(p), {"the key \"meta\" twice in one object"});
  expect_rejected(edited([](ojson& d) {
                    ojson deep = 1;
                    for (int i = 0; i < 100; ++i) deep = ojson::array({deep});
                    d["meta"]["deep"] = deep;
                  }),
                  {"nests deeper than 64 levels"});
}

TEST(ProgramFileRejects, BadDtypeName) {
  expect_rejected(edited([](ojson& d) { d["values"][0]["dtype"] = "F33"; }),
                  {"values[0] (\"input\").dtype is \"F33\"; expected F32, F64, F16, BF16, I8, U8, I16, I32, I64 or BOOL"});
  expect_rejected(edited([](ojson& d) { d["values"][0]["dtype"] = "f32"; }), {"is \"f32\"; expected F32"});
  expect_rejected(edited([](ojson& d) { d["values"][0]["dtype"] = 1; }), {".dtype is 1 (a JSON number); expected a string"});
}

TEST(ProgramFileRejects, NegativeOrHugeShape) {
  expect_rejected(edited([](ojson& d) { d["values"][0]["shape"][1] = -3; }),
                  {"values[0] (\"input\").shape[1] is -3; expected an integer in [0, "});
  expect_rejected(edited([](ojson& d) { d["values"][0]["shape"] = {int64_t(1) << 40, int64_t(1) << 40}; }),
                  {"needs more than 2^63 bytes"});
  expect_rejected(edited([](ojson& d) { d["values"][0]["shape"][0] = 1.5; }), {"shape[0] is 1.5 (a JSON number); expected an integer"});
}

TEST(ProgramFileRejects, DataExtentsOutOfRangeMisalignedOverlappingOrWrongSize) {
  // values[2] is conv.weight (i8 [4,3,3,3], 108 bytes) at offset 0; values[3] conv.rq at 128.
  expect_rejected(edited([](ojson& d) { d["values"][2]["data"]["offset"] = 64 * 1000; }),
                  {"values[2] (\"conv.weight\").data is bytes [64000, 64108) of the data section; expected a range within its"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["data"]["offset"] = 8; }),
                  {"conv.weight\").data.offset is 8; expected a multiple of 64"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["data"]["offset"] = -64; }), {"data.offset is -64; expected an integer in [0, "});
  expect_rejected(edited([](ojson& d) { d["values"][3]["data"]["offset"] = 64; }),
                  {"value 3 (\"conv.rq\") at data bytes [64, 96) overlaps value 2 (\"conv.weight\") at [0, 108)",
                   "expected disjoint constants"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["data"]["nbytes"] = 100; }),
                  {"conv.weight\").data.nbytes is 100; expected 108 (shape [4, 3, 3, 3] of I8)"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["data"]["nbytes"] = "108"; }), {"data.nbytes is \"108\"", "expected an integer"});
}

TEST(ProgramFileRejects, BadQuantParams) {
  expect_rejected(edited([](ojson& d) { d["values"][2]["quant"]["scale"][1] = -0.5; }),
                  {"quant.scale[1] is -0.5; expected a finite positive number"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["quant"]["scale"][1] = 1e300; }), {"in float range"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["quant"]["scale"].erase(0); }),
                  {"quant has 3 scales but 4 zero points"});
  expect_rejected(edited([](ojson& d) { d["values"][2]["quant"]["axis"] = 4; }), {"quant.axis is 4; expected -1 or a dim"});
  expect_rejected(edited([](ojson& d) { d["values"][1]["quant"]["qmin"] = 200; }), {"qmin 200 > qmax 127"});
}

TEST(ProgramFileRejects, ValueIndexOutOfRange) {
  expect_rejected(edited([](ojson& d) { d["nodes"][1]["inputs"][1] = 999; }),
                  {"nodes[1].inputs[1] is value index 999; expected -1 (absent) or an index in [0, 17)"});
  expect_rejected(edited([](ojson& d) { d["nodes"][1]["inputs"][1] = -2; }), {"is value index -2"});
  expect_rejected(edited([](ojson& d) { d["nodes"][1]["outputs"][0] = -1; }),
                  {"nodes[1].outputs[0] is value index -1; expected an index in [0, 17)"});
  expect_rejected(edited([](ojson& d) { d["outputs"][0] = 17; }), {"\"outputs\"[0] is value index 17"});
  expect_rejected(edited([](ojson& d) { d["inputs"][0] = 2147483648LL; }), {"is value index 2147483648"});
}

TEST(ProgramFileRejects, ValueProducedTwice) {
  expect_rejected(edited([](ojson& d) { d["nodes"][2]["outputs"][0] = 4; }),
                  {"value 4 (\"conv.out\") is produced by node 1 (qconv2d \"conv\") and by node 2 (dequantize \"conv.dq\")",
                   "expected exactly one producer"});
  expect_rejected(edited([](ojson& d) { d["nodes"][0]["outputs"][0] = 0; }), {"writes value 0 (\"input\"), a graph input"});
  expect_rejected(edited([](ojson& d) { d["nodes"][0]["outputs"][0] = 2; }), {"writes value 2 (\"conv.weight\"), a constant"});
}

TEST(ProgramFileRejects, ValueReadBeforeProduced) {
  expect_rejected(edited([](ojson& d) { std::swap(d["nodes"][0], d["nodes"][1]); }),
                  {"node 0 (qconv2d \"conv\") reads value 1 (\"input.q\") before any node produces it"});
  expect_rejected(edited([](ojson& d) { d["nodes"].erase(2); }),
                  {"graph output 0 is value 5 (\"output\"), which no node produces"});
}

TEST(ProgramFileRejects, DuplicateOrEmptyNames) {
  expect_rejected(edited([](ojson& d) { d["values"][3]["name"] = "input"; }),
                  {"values 0 and 3 are both named \"input\"; expected unique value names"});
  expect_rejected(edited([](ojson& d) { d["values"][3]["name"] = ""; }), {"values[3].name is empty"});
}

TEST(ProgramFileRejects, BoolConstantHoldingOtherBytes) {
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  const ojson doc = ojson::parse(p.json);
  for (const auto& v : doc["values"])
    if (v["dtype"] == "BOOL") p.data[v["data"]["offset"].get<size_t>() + 2] = 2;
  expect_rejected(finch::test::join_program(p), {"is BOOL but holds the byte 2 at element 2; expected 0 or 1"});
}

// The writer refuses what the reader would refuse, so every written file reads back.
TEST(ProgramFileRejects, WriterChecksTheSameRules) {
  Graph g = sample_graph();
  g.values[3].name = "input";
  EXPECT_ERROR_HAS(serialize_program(g), "write_program: values 0 and 3 are both named \"input\"");
  g = sample_graph();
  g.values[2].quant->scale[0] = 0;
  EXPECT_ERROR_HAS(serialize_program(g), "quant.scale[0] is 0");
}

// Thousands of seeded random edits of a valid file, compressed and plain, each re-checksummed half
// the time so the damage reaches the JSON and graph checks: every one parses or throws
// finch::Error; nothing crashes (run under ASan/UBSan too, fuzz/README.md).
TEST(ProgramFileRejects, RandomMutationsNeverCrash) {
  Generator g(2026);
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  const std::vector<uint8_t> zipped = finch::test::join_program(p);
  p.flags = 0;
  const std::vector<uint8_t> plain = finch::test::join_program(p);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<uint8_t> f = (iter % 2) ? zipped : plain;
    const size_t json_end = finch::test::data_start(f);
    const int kind = int(g.below(4));
    const int edits = 1 + int(g.below(4));
    for (int k = 0; k < edits && !f.empty(); ++k) {
      const size_t pos = size_t(g.below(f.size()));
      if (kind == 0) f[pos] ^= uint8_t(1u << g.below(8));                                  // bit flip anywhere
      else if (kind == 1) f[size_t(g.below(std::min<size_t>(f.size(), 40)))] = uint8_t(g.next_u64());  // header
      else if (kind == 2) f[size_t(g.below(std::min(f.size(), json_end)))] = "{}[],:\"0123456789-e. "[g.below(21)];
      else f.resize(size_t(g.below(f.size())));                                            // truncation
    }
    if (f.size() >= 4 && g.below(2)) finch::test::fix_crc(f);
    try {
      Graph r = parse_program(f.data(), f.size(), "mutated");
      ++accepted;
      for (const Value& v : r.values) ASSERT_TRUE(!v.is_constant() || v.data.nbytes() == size_t(v.data.numel()) * dtype_size(v.dtype));
    } catch (const Error& e) {
      ++rejected;
      ASSERT_NE(std::string(e.what()).find("'mutated'"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": unexpected exception type: " << e.what();
    }
  }
  std::printf("mutations: %d accepted, %d rejected\n", accepted, rejected);
  EXPECT_GT(rejected, 2000);
  EXPECT_GT(accepted, 0);
}

// Seeds for fuzz/fuzz_program.cc: FINCH_PROGRAM_SEED_DIR=/tmp/corpus build/bin/test_runtime
// --gtest_filter=ProgramFile.WriteFuzzSeeds writes the sample program compressed and plain.
TEST(ProgramFile, WriteFuzzSeeds) {
  const char* dir = std::getenv("FINCH_PROGRAM_SEED_DIR");
  if (!dir) GTEST_SKIP() << "set FINCH_PROGRAM_SEED_DIR to write fuzz seeds";
  ProgramParts p = finch::test::split_program(serialize_program(sample_graph()));
  for (uint32_t flags : {0u, 1u}) {
    p.flags = flags;
    const std::vector<uint8_t> f = finch::test::join_program(p);
    std::ofstream(std::string(dir) + "/sample_flags" + std::to_string(flags) + ".finch", std::ios::binary)
        .write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
  }
}
