// Shared benchmark harness: timing with steady_clock, interleaved repetitions,
// medians, the human table and the machine lines
//   BENCH scenario=NAME impl=IMPL value=X unit=UNIT
//   RATIO scenario=NAME vs=PEER value=X      (bufev over peer, higher = better for bufev)
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

/// Run settings. `--quick` trades stability for a short run.
struct config {
  bool quick = false;
  int repetitions = 11;   // samples per contender; the median is reported
  double min_ms = 150;    // each sample runs the body for at least this long...
  int min_calls = 5;      // ...and at least this many times
  std::string filter;     // run only scenarios whose name contains this

  static config from_args(int argc, char** argv) {
    config c;
    for (int i = 1; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--quick") {
        c.quick = true;
        c.repetitions = 5;
        c.min_ms = 30;
        c.min_calls = 2;
      } else if (a.rfind("--filter=", 0) == 0) {
        c.filter = std::string(a.substr(9));
      } else if (a == "--help" || a == "-h") {
        std::printf("usage: %s [--quick] [--filter=SUBSTRING]\n", argv[0]);
        std::exit(0);
      } else {
        std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
        std::exit(2);
      }
    }
    return c;
  }
};

/// A benchmark that checks its own results stops here if a check fails.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "benchmark self-check failed: %s\n", what);
  std::exit(1);
}

/// Keeps the optimiser from deleting work whose result is otherwise unused.
template <class T>
inline void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// One implementation taking part in a scenario. `body` does `work` units of work
/// per call (bytes, lines, operations...).
struct contender {
  std::string impl;
  std::function<void()> body;
  /// Included in the RATIO lines: the figure bufev is compared against.
  bool peer = true;
};

/// A scenario's figures, one median per contender.
struct result {
  std::string scenario;
  std::string unit;
  std::vector<std::pair<std::string, double>> values;  // impl -> median
  std::vector<std::string> peers;
};

enum class better { higher, lower };

class runner {
 public:
  explicit runner(config c) : cfg_(std::move(c)) {}
  const config& cfg() const { return cfg_; }
  /// False when --filter excludes the scenario (skip its setup too).
  bool wants(const std::string& scenario) const {
    return cfg_.filter.empty() || scenario.find(cfg_.filter) != std::string::npos;
  }

  /// Measures every contender `repetitions` times, interleaved (A B C, B C A, ...)
  /// so drift in machine load hits all alike, and reports the medians. `work` is
  /// what one call of a body does, in `unit`s; figures are units per second
  /// (`per_second`) or, for time units, seconds per unit scaled by `time_scale`.
  /// The first contender is bufev's.
  void run(const std::string& scenario, const std::string& unit, double work,
           std::vector<contender> contenders, better b = better::higher,
           double time_scale = 1.0) {
    if (!wants(scenario)) return;
    const std::size_t n = contenders.size();
    std::vector<std::vector<double>> samples(n);
    for (auto& c : contenders) c.body();  // warm-up: caches, allocator, page faults
    for (int rep = 0; rep < cfg_.repetitions; ++rep) {
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (k + static_cast<std::size_t>(rep)) % n;
        const double secs_per_call = time_calls(contenders[i].body);
        samples[i].push_back(b == better::higher ? work / secs_per_call
                                                 : secs_per_call / work * time_scale);
      }
    }
    result r{scenario, unit, {}, {}};
    for (std::size_t i = 0; i < n; ++i) {
      r.values.emplace_back(contenders[i].impl, median(samples[i]));
      if (i != 0 && contenders[i].peer) r.peers.push_back(contenders[i].impl);
    }
    print_result(r, b);
    results_.push_back(std::move(r));
    better_.push_back(b);
  }

  /// The closing table of ratios.
  void summary() const {
    std::printf("\n%-28s %-14s %10s\n", "scenario", "vs", "ratio");
    for (std::size_t i = 0; i < results_.size(); ++i) {
      const result& r = results_[i];
      for (const auto& peer : r.peers)
        std::printf("%-28s %-14s %9.2fx\n", r.scenario.c_str(), peer.c_str(),
                    ratio(r, peer, better_[i]));
    }
    std::fflush(stdout);
  }

 private:
  // Seconds per call: calls the body until both bounds are met.
  double time_calls(const std::function<void()>& body) const {
    using clock = std::chrono::steady_clock;
    const auto min_time = std::chrono::duration<double, std::milli>(cfg_.min_ms);
    long calls = 0;
    const auto start = clock::now();
    auto now = start;
    do {
      body();
      ++calls;
      now = clock::now();
    } while (calls < cfg_.min_calls || now - start < min_time);
    return std::chrono::duration<double>(now - start).count() / static_cast<double>(calls);
  }

  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }

  static double value_of(const result& r, const std::string& impl) {
    for (const auto& [name, v] : r.values)
      if (name == impl) return v;
    return 0;
  }

  // bufev's figure over the peer's, inverted for "lower is better" units so that a
  // ratio above 1 always favours bufev.
  static double ratio(const result& r, const std::string& peer, better b) {
    const double ours = r.values.front().second;
    const double theirs = value_of(r, peer);
    if (ours <= 0 || theirs <= 0) return 0;
    return b == better::higher ? ours / theirs : theirs / ours;
  }

  static void print_result(const result& r, better b) {
    std::printf("%s\n", r.scenario.c_str());
    for (const auto& [impl, v] : r.values)
      std::printf("  %-22s %14.1f %s\n", impl.c_str(), v, r.unit.c_str());
    for (const auto& [impl, v] : r.values)
      std::printf("BENCH scenario=%s impl=%s value=%.3f unit=%s\n", r.scenario.c_str(),
                  impl.c_str(), v, r.unit.c_str());
    for (const auto& peer : r.peers)
      std::printf("RATIO scenario=%s vs=%s value=%.4f\n", r.scenario.c_str(), peer.c_str(),
                  ratio(r, peer, b));
    std::fflush(stdout);
  }

  config cfg_;
  std::vector<result> results_;
  std::vector<better> better_;
};

}  // namespace bench
