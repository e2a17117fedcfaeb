// No recognisable callback (on_reed is a typo): must be a compile error.
#include <bufev/bufev.hpp>
#include <asio/io_context.hpp>

struct typo_handler {
  void on_reed(auto&) {}
};

int main() {
  asio::io_context io;
  auto p = bufev::make_pair<bufev::pair_bufferevent<bufev::handler<typo_handler>>>(io.get_executor());
}
