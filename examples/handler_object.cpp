// Callbacks as a handler object: a type whose on_read / on_event members the
// bufferevent finds by concepts and calls directly (no std::function, no
// virtual call). Both sides of a pair are bufferevents of the same type
// `bev_t`, so one handler type plays both roles here: an upper-casing echo
// server and a client that collects the answers.
//
// docs/core.md shows excerpts of this program. Exits 0 when everything happened
// as shown.
// Comment lines `// [name]` delimit the excerpts the docs quote; keep them in sync.
#include <bufev/bufev.hpp>

#include <asio/io_context.hpp>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// [handler]
struct peer;  // the handler type; bev_t only names it, so it may be incomplete here
using bev_t = bufev::pair_bufferevent<bufev::handler<peer>>;

struct peer {
  enum class role_t { server, client };
  role_t role = role_t::client;
  std::vector<std::string> lines;  // what a client received
  bufev::events last_event = bufev::events::none;

  // Called after data arrived (with deferred callbacks: after the current
  // handler). Exactly this signature, or a template `on_read(auto& bev)`.
  void on_read(bev_t& bev) {
    std::error_code ec;
    while (auto line = bev.input().readln(bufev::eol_style::lf, 1024, ec)) {
      if (role == role_t::server) {
        for (char& c : *line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        bev.write(*line + "\n");
      } else {
        lines.push_back(std::move(*line));
      }
    }
    if (ec) bev.close();  // over-long line: drop the peer
  }

  // eof / error / timeout / connected, with the error that caused it.
  void on_event(bev_t& bev, bufev::events what, std::error_code ec) {
    last_event = what;
    if (ec) std::fprintf(stderr, "event 0x%x: %s\n", static_cast<unsigned>(what), ec.message().c_str());
    if (role == role_t::server && bufev::any(what, bufev::events::eof))
      bev.flush(bufev::direction::write, bufev::flush_mode::finished);  // answer EOF with EOF
  }
  // No on_write and no on_writability: those callbacks simply do not exist for
  // this type, and cost nothing.
};

// Checked when bev_t is created; spelled out here for the reader.
static_assert(bufev::bufferevent_handler<peer, bev_t>);
// [handler]

// [wrong]
// A member with a callback's name but the wrong signature is not ignored: this
// type does not model the concept, and creating a bufferevent with it fails to
// compile with "bufev handler: on_read must be callable as on_read(Bev&)".
struct wrong_signature {
  void on_read(int) {}
};
static_assert(!bufev::bufferevent_handler<wrong_signature,
                                          bufev::pair_bufferevent<bufev::handler<wrong_signature>>>);
// [wrong]

}  // namespace

int main() {
  asio::io_context io;

  // --- make_pair_with: each side gets its own handler object -------------------
  {
    // [make_pair_with]
    peer server_handler;
    server_handler.role = peer::role_t::server;
    auto sides = bufev::make_pair_with<bev_t>(peer{}, server_handler, io.get_executor());
    bev_t& client = *sides.first;
    bev_t& server = *sides.second;
    client.enable(bufev::direction::read);
    server.enable(bufev::direction::read);

    client.write("hello\nhandler objects\n");
    client.flush(bufev::direction::write, bufev::flush_mode::finished);  // then EOF
    io.run_for(std::chrono::seconds(5));

    // The bufferevent owns its handler; handler() reaches it.
    const peer& got = client.handler();
    // [make_pair_with]
    expect(got.lines == std::vector<std::string>{"HELLO", "HANDLER OBJECTS"}, "echoed upper-case");
    expect(got.last_event == (bufev::events::reading | bufev::events::eof),
           "client saw EOF after the answers");
    expect(server.handler().last_event == (bufev::events::reading | bufev::events::eof),
           "server saw the client's EOF");
  }

  // --- make_pair: default-constructed handlers, configured afterwards ------------
  {
    io.restart();
    // [make_pair]
    auto sides = bufev::make_pair<bev_t>(io.get_executor());
    sides.second->handler().role = peer::role_t::server;
    sides.first->enable(bufev::direction::read);
    sides.second->enable(bufev::direction::read);
    sides.first->write("one\ntwo\n");
    io.run_for(std::chrono::seconds(5));
    // [make_pair]
    expect(sides.first->handler().lines == std::vector<std::string>{"ONE", "TWO"},
           "default-constructed handlers work the same");

    // Closing a side is EOF for its partner; the closed side gets no callback.
    sides.first.reset();
    io.restart();  // run_for stopped when it ran out of work
    io.run_for(std::chrono::seconds(5));
    expect(sides.second->handler().last_event == (bufev::events::reading | bufev::events::eof),
           "server saw EOF when the client was freed");
  }

  if (failures == 0) std::printf("handler_object: ok\n");
  return failures == 0 ? 0 : 1;
}
