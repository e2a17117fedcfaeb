// on_read exists but takes the wrong argument: must be a compile error naming on_read.
#include <bufev/bufev.hpp>
#include <asio/io_context.hpp>

struct bad_handler {
  void on_read(int) {}
};

int main() {
  asio::io_context io;
  auto p = bufev::make_pair<bufev::pair_bufferevent<bufev::handler<bad_handler>>>(io.get_executor());
}
