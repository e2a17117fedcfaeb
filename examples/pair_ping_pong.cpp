// Two sides of an in-memory pair speak a line protocol: the client sends
// "PING n", the server answers "PONG n". The client produces as fast as the
// write watermarks let it (backpressure through writability), the server keeps
// its input bounded with a read high watermark and reads lines with a maximum
// length. The conversation ends gracefully: flush(write, finished) is EOF for
// the partner, which answers the same way. A second client then sends a line
// that never ends, and the server refuses it instead of buffering it forever.
// Last, the same protocol code runs under injected faults: short transfers,
// a failing transfer, a connection reset.
//
// docs/pair.md walks through this program. Exits 0 when everything happened as
// shown.
// Comment lines `// [name]` delimit the excerpts the docs quote; keep them in sync.
#include <bufev/bufev.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace {

using bev_t = bufev::pair_bufferevent<>;  // evbuffers, runtime watermarks, deferred callbacks

constexpr std::size_t max_line = 64;  // longest line either side accepts
constexpr int total_pings = 1000;

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// --- server -------------------------------------------------------------------

struct server_stats {
  int answered = 0;
  int refused = 0;
  bool saw_eof = false;
  std::error_code error;
};

// [server]
void serve(bev_t& bev, server_stats& st) {
  std::error_code ec;
  while (auto line = bev.input().readln(bufev::eol_style::crlf, max_line, ec)) {
    if (line->rfind("PING ", 0) != 0) continue;  // not ours: ignore
    bev.write("PONG " + line->substr(5) + "\r\n");
    ++st.answered;
  }
  if (ec == bufev::errc::line_too_long) {
    // A peer that never ends its line cannot make us buffer without limit.
    ++st.refused;
    bev.write("ERR line too long\r\n");
    bev.flush(bufev::direction::write, bufev::flush_mode::finished);  // reply, then EOF
    bev.disable(bufev::direction::read);
  }
}

void setup_server(bev_t& server, server_stats& st) {
  // At most 128 bytes wait in the input: the pair stops moving data at the
  // mark and resumes by itself once serve() has drained lines below it.
  server.setwatermark(bufev::direction::read, 0, 128);
  server.setcb([&st](bev_t& bev) { serve(bev, st); }, nullptr,
               [&st](bev_t& bev, bufev::events what, std::error_code ec) {
                 if (bufev::any(what, bufev::events::error)) st.error = ec;
                 if (bufev::any(what, bufev::events::eof)) {
                   st.saw_eof = true;
                   // The client is done: send what is left, then our own EOF.
                   bev.flush(bufev::direction::write, bufev::flush_mode::finished);
                 }
               });
  server.enable(bufev::direction::read);
}
// [server]

// --- client -------------------------------------------------------------------

struct client_state {
  int sent = 0;
  int received = 0;
  int out_of_order = 0;
  int pauses = 0;  // how often backpressure stopped the producer
  bool saw_eof = false;
  std::error_code error;
};

// [client]
// Writes pings while the output is writable: above the write high watermark
// writable() turns false, and on_writability(true) resumes us once the output
// has drained to the low watermark.
void produce(bev_t& bev, client_state& st) {
  while (st.sent < total_pings) {
    if (!bev.writable()) {
      ++st.pauses;
      return;
    }
    bev.write("PING " + std::to_string(st.sent++) + "\r\n");
  }
}

void on_pongs(bev_t& bev, client_state& st) {
  std::error_code ec;
  while (auto line = bev.input().readln(bufev::eol_style::crlf, max_line, ec)) {
    if (*line != "PONG " + std::to_string(st.received)) ++st.out_of_order;
    if (++st.received == total_pings) {
      // Graceful end: everything queued reaches the server, then it sees EOF.
      bev.flush(bufev::direction::write, bufev::flush_mode::finished);
    }
  }
}

void setup_client(bev_t& client, client_state& st) {
  client.setwatermark(bufev::direction::write, 64, 256);
  client.setcb([&st](bev_t& bev) { on_pongs(bev, st); }, nullptr,
               [&st](bev_t&, bufev::events what, std::error_code ec) {
                 if (bufev::any(what, bufev::events::error)) st.error = ec;
                 if (bufev::any(what, bufev::events::eof)) st.saw_eof = true;
               });
  client.set_writability_cb([&st](bev_t& bev, bool writable) {
    if (writable) produce(bev, st);
  });
  client.enable(bufev::direction::read);
}
// [client]

}  // namespace

int main() {
  asio::io_context io;

  // --- a well-behaved client ---------------------------------------------------
  {
    // [create]
    // Qualified: for Asio executors, unqualified make_pair also finds std::make_pair.
    auto sides = bufev::make_pair(io.get_executor());
    bev_t& client = *sides.first;
    bev_t& server = *sides.second;
    // [create]

    server_stats srv;
    client_state cli;
    setup_server(server, srv);
    setup_client(client, cli);
    produce(client, cli);  // fills the output up to the high watermark

    // Bounded: a broken build fails instead of hanging.
    io.run_for(std::chrono::seconds(5));

    expect(cli.sent == total_pings, "client sent every ping");
    expect(srv.answered == total_pings, "server answered every ping");
    expect(cli.received == total_pings, "client received every pong");
    expect(cli.out_of_order == 0, "pongs arrived in order");
    expect(cli.pauses > 0, "backpressure paused the producer");
    expect(srv.saw_eof, "server saw the client's EOF");
    expect(cli.saw_eof, "client saw the server's EOF");
    expect(srv.refused == 0, "no line refused");
    std::printf("ping-pong: %d pings, %d answered, producer paused %d times\n", cli.sent,
                srv.answered, cli.pauses);
  }

  // --- a client whose line never ends --------------------------------------------
  {
    io.restart();
    auto sides = bufev::make_pair(io.get_executor());
    bev_t& client = *sides.first;
    bev_t& server = *sides.second;
    server_stats srv;
    setup_server(server, srv);

    std::string reply;
    bool eof = false;
    client.setcb(
        [&reply](bev_t& bev) {
          std::error_code ec;
          while (auto line = bev.input().readln(bufev::eol_style::crlf, max_line, ec)) reply = *line;
        },
        nullptr,
        [&eof](bev_t&, bufev::events what, std::error_code) {
          eof = bufev::any(what, bufev::events::eof);
        });
    client.enable(bufev::direction::read);
    client.write(std::string(100, 'x'));  // no end of line within max_line bytes

    io.run_for(std::chrono::seconds(5));

    expect(srv.refused == 1, "server refused the over-long line");
    expect(reply == "ERR line too long", "client got the error reply");
    expect(eof, "then EOF");
    expect(server.input().size() == 100, "the refused bytes were not silently dropped");
    std::printf("over-long line: refused with \"%s\"\n", reply.c_str());
  }

  // --- the same protocol code under injected faults --------------------------------
  {
    io.restart();
    // [faults]
    // Short transfers: at most 5 bytes move at a time, so every line arrives in
    // pieces. The protocol code must not care.
    auto sides = bufev::make_pair(io.get_executor(), bufev::pair_faults{.max_transfer = 5});
    // [faults]
    bev_t& client = *sides.first;
    bev_t& server = *sides.second;
    server_stats srv;
    client_state cli;
    setup_server(server, srv);
    setup_client(client, cli);
    produce(client, cli);
    io.run_for(std::chrono::seconds(5));
    expect(cli.received == total_pings && cli.out_of_order == 0, "short transfers: every pong, in order");
    expect(cli.saw_eof && srv.saw_eof && !cli.error && !srv.error, "short transfers: clean end");
    std::printf("short transfers: %d pongs in order\n", cli.received);
  }
  {
    io.restart();
    auto sides = bufev::make_pair(io.get_executor());
    bev_t& client = *sides.first;
    bev_t& server = *sides.second;
    server_stats srv;
    client_state cli;
    setup_server(server, srv);
    setup_client(client, cli);
    // [fail]
    // The client's 3rd transfer fails: the client gets event(writing|error), the
    // server event(reading|error), both with the injected error code.
    client.transport().faults().fail_transfer = 3;
    // [fail]
    produce(client, cli);
    io.run_for(std::chrono::seconds(5));
    expect(cli.error == bufev::errc::injected_fault, "client saw the injected fault");
    expect(srv.error == bufev::errc::injected_fault, "server saw it too");
    expect(cli.received < total_pings, "the conversation stopped");
    expect(!bufev::any(client.enabled(), bufev::direction::write), "client writing disabled");
    std::printf("failed transfer: stopped after %d pongs (%s)\n", cli.received,
                cli.error.message().c_str());
  }
  {
    io.restart();
    auto sides = bufev::make_pair(io.get_executor());
    bev_t& client = *sides.first;
    bev_t& server = *sides.second;
    server_stats srv;
    client_state cli;
    setup_server(server, srv);
    setup_client(client, cli);
    produce(client, cli);
    // [reset]
    // A reset: pending output on both sides is discarded, both get
    // event(reading|error, errc::connection_reset), the pair is unlinked.
    client.transport().inject_reset(client);
    // [reset]
    io.run_for(std::chrono::seconds(5));
    expect(cli.error == bufev::errc::connection_reset, "client saw the reset");
    expect(srv.error == bufev::errc::connection_reset, "server saw the reset");
    expect(client.partner() == nullptr && server.partner() == nullptr, "pair unlinked");
    expect(cli.received == 0 && client.output().empty(), "nothing delivered, output discarded");
  }

  if (failures == 0) std::printf("pair_ping_pong: ok\n");
  return failures == 0 ? 0 : 1;
}
