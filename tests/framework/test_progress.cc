// Progress bar: duration/rate formatting, the line layout, terminal vs plain-log redraw policy.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "framework/progress.h"

using namespace finch;

namespace {

// A clock the test moves by hand.
struct FakeClock {
  double now = 1000.0;
  std::function<double()> fn() {
    return [this] { return now; };
  }
};

ProgressOptions opts(std::ostringstream& os, FakeClock& clock, bool tty) {
  ProgressOptions o;
  o.out = &os;
  o.is_tty = tty;
  o.clock = clock.fn();
  return o;
}

int count_of(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(Progress, FormatDuration) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(7.4), "0:07");
  EXPECT_EQ(format_duration(59.6), "1:00");
  EXPECT_EQ(format_duration(61), "1:01");
  EXPECT_EQ(format_duration(3599), "59:59");
  EXPECT_EQ(format_duration(3600), "1:00:00");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(100 * 3600 + 5), "100:00:05");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
  EXPECT_EQ(format_duration(1e300), "?");
}

TEST(Progress, FormatRateAndFields) {
  EXPECT_EQ(format_rate(12.34), "12.3 it/s");
  EXPECT_EQ(format_rate(1.5, "img"), "1.50 img/s");
  EXPECT_EQ(format_rate(999.4), "999 it/s");
  EXPECT_EQ(format_rate(999.7), "1.00k it/s");  // not "1000 it/s"
  EXPECT_EQ(format_rate(12345), "12.3k it/s");
  EXPECT_EQ(format_rate(4.5e6), "4.50M it/s");
  EXPECT_EQ(format_rate(0.4), "2.50 s/it");
  EXPECT_EQ(format_rate(0), "? it/s");
  EXPECT_EQ(format_field_value(0.53), "0.53");
  EXPECT_EQ(format_field_value(0.912345), "0.9123");
  EXPECT_EQ(format_field_value(123456), "1.235e+05");
}

TEST(Progress, LineLayout) {
  std::ostringstream os;
  FakeClock clock;
  Progress bar(100, "train", opts(os, clock, true));
  clock.now += 4;
  bar.update(45, {{"loss", 0.53}, {"acc", 0.91}});
  // 45 items in 4 s: 11.25/s; 55 left -> 4.9 s -> "0:05".
  EXPECT_EQ(bar.line(),
            "train   45/100   45% [#########...........]  11.2 it/s  elapsed 0:04  eta 0:05  loss=0.53  acc=0.91");
  clock.now += 4;
  bar.update(55);  // no fields given: the last ones stay
  EXPECT_EQ(bar.line(),
            "train  100/100  100% [####################]  12.5 it/s  elapsed 0:08  eta 0:00  loss=0.53  acc=0.91");
}

TEST(Progress, UnknownTotalAndNoLabel) {
  std::ostringstream os;
  FakeClock clock;
  Progress bar(0, "", opts(os, clock, true));
  clock.now += 2;
  bar.update(5);
  EXPECT_EQ(bar.line(), "5  2.50 it/s  elapsed 0:02");
  // Before any time passes there is no rate and no ETA.
  Progress b2(10, "x", opts(os, clock, true));
  EXPECT_EQ(b2.line(), "x   0/10    0% [....................]  ? it/s  elapsed 0:00  eta ?");
}

TEST(Progress, TerminalRedrawsInPlaceAtMostTenTimesASecond) {
  std::ostringstream os;
  FakeClock clock;
  {
    Progress bar(1000, "t", opts(os, clock, true));
    for (int i = 0; i < 1000; ++i) {
      clock.now += 0.001;  // 1000 updates within one second
      bar.update(1);
    }
    bar.finish();
    bar.finish();  // idempotent
  }
  const std::string s = os.str();
  const int draws = count_of(s, "\r");
  EXPECT_GE(draws, 10);
  EXPECT_LE(draws, 12);  // ~10 in one second, plus the final line(s)
  EXPECT_EQ(count_of(s, "\n"), 1);  // only the newline that ends the bar
  EXPECT_NE(s.find("1000/1000  100%"), std::string::npos);
  EXPECT_EQ(s.back(), '\n');
}

TEST(Progress, PlainLogPrintsLinesEveryTenPercentWithoutCarriageReturn) {
  std::ostringstream os;
  FakeClock clock;
  {
    Progress bar(200, "eval", opts(os, clock, false));
    for (int i = 0; i < 200; ++i) {
      clock.now += 0.01;
      bar.update(1, {{"acc", 0.5}});
    }
    bar.finish();
  }
  const std::string s = os.str();
  EXPECT_EQ(s.find('\r'), std::string::npos);
  EXPECT_EQ(count_of(s, "\n"), 10);  // 10 %, 20 %, ..., 100 %; finish() does not repeat 100 %
  EXPECT_NE(s.find("eval   20/200   10%"), std::string::npos) << s;
  EXPECT_NE(s.find("eval  200/200  100%"), std::string::npos) << s;
}

TEST(Progress, PlainLogPrintsEveryTenSecondsWhenSlow) {
  std::ostringstream os;
  FakeClock clock;
  Progress bar(1000, "slow", opts(os, clock, false));
  for (int i = 0; i < 30; ++i) {
    clock.now += 1;  // 30 s, 3 % progress: only the time rule fires
    bar.update(1);
  }
  EXPECT_EQ(count_of(os.str(), "\n"), 3);
  bar.finish();
  EXPECT_EQ(count_of(os.str(), "\n"), 3);  // the 30th item was just printed: no repeat
  EXPECT_NE(os.str().find("slow    30/1000    3%"), std::string::npos) << os.str();
}

TEST(Progress, DestructorFinishes) {
  std::ostringstream os;
  FakeClock clock;
  {
    Progress bar(3, "d", opts(os, clock, false));
    bar.update(1);
  }
  EXPECT_EQ(count_of(os.str(), "\n"), 1);
  EXPECT_NE(os.str().find("d  1/3   33%"), std::string::npos) << os.str();
}
