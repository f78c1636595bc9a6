// SeriesSpec: defaults, validation, metadata round trip, parameter count and the factory.
#include "models/series_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "models/series_conv.h"
#include "models/series_rnn.h"

namespace finch::models {

namespace {

// Above this many parameters (1 GiB of fp32 weights) a spec is refused: a hostile file must not
// make create_series() allocate without bound.
constexpr double kMaxParameters = double(int64_t(1) << 28);

struct Field {
  const char* key;
  int64_t SeriesSpec::*member;
  int64_t lo, hi;  // accepted range before resolution (0 = the model's default where allowed)
};

// Every integer field with its range. Upper bounds are far beyond any real model, low enough
// that products of them stay exact in a double.
const std::vector<Field>& int_fields() {
  static const std::vector<Field> f = {
      {"in_channels", &SeriesSpec::in_channels, 1, 1 << 16},
      {"num_classes", &SeriesSpec::num_classes, 1, 1 << 20},
      {"seq_len", &SeriesSpec::seq_len, 0, 1 << 24},
      {"vocab_size", &SeriesSpec::vocab_size, 0, 1 << 24},
      {"embed_dim", &SeriesSpec::embed_dim, 0, 1 << 16},
      {"hidden_size", &SeriesSpec::hidden_size, 0, 1 << 16},
      {"num_layers", &SeriesSpec::num_layers, 0, 64},
      {"width", &SeriesSpec::width, 0, 1 << 16},
      {"horizon", &SeriesSpec::horizon, 0, 1 << 20},
      {"num_targets", &SeriesSpec::num_targets, 0, 1 << 16},
      {"padding_idx", &SeriesSpec::padding_idx, 0, (1 << 24) - 1},
  };
  return f;
}

const std::vector<std::string> kConvModels = {"fcn", "resnet1d", "har_cnn", "ecg_cnn", "ecg_resnet"};
const std::vector<std::string> kAllModels = {"fcn",          "resnet1d",  "har_cnn",     "ecg_cnn",
                                             "ecg_resnet",   "lstm",      "gru",         "bilstm",
                                             "deepconvlstm", "imdb_lstm", "imdb_bilstm", "lstm_forecaster"};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void set_default(int64_t& v, int64_t d) {
  if (v == 0) v = d;
}

// Parameter counts of the building blocks (weights + biases / BN's weight and bias).
double conv(double in, double out, double k, bool bias = true) { return in * out * k + (bias ? out : 0); }
double bn(double c) { return 2 * c; }
double linear(double in, double out) { return in * out + out; }
// torch's multi-layer RNN: per layer and direction G·H·(in + H) weights and two G·H biases,
// where layer l > 0 reads the D·H outputs of the layer below (G = 4 for LSTM, 3 for GRU).
// A projection (P > 0) makes h P wide (W_hh [G·H, P]) and adds W_hr [P, H] per layer and direction.
double rnn(double G, double in, double H, int64_t L, bool bidirectional, double P = 0) {
  const double D = bidirectional ? 2 : 1, HO = P > 0 ? P : H;
  double n = 0;
  for (int64_t l = 0; l < L; ++l) n += D * (G * H * ((l == 0 ? in : D * HO) + HO) + 2 * G * H + P * H);
  return n;
}

double count(const SeriesSpec& s) {
  const double C = double(s.in_channels), K = double(s.num_classes), w = double(s.width);
  if (s.name == "fcn") return conv(C, w, 8) + bn(w) + conv(w, 2 * w, 5) + bn(2 * w) + conv(2 * w, w, 3) + bn(w) + linear(w, K);
  if (s.name == "resnet1d") {
    auto block = [](double in, double out) {
      return conv(in, out, 8) + conv(out, out, 5) + conv(out, out, 3) + 3 * bn(out) + (in != out ? conv(in, out, 1) : 0) + bn(out);
    };
    return block(C, w) + block(w, 2 * w) + block(2 * w, 2 * w) + linear(2 * w, K);
  }
  if (s.name == "har_cnn") return conv(C, w, 4) + double(s.num_layers - 1) * conv(w, w, 4) + linear(w, K);
  if (s.name == "ecg_cnn") {
    const double t = double(s.seq_len >> 4);  // four floor halvings
    return conv(C, w, 5) + bn(w) + conv(w, 2 * w, 5) + bn(2 * w) +
           2 * (conv(2 * w, 2 * w, 5) + bn(2 * w)) + linear(2 * w * t, double(s.hidden_size)) +
           linear(double(s.hidden_size), K);
  }
  if (s.name == "ecg_resnet") {
    auto block = [](double in, double out) {
      return conv(in, out, 7, false) + bn(out) + conv(out, out, 7, false) + bn(out) +
             (in != out ? conv(in, out, 1, false) + bn(out) : 0);
    };
    return conv(C, w, 7, false) + bn(w) + block(w, 2 * w) + 2 * block(2 * w, 2 * w) + linear(2 * w, K);
  }
  const double H = double(s.hidden_size), D = s.bidirectional ? 2 : 1;
  if (s.name == "lstm" || s.name == "gru" || s.name == "bilstm")
    return rnn(s.name == "gru" ? 3 : 4, C, H, s.num_layers, s.bidirectional, double(s.proj_size)) +
           linear(D * (s.proj_size > 0 ? double(s.proj_size) : H), K);
  if (s.name == "deepconvlstm")
    return conv(1, w, 5) + 3 * conv(w, w, 5) + rnn(4, w * C, H, s.num_layers, false) + linear(H, K);
  if (s.name == "imdb_lstm" || s.name == "imdb_bilstm")
    return double(s.vocab_size) * double(s.embed_dim) + rnn(4, double(s.embed_dim), H, s.num_layers, s.bidirectional) +
           linear(D * H, K);
  if (s.name == "lstm_forecaster")
    return rnn(4, C, H, s.num_layers, false) + linear(H, double(s.num_targets) * double(s.horizon));
  fail("models::series_parameter_count: unknown model '", s.name, "'");
}

int64_t parse_int(const std::string& source, const std::string& key, const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end)
    fail(source, ": expected an integer for '", key, "', found '", text, "'");
  return v;
}

}  // namespace

const std::vector<std::string>& series_model_names() { return kAllModels; }

bool is_text_model(const std::string& name) { return name == "imdb_lstm" || name == "imdb_bilstm"; }

bool is_recurrent_model(const std::string& name) {
  return contains(series_model_names(), name) && !contains(kConvModels, name);
}

SeriesSpec resolve_series(const SeriesSpec& spec) {
  SeriesSpec s = spec;
  if (!contains(series_model_names(), s.name))
    fail("models::create_series: unknown model '", s.name, "'; expected one of ", join(series_model_names()));
  for (const Field& f : int_fields()) {
    const int64_t v = s.*f.member;
    if (v < f.lo || v > f.hi)
      fail("models::create_series: ", s.name, "'s ", f.key, " must be in [", f.lo, ", ", f.hi, "], got ", v);
  }
  if (!(s.dropout < 1) || std::isnan(s.dropout))
    fail("models::create_series: ", s.name, "'s dropout must be in [0, 1) (or negative for the default), got ",
         s.dropout);
  if (s.name == "fcn") set_default(s.width, 128);
  if (s.name == "resnet1d") set_default(s.width, 64);
  if (s.name == "har_cnn") set_default(s.width, 21), set_default(s.num_layers, 6);
  if (s.name == "ecg_cnn") {
    set_default(s.width, 32), set_default(s.hidden_size, 2048);
    if (s.dropout < 0) s.dropout = 0.5;
    if (s.seq_len < 16)
      fail("models::create_series: ecg_cnn needs the series length (seq_len >= 16, four halvings before its "
           "flatten), got ", s.seq_len);
  }
  if (s.name == "ecg_resnet") set_default(s.width, 32);
  if (s.name == "lstm" || s.name == "gru" || s.name == "bilstm") {
    set_default(s.hidden_size, 128), set_default(s.num_layers, 2);
    if (s.name == "bilstm") s.bidirectional = true;
  }
  if (s.proj_size != 0) {  // PyTorch's LSTMP: the LSTM classifiers only, 0 < P < H
    if (s.name != "lstm" && s.name != "bilstm")
      fail("models::create_series: ", s.name, " takes no proj_size (lstm and bilstm do), got ", s.proj_size);
    if (s.proj_size < 1 || s.proj_size >= s.hidden_size)
      fail("models::create_series: ", s.name, "'s proj_size must be 0 or in [1, ", s.hidden_size, "), got ",
           s.proj_size);
  }
  if (s.name == "deepconvlstm") {
    set_default(s.width, 64), set_default(s.hidden_size, 128), set_default(s.num_layers, 2);
    if (s.dropout < 0) s.dropout = 0.5;
  }
  if (is_text_model(s.name)) {
    const bool bi = s.name == "imdb_bilstm";
    set_default(s.embed_dim, bi ? 30 : 64), set_default(s.hidden_size, bi ? 64 : 16);
    set_default(s.num_layers, bi ? 1 : 2);
    if (s.vocab_size < 2)
      fail("models::create_series: ", s.name, " needs the vocabulary's size (vocab_size >= 2), got ", s.vocab_size);
    if (s.padding_idx >= s.vocab_size)
      fail("models::create_series: ", s.name, "'s padding_idx must be below vocab_size ", s.vocab_size, ", got ",
           s.padding_idx);
  }
  if (s.name == "lstm_forecaster") {
    set_default(s.hidden_size, 64), set_default(s.num_layers, 1);
    set_default(s.horizon, 1), set_default(s.num_targets, 1);
  }
  // Only the plain classifiers choose their direction; the others have the one their paper has.
  if (s.name == "bilstm" || s.name == "imdb_bilstm") s.bidirectional = true;
  else if (s.name != "lstm" && s.name != "gru") s.bidirectional = false;
  if (s.dropout < 0) s.dropout = 0;
  // Fields a model does not read stay as given: recorded, harmless, and round-tripped.
  if (count(s) > kMaxParameters)
    fail("models::create_series: ", s.name, " with these sizes would have ", count(s),
         " parameters, more than the limit of 2^28");
  return s;
}

int64_t series_parameter_count(const SeriesSpec& spec) { return int64_t(count(resolve_series(spec))); }

nn::ModulePtr create_series(const SeriesSpec& spec, Generator* gen) {
  const SeriesSpec s = resolve_series(spec);
  const int64_t C = s.in_channels, K = s.num_classes, w = s.width;
  if (s.name == "fcn") return std::make_shared<FCN>(C, K, std::vector<int64_t>{w, 2 * w, w}, gen);
  if (s.name == "resnet1d") return std::make_shared<ResNet1d>(C, K, std::vector<int64_t>{w, 2 * w, 2 * w}, gen);
  if (s.name == "har_cnn") return std::make_shared<HarCNN>(C, K, w, s.num_layers, gen);
  if (s.name == "ecg_cnn")
    return std::make_shared<EcgCNN>(C, s.seq_len, K, std::vector<int64_t>{w, 2 * w, 2 * w, 2 * w}, s.hidden_size,
                                    s.dropout, gen);
  if (s.name == "ecg_resnet") return std::make_shared<EcgResNet>(C, K, w, gen);
  const int64_t H = s.hidden_size, L = s.num_layers;
  if (s.name == "lstm" || s.name == "gru" || s.name == "bilstm")
    return std::make_shared<RnnClassifier>(s.name == "gru", C, K, H, L, s.bidirectional, s.dropout, gen, s.proj_size);
  if (s.name == "deepconvlstm") return std::make_shared<DeepConvLSTM>(C, K, w, H, L, s.dropout, gen);
  if (is_text_model(s.name))
    return std::make_shared<TextLSTM>(s.vocab_size, s.embed_dim, H, L, s.bidirectional, K, s.padding_idx, s.dropout,
                                      gen);
  if (s.name == "lstm_forecaster")
    return std::make_shared<LSTMForecaster>(C, s.num_targets, s.horizon, H, L, s.dropout, gen);
  fail("models::create_series: unknown model '", s.name, "'");
}

std::map<std::string, std::string> SeriesSpec::to_metadata() const {
  const SeriesSpec s = resolve_series(*this);
  std::map<std::string, std::string> m;
  m["model"] = s.name;
  for (const Field& f : int_fields()) m[std::string("series.") + f.key] = std::to_string(s.*f.member);
  m["series.bidirectional"] = s.bidirectional ? "1" : "0";
  if (s.proj_size > 0) m["series.proj_size"] = std::to_string(s.proj_size);  // absent = 0, as before it existed
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", s.dropout);  // round-trips exactly
  m["series.dropout"] = buf;
  return m;
}

SeriesSpec SeriesSpec::from_metadata(const std::map<std::string, std::string>& md, const std::string& source) {
  auto get = [&](const std::string& key) -> const std::string& {
    const auto it = md.find(key);
    if (it == md.end()) fail(source, ": expected the metadata key '", key, "' of a series model, found none");
    return it->second;
  };
  SeriesSpec s;
  s.name = get("model");
  if (!contains(series_model_names(), s.name))
    fail(source, ": expected 'model' to name a series model (", join(series_model_names()), "), found '", s.name, "'");
  for (const Field& f : int_fields()) {
    const std::string key = std::string("series.") + f.key;
    const int64_t v = parse_int(source, key, get(key));
    if (v < f.lo || v > f.hi) fail(source, ": expected '", key, "' in [", f.lo, ", ", f.hi, "], found ", v);
    s.*f.member = v;
  }
  if (const auto it = md.find("series.proj_size"); it != md.end()) {
    s.proj_size = parse_int(source, "series.proj_size", it->second);
    if (s.proj_size < 0 || s.proj_size > (1 << 16))
      fail(source, ": expected 'series.proj_size' in [0, 65536], found ", s.proj_size);
  }
  const std::string& bi = get("series.bidirectional");
  if (bi != "0" && bi != "1") fail(source, ": expected 'series.bidirectional' to be 0 or 1, found '", bi, "'");
  s.bidirectional = bi == "1";
  const std::string& dt = get("series.dropout");
  char* end = nullptr;
  s.dropout = dt.empty() ? NAN : std::strtod(dt.c_str(), &end);
  if (dt.empty() || end != dt.c_str() + dt.size() || !(s.dropout >= 0 && s.dropout < 1))
    fail(source, ": expected 'series.dropout' to be a number in [0, 1), found '", dt, "'");
  try {
    return resolve_series(s);
  } catch (const Error& e) {
    fail(source, ": the recorded architecture is invalid: ", e.what());
  }
}

}  // namespace finch::models
