// A compile-time filter stack over an in-memory pair: length-prefix framing
// with a hand-written filter on top, graceful close, and the stack's type.
// (zlib works the same way: #include <bufev/filters/zlib.hpp> and link ZLIB::ZLIB.)
#include <bufev/bufev.hpp>

#include <cctype>
#include <cstdio>
#include <string>
#include <type_traits>

#include <asio/io_context.hpp>

namespace {

// A filter of one's own: upper-cases what is written, passes input unchanged.
struct shout {
  template <class Src, class Dst>
  bufev::filter_result filter_output(Src& src, Dst& dst, std::size_t limit, bufev::flush_mode) {
    char buf[4096];
    while (!src.empty() && limit != 0) {
      const std::size_t n = src.remove(buf, std::min(sizeof buf, limit));
      for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(buf[i])));
      if (dst.add(buf, n)) return bufev::filter_result::error;
      limit -= n;
    }
    return bufev::filter_result::ok;
  }
  template <class Src, class Dst>
  bufev::filter_result filter_input(Src& src, Dst& dst, std::size_t limit, bufev::flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return bufev::filter_result::ok;
  }
};

}  // namespace

int main() {
  asio::io_context io;
  auto sides = bufev::make_pair(io.get_executor());

  // Written bottom-up: the pair, framing on it, `shout` on top. One type:
  auto client = bufev::make_stack(std::move(sides.first), bufev::filters::length_prefix{}, shout{});
  // ...or with `|`: each `|` puts a filter on top of what is left of it.
  auto server = std::move(sides.second) | bufev::filters::length_prefix{} | shout{};

  static_assert(std::is_same_v<std::remove_reference_t<decltype(client->lowest_layer())>,
                               bufev::pair_bufferevent<>>);

  std::string received;
  bool eof = false;
  server->setcb([&](auto& bev) {
                  std::string chunk(bev.input().size(), '\0');
                  chunk.resize(bev.read(chunk.data(), chunk.size()));
                  received += chunk;
                },
                nullptr,
                [&](auto&, bufev::events what, std::error_code) {
                  eof = bufev::any(what, bufev::events::eof);
                });
  server->enable(bufev::direction::read);

  (void)client->write("hello, ");
  (void)client->write("filtered world\n");
  // Every layer's pending bytes and trailers go down, then the pair closes:
  // the server sees all the data, then EOF.
  client.reset_gracefully();

  while (!eof && io.run_one() != 0) {
  }
  std::printf("%s", received.c_str());
  return received == "HELLO, FILTERED WORLD\n" && eof ? 0 : 1;
}
