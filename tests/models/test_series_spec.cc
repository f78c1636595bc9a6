// models::SeriesSpec: defaults, the metadata round trip that lets a saved model rebuild itself,
// and one-sentence errors for hostile metadata.
#include <gtest/gtest.h>

#include <string>

#include "framework/error.h"
#include "models/series_spec.h"

using namespace finch;

namespace {

models::SeriesSpec spec_for(const std::string& name) {
  models::SeriesSpec s;
  s.name = name, s.in_channels = 3, s.num_classes = 4, s.seq_len = 48, s.vocab_size = 50;
  s.width = 4, s.hidden_size = 8, s.embed_dim = 6;
  return s;
}

// The error from_metadata throws for `md`, or "" when it throws none.
std::string error_of(const std::map<std::string, std::string>& md) {
  try {
    models::SeriesSpec::from_metadata(md, "run/model.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SeriesSpec, MetadataRoundTripRebuildsTheSameModel) {
  ASSERT_FALSE(models::series_model_names().empty());
  for (const std::string& name : models::series_model_names()) {
    SCOPED_TRACE(name);
    const models::SeriesSpec s = spec_for(name);
    const auto md = s.to_metadata();
    EXPECT_EQ(md.at("model"), name);
    const models::SeriesSpec back = models::SeriesSpec::from_metadata(md, "m.safetensors");
    EXPECT_EQ(back.to_metadata(), md);
    auto a = models::create_series(s), b = models::create_series(back);
    const auto sa = a->state_dict(), sb = b->state_dict();
    ASSERT_EQ(sa.size(), sb.size());
    for (const auto& [k, t] : sa) EXPECT_EQ(sb.at(k).shape(), t.shape()) << k;
    EXPECT_EQ(a->num_parameters(), models::series_parameter_count(back));
  }
}

TEST(SeriesSpec, DefaultsAreResolvedAndRecorded) {
  models::SeriesSpec s;
  s.name = "fcn", s.in_channels = 1, s.num_classes = 2;
  const auto md = s.to_metadata();
  EXPECT_EQ(md.at("series.width"), "128");  // Wang et al.'s 128, 256, 128 filters
  EXPECT_EQ(md.at("series.dropout"), "0");
  s.name = "har_cnn";
  EXPECT_EQ(models::resolve_series(s).width, 21);
  EXPECT_EQ(models::resolve_series(s).num_layers, 6);
  s.name = "ecg_cnn";
  EXPECT_THROW(models::resolve_series(s), Error);  // needs the data's length
  s.seq_len = 1000;
  EXPECT_EQ(models::resolve_series(s).hidden_size, 2048);
  EXPECT_EQ(models::resolve_series(s).dropout, 0.5);
}

TEST(SeriesSpec, HostileMetadataGetsOneSentence) {
  const auto good = spec_for("fcn").to_metadata();
  ASSERT_EQ(error_of(good), "");
  auto with = [&](const std::string& key, const std::string& value) {
    auto md = good;
    md[key] = value;
    return error_of(md);
  };
  auto without = [&](const std::string& key) {
    auto md = good;
    md.erase(key);
    return error_of(md);
  };
  // Each message names the file and the key, and says what it found.
  auto expect_mentions = [](const std::string& msg, const std::string& a, const std::string& b) {
    EXPECT_NE(msg.find("run/model.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(a), std::string::npos) << msg;
    EXPECT_NE(msg.find(b), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  expect_mentions(without("model"), "'model'", "found none");
  expect_mentions(without("series.width"), "series.width", "found none");
  expect_mentions(with("model", "transformer"), "series model", "transformer");
  expect_mentions(with("series.width", "12a"), "series.width", "12a");
  expect_mentions(with("series.width", ""), "series.width", "''");
  expect_mentions(with("series.width", " 12"), "series.width", "' 12'");
  expect_mentions(with("series.in_channels", "0"), "series.in_channels", "found 0");
  expect_mentions(with("series.num_classes", "-3"), "series.num_classes", "found -3");
  expect_mentions(with("series.hidden_size", "99999999999999999999"), "series.hidden_size", "99999999999999999999");
  expect_mentions(with("series.bidirectional", "yes"), "series.bidirectional", "yes");
  expect_mentions(with("series.dropout", "nan"), "series.dropout", "nan");
  expect_mentions(with("series.dropout", "1"), "series.dropout", "'1'");
  expect_mentions(with("series.dropout", "0.5x"), "series.dropout", "0.5x");
  // In range field by field, but far too large together: refused before any allocation.
  auto big = good;
  big["series.width"] = "65536", big["series.in_channels"] = "65536";
  expect_mentions(error_of(big), "parameters", "2^28");
  auto ecg = models::SeriesSpec(spec_for("ecg_cnn")).to_metadata();
  ecg["series.seq_len"] = "8";
  expect_mentions(error_of(ecg), "seq_len", "8");
}

TEST(SeriesSpec, UnknownNamesListTheValidOnes) {
  models::SeriesSpec s;
  s.name = "fnc";
  try {
    models::create_series(s);
    FAIL() << "an unknown model was built";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fcn, resnet1d"), std::string::npos) << e.what();
  }
}

}  // namespace

// proj_size (PyTorch's LSTMP) for the LSTM classifiers: recorded only when set (older
// checkpoints have no key and read as 0), counted in the parameters, refused elsewhere.
TEST(SeriesSpec, ProjectedLstmClassifiers) {
  for (const std::string name : {"lstm", "bilstm"}) {
    SCOPED_TRACE(name);
    models::SeriesSpec s = spec_for(name);
    s.proj_size = 3;
    const auto md = s.to_metadata();
    EXPECT_EQ(md.at("series.proj_size"), "3");
    const models::SeriesSpec back = models::SeriesSpec::from_metadata(md, "m.safetensors");
    EXPECT_EQ(back.proj_size, 3);
    auto m = models::create_series(back);
    EXPECT_EQ(m->state_dict().at("rnn.weight_hr_l0").shape(), (Shape{3, 8}));
    EXPECT_EQ(m->num_parameters(), models::series_parameter_count(back));
  }
  EXPECT_EQ(spec_for("lstm").to_metadata().count("series.proj_size"), 0u);
  models::SeriesSpec s = spec_for("gru");
  s.proj_size = 3;
  EXPECT_THROW(models::resolve_series(s), Error);
  s = spec_for("lstm");
  s.proj_size = 8;  // not below hidden_size
  EXPECT_THROW(models::resolve_series(s), Error);
  auto md = spec_for("lstm").to_metadata();
  md["series.proj_size"] = "x";
  EXPECT_NE(error_of(md).find("'series.proj_size'"), std::string::npos);
}
