// report.html: round (1-2-5) axis ticks, rounded figures, the learning-rate curve, thumbnails of
// the most confidently wrong images as inline PNGs; the PNG and base64 encoders.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "framework/error.h"
#include "framework/random.h"
#include "train/loop.h"
#include "train/report.h"
#include "train/report_svg.h"
#include "train/thumbnail.h"

using namespace finch;
using namespace finch::train;

namespace {

// True when `step` is 1, 2 or 5 times a power of ten.
bool round_step(double step) {
  const double mag = std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  const double m = step / mag;
  return std::fabs(m - 1) < 1e-9 || std::fabs(m - 2) < 1e-9 || std::fabs(m - 5) < 1e-9;
}

}  // namespace

TEST(Ticks, KnownRanges) {
  EXPECT_EQ(nice_ticks(0, 1), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_EQ(nice_ticks(0.13, 0.87), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_EQ(nice_ticks(0.55, 2.3), (std::vector<double>{0.5, 1, 1.5, 2, 2.5}));
  EXPECT_EQ(nice_ticks(-0.013, 0.011), (std::vector<double>{-0.015, -0.01, -0.005, 0, 0.005, 0.01, 0.015}));
  EXPECT_EQ(nice_ticks(3, 97), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(1, 3, 6, /*integer=*/true), (std::vector<double>{1, 2, 3}));
  const auto flat = nice_ticks(2, 2);  // a flat series still gets an axis around it
  EXPECT_GE(flat.size(), 3u);
  EXPECT_LT(flat.front(), 2.0);
  EXPECT_GT(flat.back(), 2.0);
}

TEST(Ticks, RandomRangesGiveRoundStepsCoveringTheRange) {
  Generator g(42);
  const auto u = rand({400}, g, DType::f64).to_vector<double>();
  for (size_t i = 0; i + 1 < u.size(); i += 2) {
    const double scale = std::pow(10.0, std::floor(u[i] * 10 - 5));
    const double lo = (u[i] - 0.5) * scale, hi = lo + u[i + 1] * scale + 1e-12;
    const auto t = nice_ticks(lo, hi);
    ASSERT_GE(t.size(), 3u) << lo << " " << hi;
    ASSERT_LE(t.size(), 12u) << lo << " " << hi;
    EXPECT_LE(t.front(), lo);
    EXPECT_GE(t.back(), hi);
    const double step = t[1] - t[0];
    EXPECT_TRUE(round_step(step)) << step;
    for (double v : t) EXPECT_NEAR(v / step, std::round(v / step), 1e-6) << v << " step " << step;
  }
}

TEST(Ticks, LabelsAndFiguresAreRounded) {
  EXPECT_EQ(tick_label(0.30000000000000004, 0.1, false), "0.3");
  EXPECT_EQ(tick_label(0.8, 0.2, true), "80%");
  EXPECT_EQ(tick_label(0.85, 0.05, true), "85%");
  EXPECT_EQ(tick_label(40, 20, false), "40");
  EXPECT_EQ(fmt_num(16032.481111454557, 4), "16030");
  EXPECT_EQ(fmt_num(0.123456, 4), "0.1235");
  EXPECT_EQ(fmt_num(12.5, 4), "12.50");
  EXPECT_EQ(round_significant(16032.481111454557), 16030.0);
  EXPECT_EQ(round_significant(0.0012345678), 0.001235);
}

TEST(Report, ChartsHaveRoundTicksAnLrCurveAndThumbnails) {
  nlohmann::json history = nlohmann::json::array();
  for (int e = 1; e <= 7; ++e)
    history.push_back({{"epoch", e}, {"lr", 0.1 / e}, {"train_loss", 2.0 / e + 0.013}, {"test_loss", 2.1 / e},
                       {"train_acc", 0.5 + 0.05 * e}, {"test_acc", 0.47 + 0.049 * e}});
  nlohmann::json summary = {{"model", "m"}, {"dataset", "d"}, {"test_accuracy", 0.813},
                            {"train_images_per_second", 16032.481111454557}, {"classes", {"cat", "dog"}},
                            {"confusion_matrix", {{3, 1}, {0, 4}}}};
  ReportExtras extras;
  for (int s = 0; s < 70; ++s) extras.lr_curve.emplace_back(s / 10.0, 0.1 * (1 - s / 70.0));
  Thumbnail t;
  t.index = 5;
  t.label = 0;
  t.predicted = 1;
  t.confidence = 0.97;
  t.data_uri = image_data_uri(rand({3, 8, 8}));
  extras.mistakes = {t, t};
  const std::string html = render_report_html(summary, history, extras);
  EXPECT_NE(html.find("16030"), std::string::npos);
  EXPECT_EQ(html.find("16032.48"), std::string::npos);
  EXPECT_NE(html.find("class=\"lr-curve\""), std::string::npos);
  EXPECT_NE(html.find("learning rate"), std::string::npos);
  // Every y tick label is a round number: consecutive labels of one chart differ by 1, 2 or 5 × 10^k.
  int charts = 0;
  for (size_t at = html.find("<svg class=\"chart\""); at != std::string::npos;
       at = html.find("<svg class=\"chart\"", at + 1), ++charts) {
    const std::string svg = html.substr(at, html.find("</svg>", at) - at);
    for (const char* axis : {"ytick", "xtick"}) {
      const std::regex one(std::string("class=\"") + axis + "\"[^>]*>([-0-9.e]+)%?<");
      std::vector<double> v;
      for (auto it = std::sregex_iterator(svg.begin(), svg.end(), one); it != std::sregex_iterator(); ++it)
        v.push_back(std::stod((*it)[1]));
      ASSERT_GE(v.size(), 3u) << axis << " of chart " << charts;
      for (size_t i = 0; i + 1 < v.size(); ++i)
        EXPECT_TRUE(round_step(v[i + 1] - v[i])) << axis << " " << v[i] << " -> " << v[i + 1];
    }
  }
  EXPECT_EQ(charts, 3);  // loss, accuracy, learning rate
  size_t thumbs = 0;
  for (size_t p = html.find("<img src=\"data:image/png;base64,"); p != std::string::npos;
       p = html.find("<img src=\"data:image/png;base64,", p + 1))
    ++thumbs;
  EXPECT_EQ(thumbs, 2u);
  EXPECT_NE(html.find("true <b>cat</b>"), std::string::npos);
  EXPECT_NE(html.find("predicted <b>dog</b>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);

  // Without images (e.g. a non-image task) there is no thumbnail section.
  const std::string plain = render_report_html(summary, history);
  EXPECT_EQ(plain.find("<img"), std::string::npos);
  EXPECT_NE(plain.find("class=\"lr-curve\""), std::string::npos);  // from the history's lr column
}

TEST(Report, ThumbnailsPickTheMostConfidentMistakes) {
  data::LabeledImages d;
  Generator g(1);
  d.images = randint(0, 256, {4, 1, 5, 5}, g, DType::u8);
  d.labels = from_vector<int64_t>({0, 1, 0, 1}, {4});
  data::TensorDataset ds(d);
  EvalResult r;
  r.labels = {0, 1, 0, 1};
  r.predicted = {1, 1, 1, 0};
  r.confidence = {0.55f, 0.9f, 0.8f, 0.6f};
  const auto t = confident_mistake_thumbnails(ds, r, 2);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].index, 2);
  EXPECT_EQ(t[1].index, 3);
  EXPECT_EQ(t[0].data_uri.rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u);  // the PNG signature
}

TEST(Png, EncoderWritesAValidFile) {
  EXPECT_EQ(base64("Man"), "TWFu");
  EXPECT_EQ(base64("Ma"), "TWE=");
  EXPECT_EQ(base64("M"), "TQ==");
  const std::string png = encode_png({0, 255, 128, 7}, 2, 2, 1);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  // IEND with its fixed CRC closes the file.
  EXPECT_EQ(png.substr(png.size() - 12), std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12));
  // Signature, IHDR (13 bytes), IDAT (zlib header, one stored block of 2 rows × (filter + 2
  // pixels), Adler-32), IEND.
  EXPECT_EQ(png.size(), 8u + 25u + (12u + 2u + 5u + 6u + 4u) + 12u);
  EXPECT_THROW(encode_png({1, 2, 3}, 2, 2, 1), Error);
}
