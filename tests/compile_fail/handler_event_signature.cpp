// on_event missing the error_code parameter: must be a compile error naming on_event.
#include <bufev/bufev.hpp>
#include <asio/io_context.hpp>

struct bad_event_handler {
  void on_read(auto&) {}
  void on_event(auto&, bufev::events) {}
};

int main() {
  asio::io_context io;
  auto p = bufev::make_pair<bufev::pair_bufferevent<bufev::handler<bad_event_handler>>>(io.get_executor());
}
