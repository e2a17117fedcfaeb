// Randomized model test: thousands of random operation sequences on two evbuffers,
// compared after every step with two std::string models. Fixed seeds, so a failure
// reproduces; the failing seed and step are printed.
#include <array>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "bufev/buffers/evbuffer.hpp"
#include "support/catch.hpp"
#include "support/files.hpp"

using bufev::eol_style;
using bufev::evbuffer;

namespace {

constexpr std::size_t npos = evbuffer::npos;

// ---- the model's answers ---------------------------------------------------------------

bufev::eol_match model_eol(const std::string& s, std::size_t start, eol_style st) {
  const bufev::eol_match none{npos, 0};
  if (start >= s.size()) return none;
  switch (st) {
    case eol_style::lf: {
      auto p = s.find('\n', start);
      return p == std::string::npos ? none : bufev::eol_match{p, 1};
    }
    case eol_style::nul: {
      auto p = s.find('\0', start);
      return p == std::string::npos ? none : bufev::eol_match{p, 1};
    }
    case eol_style::crlf_strict: {
      auto p = s.find("\r\n", start);
      return p == std::string::npos ? none : bufev::eol_match{p, 2};
    }
    case eol_style::crlf: {
      auto p = s.find('\n', start);
      if (p == std::string::npos) return none;
      if (p > start && s[p - 1] == '\r') return {p - 1, 2};
      return {p, 1};
    }
    case eol_style::any: {
      auto p = s.find_first_of("\r\n", start);
      if (p == std::string::npos) return none;
      std::size_t q = p;
      while (q < s.size() && (s[q] == '\r' || s[q] == '\n')) ++q;
      return {p, q - p};
    }
  }
  return none;
}

struct readln_result {
  std::optional<std::string> line;
  bool too_long = false;
  std::size_t consumed = 0;
};

readln_result model_readln(const std::string& s, eol_style st, std::size_t max_len) {
  readln_result r;
  if (s.empty()) return r;
  auto m = model_eol(s, 0, st);
  if (m.pos != npos && m.pos <= max_len) {
    r.line = s.substr(0, m.pos);
    r.consumed = m.pos + m.length;
    return r;
  }
  if (s.size() > max_len) {
    const bool pending_cr = (st == eol_style::crlf || st == eol_style::crlf_strict) && s.size() == max_len + 1 &&
                            s[max_len] == '\r';
    r.too_long = !pending_cr;
  }
  return r;
}

// ---- the harness ---------------------------------------------------------------------------

struct file_fixture {
  std::string content;
  std::string path;
  int fd = -1;
  file_fixture() {
    std::mt19937 g(7);
    const char alphabet[] = "ab\r\n\0xyz";
    for (int i = 0; i < 70000; ++i) content.push_back(alphabet[g() % 8]);
    fd = bufev::test::make_temp_file(path);
    if (fd >= 0 && !bufev::test::write_all(fd, content.data(), content.size())) {
      bufev::test::close_fd(fd);
      fd = -1;
    }
  }
  ~file_fixture() {
    if (fd >= 0) bufev::test::close_fd(fd);
    bufev::test::remove_file(path);
  }
};

struct harness {
  std::mt19937_64 rng;
  // Declared before the buffers: reference memory and the cleanup counters outlive them.
  std::deque<std::string> ref_memory;
  std::vector<int> cleanups;  // calls per reference
  std::vector<int> file_fds;
  std::array<evbuffer, 2> buf;
  std::array<std::string, 2> model;
  const file_fixture& file;
  std::string trace;  // last operation, for failure messages

  harness(std::uint64_t seed, const file_fixture& f) : rng(seed), file(f) {}

  std::size_t pick(std::size_t n) { return n ? static_cast<std::size_t>(rng() % n) : 0; }
  bool chance(int percent) { return static_cast<int>(rng() % 100) < percent; }

  std::size_t random_len() {
    switch (pick(10)) {
      case 0: return 0;
      case 1: return 1000 + pick(5000);
      case 2: return pick(3) == 0 ? 60000 + pick(20000) : 2000 + pick(3000);
      default: return 1 + pick(80);
    }
  }
  std::string random_bytes(std::size_t n) {
    static const char alphabet[] = "ab\r\n\0xyz";
    std::string s(n, '\0');
    for (auto& c : s) c = alphabet[pick(8)];
    return s;
  }
  eol_style random_style() { return static_cast<eol_style>(pick(5)); }

  void check(int i) {
    INFO("buffer " << i << " after " << trace);
    evbuffer& b = buf[i];
    const std::string& m = model[i];
    REQUIRE(b.size() == m.size());
    REQUIRE(b.empty() == m.empty());
    std::string got(m.size(), '\0');
    REQUIRE(b.copyout(got.data(), got.size()) == m.size());
    REQUIRE(got == m);
    std::array<asio::const_buffer, 4> ext{};
    const std::size_t extents = b.peek(npos, ext);
    REQUIRE(extents == b.segment_count());
    std::size_t from_ext = 0;
    for (std::size_t k = 0; k < std::min(extents, ext.size()); ++k) {
      REQUIRE(ext[k].size() > 0);
      REQUIRE(std::memcmp(ext[k].data(), m.data() + from_ext, ext[k].size()) == 0);
      from_ext += ext[k].size();
    }
    const auto mem = b.memory();
    REQUIRE(mem.used == m.size());
    REQUIRE(mem.segments >= extents);
  }

  void check_data(int i) {
    std::string via;
    for (asio::const_buffer cb : buf[i].data()) {
      REQUIRE(cb.size() > 0);
      via.append(static_cast<const char*>(cb.data()), cb.size());
    }
    REQUIRE(via == model[i]);
  }

  /// A front-side move out of buffer x (keeps a pending reservation of x valid).
  void move_front_out(int x, int y) {
    switch (pick(3)) {
      case 0:
        REQUIRE_FALSE(buf[y].add_buffer(buf[x]));
        model[y] += model[x];
        model[x].clear();
        break;
      case 1:
        REQUIRE_FALSE(buf[y].prepend_buffer(buf[x]));
        model[y].insert(0, model[x]);
        model[x].clear();
        break;
      default: {
        const std::size_t n = pick(model[x].size() + 1);
        REQUIRE(buf[x].remove_buffer(buf[y], n) == n);
        model[y] += model[x].substr(0, n);
        model[x].erase(0, n);
      }
    }
  }

  void step() {
    const int x = static_cast<int>(pick(2));
    const int y = 1 - x;
    evbuffer& b = buf[x];
    std::string& m = model[x];
    std::error_code ec;
    const int op = m.size() > 150000 ? 2 : static_cast<int>(pick(21));
    trace = "op " + std::to_string(op) + " on buffer " + std::to_string(x);
    switch (op) {
      case 0: {  // add
        auto s = random_bytes(random_len());
        REQUIRE_FALSE(b.add(s.data(), s.size()));
        m += s;
        break;
      }
      case 1: {  // prepend
        auto s = random_bytes(random_len());
        REQUIRE_FALSE(b.prepend(s.data(), s.size()));
        m.insert(0, s);
        break;
      }
      case 2: {  // drain, sometimes past the end
        const std::size_t n = chance(10) ? m.size() + 1 + pick(10) : pick(m.size() + 1);
        auto e = b.drain(n);
        if (n > m.size()) {
          REQUIRE(e == bufev::errc::out_of_range);
        } else {
          REQUIRE_FALSE(e);
          m.erase(0, n);
        }
        break;
      }
      case 3: {  // remove
        const std::size_t n = pick(m.size() + 20);
        std::string out(n, '\0');
        const std::size_t got = b.remove(out.data(), n);
        REQUIRE(got == std::min(n, m.size()));
        REQUIRE(out.substr(0, got) == m.substr(0, got));
        m.erase(0, got);
        break;
      }
      case 4: {  // add_buffer y -> x
        REQUIRE_FALSE(b.add_buffer(buf[y]));
        m += model[y];
        model[y].clear();
        break;
      }
      case 5: {  // prepend_buffer y -> x
        REQUIRE_FALSE(b.prepend_buffer(buf[y]));
        m.insert(0, model[y]);
        model[y].clear();
        break;
      }
      case 6: {  // remove_buffer x -> y
        const std::size_t n = chance(50) ? pick(m.size() + 10) : pick(3000);
        const std::size_t moved = b.remove_buffer(buf[y], n);
        REQUIRE(moved == std::min(n, m.size()));
        model[y] += m.substr(0, moved);
        m.erase(0, moved);
        break;
      }
      case 7: {  // reserve / commit, partial
        std::array<asio::mutable_buffer, 3> ext{};
        const std::size_t want = random_len() + 1;
        const std::size_t nx = 1 + pick(3);
        const std::size_t used = b.reserve(want, std::span(ext.data(), nx), ec);
        REQUIRE_FALSE(ec);
        REQUIRE(used >= 1);
        REQUIRE(used <= nx);
        std::size_t total = 0;
        for (std::size_t k = 0; k < used; ++k) total += ext[k].size();
        REQUIRE(total >= want);
        // Commit a random prefix of each extent, dropping trailing extents.
        const std::size_t keep = 1 + pick(used);
        std::array<asio::mutable_buffer, 3> c{};
        std::string added;
        for (std::size_t k = 0; k < keep; ++k) {
          const std::size_t len = chance(25) ? 0 : pick(std::min<std::size_t>(ext[k].size(), 3000) + 1);
          auto s = random_bytes(len);
          std::memcpy(ext[k].data(), s.data(), len);
          c[k] = asio::mutable_buffer(ext[k].data(), len);
          added += s;
        }
        const int between = static_cast<int>(pick(4));
        if (between == 1 && !m.empty()) {  // a front drain keeps the reservation
          const std::size_t d = pick(m.size() + 1);
          REQUIRE_FALSE(b.drain(d));
          m.erase(0, d);
        }
        if (between == 3) {  // moving the front out keeps it too
          move_front_out(x, y);
        }
        if (between == 2) {  // a back operation ends it
          REQUIRE_FALSE(b.add("Z", 1));
          m += "Z";
          REQUIRE(b.commit(std::span<const asio::mutable_buffer>(c.data(), keep)) == bufev::errc::not_reserved);
          break;
        }
        REQUIRE_FALSE(b.commit(std::span<const asio::mutable_buffer>(c.data(), keep)));
        m += added;
        break;
      }
      case 8: {  // prepare / commit(n)
        const std::size_t n = random_len();
        auto mb = b.prepare(n);
        REQUIRE(asio::buffer_size(mb) == n);
        const std::size_t k = pick(n + 1);
        auto s = random_bytes(n);
        asio::buffer_copy(mb, asio::buffer(s));
        if (chance(20) && !m.empty()) {
          const std::size_t d = pick(m.size() + 1);
          b.consume(d);
          m.erase(0, d);
        } else if (chance(20)) {
          move_front_out(x, y);
        }
        b.commit(k);
        m += s.substr(0, k);
        break;
      }
      case 9: {  // pullup
        const std::size_t n = chance(20) ? npos : pick(m.size() + 2);
        unsigned char* p = b.pullup(n, ec);
        const std::size_t want = n == npos ? m.size() : n;
        if (want > m.size()) {
          REQUIRE(p == nullptr);
          REQUIRE(ec == bufev::errc::out_of_range);
        } else if (m.empty()) {
          REQUIRE(p == nullptr);
        } else {
          REQUIRE_FALSE(ec);
          REQUIRE(p != nullptr);
          REQUIRE(std::memcmp(p, m.data(), want) == 0);
          std::array<asio::const_buffer, 1> first{};
          b.peek(npos, first);
          REQUIRE(first[0].size() >= want);
        }
        break;
      }
      case 10: {  // readln
        const auto st = random_style();
        const std::size_t max_len = chance(30) ? npos : pick(200);
        auto expect = model_readln(m, st, max_len);
        auto line = b.readln(st, max_len, ec);
        INFO("style " << static_cast<int>(st) << " max_len " << max_len);
        REQUIRE(line == expect.line);
        REQUIRE((ec == bufev::errc::line_too_long) == expect.too_long);
        if (!expect.too_long) REQUIRE_FALSE(ec);
        m.erase(0, expect.consumed);
        break;
      }
      case 11: {  // search
        std::string needle;
        if (!m.empty() && chance(70)) {
          const std::size_t at = pick(m.size());
          needle = m.substr(at, 1 + pick(12));
        } else {
          needle = random_bytes(pick(4));
        }
        const std::size_t start = pick(m.size() + 2);
        const std::size_t expect = m.find(needle, start);
        REQUIRE(b.search(needle.data(), needle.size(), start) == (expect == std::string::npos ? npos : expect));
        const std::size_t end = pick(m.size() + 2);
        std::size_t expect_r = npos;
        if (expect != std::string::npos && expect + needle.size() <= end) expect_r = expect;
        REQUIRE(b.search_range(needle.data(), needle.size(), start, end) == expect_r);
        break;
      }
      case 12: {  // search_eol
        const auto st = random_style();
        const std::size_t start = pick(m.size() + 2);
        const auto e = model_eol(m, start, st);
        const auto g = b.search_eol(start, st);
        INFO("style " << static_cast<int>(st) << " start " << start);
        REQUIRE(g.pos == e.pos);
        if (e.pos != npos) REQUIRE(g.length == e.length);
        break;
      }
      case 13: {  // copyout_from
        const std::size_t pos = pick(m.size() + 2);
        const std::size_t n = pick(m.size() + 2);
        std::string out(n, '\0');
        const std::size_t got = b.copyout_from(pos, out.data(), n);
        const std::string expect = pos < m.size() ? m.substr(pos, n) : std::string();
        REQUIRE(got == expect.size());
        REQUIRE(out.substr(0, got) == expect);
        break;
      }
      case 14: {  // add_reference with cleanup
        ref_memory.push_back(random_bytes(random_len()));
        const std::string& s = ref_memory.back();
        const std::size_t id = cleanups.size();
        cleanups.push_back(0);
        REQUIRE_FALSE(b.add_reference(s.data(), s.size(), [this, id](const void*, std::size_t) { ++cleanups[id]; }));
        m += s;
        break;
      }
      case 15: {  // add_buffer_reference y -> x
        REQUIRE_FALSE(b.add_buffer_reference(buf[y]));
        m += model[y];
        break;
      }
      case 16: {  // expand, then add into the expanded space
        const std::size_t n = random_len();
        REQUIRE_FALSE(b.expand(n));
        REQUIRE(b.writable_size() >= n);
        const auto before = b.memory().allocated;
        auto s = random_bytes(n);
        REQUIRE_FALSE(b.add(s.data(), s.size()));
        REQUIRE(b.memory().allocated == before);
        m += s;
        break;
      }
      case 17: {  // consume
        const std::size_t n = pick(m.size() + 10);
        b.consume(n);
        m.erase(0, std::min(n, m.size()));
        break;
      }
      case 18: {  // add_file
        if (file.fd < 0 || !chance(50)) break;
        const std::size_t off = pick(file.content.size());
        const std::size_t len = pick(std::min<std::size_t>(file.content.size() - off, 6000) + 1);
        const int fd = bufev::test::dup_fd(file.fd);
        REQUIRE(fd >= 0);
        REQUIRE_FALSE(b.add_file(fd, off, len));
        if (len) file_fds.push_back(fd);
        m += file.content.substr(off, len);
        break;
      }
      case 19: {  // data() as a gather list, then consume what was "written"
        check_data(x);
        std::size_t n = 0;
        for (asio::const_buffer cb : b.data()) n += cb.size();
        REQUIRE(n == m.size());
        break;
      }
      case 20: {  // front_file + drain of the region, like a sendfile transport
        if (auto fr = b.front_file()) {
          const std::size_t n = 1 + pick(fr->length);
          REQUIRE(std::string_view(file.content).substr(fr->offset, n) == std::string_view(m).substr(0, n));
          REQUIRE_FALSE(b.drain(n));
          m.erase(0, n);
        }
        break;
      }
    }
    for (int c : cleanups) REQUIRE(c <= 1);
    check(0);
    check(1);
  }
};

}  // namespace

TEST_CASE("evbuffer matches a std::string model under random operations", "[evbuffer][model]") {
  file_fixture file;
  REQUIRE(file.fd >= 0);
  constexpr int sequences = 2000;
  constexpr int steps = 40;
  for (int seq = 0; seq < sequences; ++seq) {
    std::vector<int> fds;
    {
      harness h(0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(seq + 1), file);
      for (int i = 0; i < steps; ++i) {
        INFO("seed sequence " << seq << " step " << i);
        h.step();
      }
      // Release the buffers' contents: every reference must now be cleaned up exactly
      // once and every descriptor the buffers owned closed.
      h.buf[0] = evbuffer();
      h.buf[1] = evbuffer();
      for (std::size_t k = 0; k < h.cleanups.size(); ++k) {
        INFO("sequence " << seq << " reference " << k);
        REQUIRE(h.cleanups[k] == 1);
      }
      fds = h.file_fds;
    }
    for (int fd : fds) {
      INFO("sequence " << seq << " fd " << fd);
      REQUIRE_FALSE(bufev::test::fd_open(fd));
    }
  }
}
