// Rate limiting: a bufferevent with its own token bucket, and a group whose
// members share one bucket. In-memory pairs on an io_context; runs in well
// under a second.
#include <bufev/bufev.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

#include <asio/io_context.hpp>

namespace {

using namespace std::chrono_literals;

// [policy]
// rate_limited adds token buckets; without it (the default) there is no cost.
using bev_t = bufev::pair_bufferevent<bufev::rate_limited>;
// [policy]

// Runs the loop until `done()` or one second, whichever comes first.
template <class Pred>
bool run_until(asio::io_context& io, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(5ms);
  }
  return done();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  asio::io_context io;
  const std::string data(256 * 1024, 'x');

  // --- one bufferevent, its own bucket -----------------------------------------
  {
    auto sides = bufev::make_pair<bev_t>(io.get_executor());
    bev_t& sender = *sides.first;
    bev_t& receiver = *sides.second;
    receiver.enable(bufev::direction::read);
    std::size_t received = 0;
    receiver.setcb([&](bev_t& b) { received += b.input().size(); (void)b.input().drain(b.input().size()); },
                   nullptr, nullptr);

    // [config]
    // 64 KiB per 10 ms tick for writing (about 6.6 MB/s), bursts up to 64 KiB;
    // reading is left practically unlimited.
    std::error_code ec;
    const bufev::rate_limit_config cfg =
        bufev::make_rate_limit_config(/*read_rate=*/1 << 30, /*read_burst=*/1 << 30,
                                      /*write_rate=*/64 * 1024, /*write_burst=*/64 * 1024,
                                      /*tick=*/10ms, ec);
    if (ec || sender.rate_limit().set(cfg)) return 1;
    // [config]

    const auto t0 = std::chrono::steady_clock::now();
    if (sender.write(data)) return 1;
    if (!run_until(io, [&] { return received == data.size(); })) return 1;
    const double secs = seconds_since(t0);
    // The first 64 KiB go at once, the other three take a tick each.
    std::printf("own bucket: %zu bytes in %.3f s (%.1f MB/s; configured 6.6 MB/s)\n", received, secs,
                double(data.size() - 64 * 1024) / secs / 1e6);
    if (secs < 0.025) return 1;  // the limit did hold the sender back
    // Suspension by the rate limit is internal: enabled() still says write.
    if (sender.enabled() != bufev::direction::write) return 1;

    // [reconfigure]
    // Change the limit while running, or remove it.
    (void)sender.rate_limit().set(bufev::rate_limit_config{1 << 30, 1 << 30, 1024, 1024, 10ms});
    sender.rate_limit().clear();
    // [reconfigure]
  }

  // --- a group of three sharing one bucket ---------------------------------------
  {
    // [group]
    std::error_code ec;
    auto group = bufev::rate_limit_group::create(
        io.get_executor(), bufev::rate_limit_config{1 << 30, 1 << 30, 96 * 1024, 96 * 1024, 10ms}, ec);
    if (!group) return 1;
    group->set_min_share(4096);  // no member is ever offered less per write
    // [group]

    constexpr int n = 3;
    bufev::bufferevent_ptr<bev_t> senders[n], receivers[n];
    std::size_t received[n] = {};
    for (int i = 0; i < n; ++i) {
      auto sides = bufev::make_pair<bev_t>(io.get_executor());
      senders[i] = std::move(sides.first);
      receivers[i] = std::move(sides.second);
      receivers[i]->enable(bufev::direction::read);
      receivers[i]->setcb([&received, i](bev_t& b) {
        received[i] += b.input().size();
        (void)b.input().drain(b.input().size());
      }, nullptr, nullptr);
      // [join]
      if (senders[i]->rate_limit().add_to_group(group)) return 1;
      // [join]
      if (senders[i]->write(data.substr(0, 128 * 1024))) return 1;
    }
    const std::size_t total = n * 128 * 1024;
    if (!run_until(io, [&] { return group->total_written() == total; })) return 1;
    // [totals]
    std::printf("group: %llu bytes written by %zu members (%zu / %zu / %zu)\n",
                static_cast<unsigned long long>(group->total_written()), group->size(), received[0],
                received[1], received[2]);
    group->reset_totals();
    // [totals]
    if (!run_until(io, [&] { return received[0] + received[1] + received[2] == total; })) return 1;
  }
  return 0;
}
