// flat_buffer and static_buffer<N>: every operation, error paths, a randomized
// model test against std::string, and Asio interop over loopback TCP.
#include "support/catch.hpp"

#include <bufev/buffers/dynamic_buffer.hpp>
#include <bufev/buffers/flat_buffer.hpp>
#include <bufev/buffers/static_buffer.hpp>

#include <asio.hpp>

#include <malloc.h>  // mallinfo2 (glibc), _heapwalk (Windows)

#include <array>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using bufev::buffer_change;
using bufev::buffer_end;
using bufev::eol_style;
using bufev::errc;
using bufev::flat_buffer;
using bufev::static_buffer;

constexpr std::size_t npos = static_cast<std::size_t>(-1);

template <class B>
std::string str(const B& b) {
  const asio::const_buffer d = b.data();
  return {static_cast<const char*>(d.data()), d.size()};
}

// Records every observer call.
struct change_log {
  std::vector<buffer_change> changes;
  static void on_change(void* ctx, const buffer_change& c) {
    static_cast<change_log*>(ctx)->changes.push_back(c);
  }
  bufev::buffer_observer observer() { return {&change_log::on_change, this}; }
};

bool same(const buffer_change& c, std::size_t orig, std::size_t added, std::size_t deleted) {
  return c.orig_size == orig && c.n_added == added && c.n_deleted == deleted;
}

// Big enough that the shared tests never hit the fixed capacity.
using static_4k = static_buffer<4096>;

// --- allocation counting (for "static_buffer never allocates") ---------------
#if defined(__SANITIZE_ADDRESS__)
#define BUFEV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUFEV_TEST_ASAN 1
#endif
#endif

#ifdef BUFEV_TEST_ASAN
extern "C" int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void*, std::size_t),
    void (*free_hook)(const volatile void*));
std::size_t g_allocations = 0;
void count_malloc(const volatile void*, std::size_t) { ++g_allocations; }
void ignore_free(const volatile void*) {}
// Every allocation made through the sanitizer's allocator (malloc and new alike).
std::size_t allocation_count() {
  static const bool installed =
      __sanitizer_install_malloc_and_free_hooks(&count_malloc, &ignore_free) != 0;
  (void)installed;
  return g_allocations;
}
#elif defined(_WIN32)
// No mallinfo2: bytes in the CRT heap's used blocks (net effect only).
std::size_t allocation_count() {
  _HEAPINFO entry{};
  std::size_t used = 0;
  while (::_heapwalk(&entry) == _HEAPOK)
    if (entry._useflag == _USEDENTRY) used += entry._size;
  return used;
}
#else
// Without a sanitizer: bytes currently allocated from the heap (net effect only).
std::size_t allocation_count() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
#endif

}  // namespace

// ---------------------------------------------------------------------------
// Type-level properties
// ---------------------------------------------------------------------------

static_assert(bufev::byte_buffer<flat_buffer> && bufev::freezable_buffer<flat_buffer>);
static_assert(bufev::byte_buffer<static_buffer<1>> && bufev::freezable_buffer<static_buffer<1>>);
static_assert(bufev::byte_buffer<static_4k> && bufev::freezable_buffer<static_4k>);
// Nothing to free, so nothing is ever allocated (LSan would report it otherwise).
static_assert(std::is_trivially_destructible_v<static_buffer<64>>);
// The bytes live inline: the object is N plus a few words of bookkeeping.
static_assert(sizeof(static_buffer<64>) >= 64 && sizeof(static_buffer<64>) <= 64 + 64);
static_assert(sizeof(static_buffer<4096>) - sizeof(static_buffer<64>) == 4096 - 64);
static_assert(std::is_nothrow_move_constructible_v<flat_buffer>);
// Passing the buffer itself to an Asio algorithm would copy it (data lost):
// only the dynamic_buffer() adaptor is accepted.
static_assert(!asio::is_dynamic_buffer_v1<flat_buffer>::value);
static_assert(!asio::is_dynamic_buffer_v1<static_4k>::value);

// ---------------------------------------------------------------------------
// Operations shared by both buffers
// ---------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contiguous buffers: add, copyout, remove, drain", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType b;
  REQUIRE(b.empty());
  REQUIRE(b.size() == 0);
  REQUIRE(b.data().size() == 0);

  REQUIRE_FALSE(b.add("hello ", 6));
  REQUIRE_FALSE(b.add(std::string_view("world")));
  REQUIRE(b.size() == 11);
  REQUIRE_FALSE(b.empty());
  REQUIRE(str(b) == "hello world");
  REQUIRE(b.capacity() >= 11);
  REQUIRE(b.max_size() >= b.capacity());

  SECTION("zero-length and null appends") {
    REQUIRE_FALSE(b.add(nullptr, 0));
    REQUIRE(b.add(nullptr, 3) == errc::invalid_argument);
    REQUIRE(str(b) == "hello world");
  }
  SECTION("copyout does not consume") {
    char out[32] = {};
    REQUIRE(b.copyout(out, 5) == 5);
    REQUIRE(std::string(out, 5) == "hello");
    REQUIRE(b.copyout(out, sizeof out) == 11);
    REQUIRE(b.size() == 11);
  }
  SECTION("copyout_from") {
    char out[32] = {};
    REQUIRE(b.copyout_from(6, out, 3) == 3);
    REQUIRE(std::string(out, 3) == "wor");
    REQUIRE(b.copyout_from(6, out, 100) == 5);
    REQUIRE(std::string(out, 5) == "world");
    REQUIRE(b.copyout_from(11, out, 1) == 0);
    REQUIRE(b.copyout_from(npos, out, 1) == 0);
    REQUIRE(b.size() == 11);
  }
  SECTION("remove consumes") {
    char out[32] = {};
    REQUIRE(b.remove(out, 6) == 6);
    REQUIRE(std::string(out, 6) == "hello ");
    REQUIRE(str(b) == "world");
    REQUIRE(b.remove(out, 100) == 5);
    REQUIRE(b.empty());
    REQUIRE(b.remove(out, 1) == 0);
  }
  SECTION("drain") {
    REQUIRE_FALSE(b.drain(0));
    REQUIRE_FALSE(b.drain(6));
    REQUIRE(str(b) == "world");
    REQUIRE(b.drain(6) == errc::out_of_range);  // too much: nothing drained
    REQUIRE(str(b) == "world");
    REQUIRE_FALSE(b.drain(5));
    REQUIRE(b.empty());
    REQUIRE(b.drain(1) == errc::out_of_range);
  }
  SECTION("clear") {
    REQUIRE_FALSE(b.clear());
    REQUIRE(b.empty());
  }
  SECTION("pullup") {
    std::error_code ec;
    unsigned char* p = b.pullup(11, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(std::memcmp(p, "hello world", 11) == 0);
    REQUIRE(b.pullup(npos, ec) == p);
    REQUIRE(b.pullup(12, ec) == nullptr);
    REQUIRE(ec == errc::out_of_range);
  }
}

TEMPLATE_TEST_CASE("contiguous buffers: prepend", "[flat][static]", flat_buffer, static_4k) {
  TestType b;
  SECTION("into an empty buffer") {
    REQUIRE_FALSE(b.prepend("abc", 3));
    REQUIRE(str(b) == "abc");
    REQUIRE_FALSE(b.add("def", 3));
    REQUIRE(str(b) == "abcdef");
  }
  SECTION("into room left by a drain") {
    REQUIRE_FALSE(b.add("xxxxbody", 8));
    REQUIRE_FALSE(b.drain(4));
    REQUIRE_FALSE(b.prepend(std::string_view("head")));
    REQUIRE(str(b) == "headbody");
  }
  SECTION("with no room in front: the bytes shift") {
    REQUIRE_FALSE(b.add("body", 4));
    for (int i = 0; i < 20; ++i) REQUIRE_FALSE(b.prepend("0123456789", 10));
    REQUIRE(b.size() == 204);
    const std::string s = str(b);
    REQUIRE(s.substr(200) == "body");
    REQUIRE(s.substr(0, 10) == "0123456789");
    REQUIRE_FALSE(b.add("!", 1));
    REQUIRE(str(b).substr(200) == "body!");
  }
  SECTION("null and empty") {
    REQUIRE_FALSE(b.prepend(nullptr, 0));
    REQUIRE(b.prepend(nullptr, 1) == errc::invalid_argument);
    REQUIRE(b.empty());
  }
}

TEMPLATE_TEST_CASE("contiguous buffers: appending the buffer's own bytes", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType b;
  REQUIRE_FALSE(b.add("abcd", 4));
  // Doubling repeatedly forces compaction/growth while the source is our own data.
  for (int i = 0; i < 8; ++i) {
    const asio::const_buffer d = b.data();
    REQUIRE_FALSE(b.add(d.data(), d.size()));
  }
  REQUIRE(b.size() == 4u << 8);
  const std::string s = str(b);
  for (std::size_t i = 0; i < s.size(); i += 4) REQUIRE(s.compare(i, 4, "abcd") == 0);

  REQUIRE_FALSE(b.drain(b.size() - 4));
  const asio::const_buffer d = b.data();
  REQUIRE_FALSE(b.prepend(static_cast<const char*>(d.data()) + 2, 2));  // "cd"
  REQUIRE(str(b) == "cdabcd");

  // Bytes inside the storage but not readable cannot be a source.
  REQUIRE_FALSE(b.clear());
  REQUIRE_FALSE(b.add("abcd", 4));  // an emptied buffer restarts at offset 0
  REQUIRE(b.capacity() > b.size());
  const auto* p = static_cast<const unsigned char*>(b.data().data());
  REQUIRE(b.add(p + 4, 1) == errc::invalid_argument);
  REQUIRE(b.add(p + 2, 3) == errc::invalid_argument);  // straddles the end of the data
  REQUIRE(b.prepend(p + 4, 1) == errc::invalid_argument);
  REQUIRE(str(b) == "abcd");
}

TEMPLATE_TEST_CASE("contiguous buffers: prepare, commit, consume", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType b;
  REQUIRE_FALSE(b.add("ab", 2));
  asio::mutable_buffer m = b.prepare(10);
  REQUIRE(m.size() == 10);
  std::memcpy(m.data(), "0123456789", 10);
  REQUIRE(b.size() == 2);  // not readable before commit
  b.commit(4);
  REQUIRE(str(b) == "ab0123");

  SECTION("commit is clamped to what was prepared") {
    m = b.prepare(3);
    std::memcpy(m.data(), "xyz", 3);
    b.commit(100);
    REQUIRE(str(b) == "ab0123xyz");
    b.commit(5);  // nothing prepared any more
    REQUIRE(str(b) == "ab0123xyz");
  }
  SECTION("a modification in between invalidates the prepared bytes") {
    (void)b.prepare(8);
    REQUIRE_FALSE(b.add("Q", 1));
    b.commit(8);
    REQUIRE(str(b) == "ab0123Q");
  }
  SECTION("consume is clamped to size") {
    b.consume(2);
    REQUIRE(str(b) == "0123");
    b.consume(100);
    REQUIRE(b.empty());
    b.consume(1);
    REQUIRE(b.empty());
  }
  SECTION("prepare past max_size throws length_error, buffer unchanged") {
    REQUIRE_THROWS_AS(b.prepare(b.max_size()), std::length_error);
    REQUIRE_THROWS_AS(b.prepare(npos), std::length_error);
    REQUIRE(str(b) == "ab0123");
  }
}

TEMPLATE_TEST_CASE("contiguous buffers: search and search_range", "[flat][static]", flat_buffer,
                   static_4k) {
  TestType b;
  REQUIRE_FALSE(b.add(std::string_view("xxabcxxabcab")));
  REQUIRE(b.search("abc", 3) == 2);
  REQUIRE(b.search("abc", 3, 2) == 2);
  REQUIRE(b.search("abc", 3, 3) == 7);
  REQUIRE(b.search(std::string_view("abc"), 8) == npos);
  REQUIRE(b.search(std::string_view("ab"), 8) == 10);
  REQUIRE(b.search(std::string_view("abcabc")) == npos);
  REQUIRE(b.search(std::string_view("b")) == 3);
  REQUIRE(b.search(std::string_view("xxabcxxabcab")) == 0);
  REQUIRE(b.search(std::string_view("xxabcxxabcabx")) == npos);
  // empty pattern: like std::string::find
  REQUIRE(b.search("", 0, 5) == 5);
  REQUIRE(b.search("", 0, 12) == 12);
  REQUIRE(b.search("", 0, 13) == npos);
  REQUIRE(b.search("a", 1, npos) == npos);
  // the match must end at or before `end`
  REQUIRE(b.search_range("abc", 3, 0, 5) == 2);
  REQUIRE(b.search_range("abc", 3, 0, 4) == npos);
  REQUIRE(b.search_range(std::string_view("abc"), 3, 10) == 7);
  REQUIRE(b.search_range(std::string_view("abc"), 3, 9) == npos);
  REQUIRE(b.search_range(std::string_view("ab"), 0, npos) == 2);
  REQUIRE(b.search_range(std::string_view("ab"), 5, 3) == npos);
  // offsets are relative to the readable bytes, also after a drain
  REQUIRE_FALSE(b.drain(3));
  REQUIRE(b.search(std::string_view("abc")) == 4);
}

TEMPLATE_TEST_CASE("contiguous buffers: search_eol", "[flat][static]", flat_buffer, static_4k) {
  TestType b;
  REQUIRE_FALSE(b.add(std::string_view("a\rb\nc\r\nd\r\r\n\ne")));
  //                                   0 1 2 3 4 5 6 7 8 9 0 1 2 3
  auto eol = [&](std::size_t start, eol_style s) {
    const bufev::eol_match m = b.search_eol(start, s);
    return std::pair<std::size_t, std::size_t>(m.pos, m.length);
  };
  using P = std::pair<std::size_t, std::size_t>;
  REQUIRE(eol(0, eol_style::any) == P{1, 1});
  REQUIRE(eol(2, eol_style::any) == P{3, 1});
  REQUIRE(eol(4, eol_style::any) == P{5, 2});
  REQUIRE(eol(8, eol_style::any) == P{8, 4});
  REQUIRE(eol(0, eol_style::lf) == P{3, 1});
  REQUIRE(eol(4, eol_style::lf) == P{6, 1});
  REQUIRE(eol(0, eol_style::crlf) == P{3, 1});
  REQUIRE(eol(4, eol_style::crlf) == P{5, 2});
  REQUIRE(eol(6, eol_style::crlf) == P{6, 1});  // the CR before start does not count
  REQUIRE(eol(7, eol_style::crlf) == P{9, 2});
  REQUIRE(eol(0, eol_style::crlf_strict) == P{5, 2});
  REQUIRE(eol(6, eol_style::crlf_strict) == P{9, 2});
  REQUIRE(eol(10, eol_style::crlf_strict).first == npos);
  REQUIRE(eol(0, eol_style::nul).first == npos);
  REQUIRE(eol(13, eol_style::any).first == npos);
  REQUIRE(eol(npos, eol_style::lf).first == npos);
  REQUIRE_FALSE(b.add("\0", 1));
  REQUIRE(eol(0, eol_style::nul) == P{13, 1});
}

namespace {
template <class B>
std::optional<std::string> readln(B& b, eol_style s, std::size_t max_len = npos) {
  std::error_code ec;
  auto line = b.readln(s, max_len, ec);
  REQUIRE_FALSE(ec);
  return line;
}
}  // namespace

TEMPLATE_TEST_CASE("contiguous buffers: readln, each end-of-line style", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType b;
  std::error_code ec;
  SECTION("any: first CR or LF and the whole run after it") {
    REQUIRE_FALSE(b.add(std::string_view("one\r\n\r\ntwo\nthree\rfour")));
    REQUIRE(readln(b, eol_style::any) == "one");
    REQUIRE(readln(b, eol_style::any) == "two");
    REQUIRE(readln(b, eol_style::any) == "three");
    REQUIRE(readln(b, eol_style::any) == std::nullopt);  // "four" has no EOL yet
    REQUIRE(str(b) == "four");
    REQUIRE_FALSE(b.add("\r", 1));
    REQUIRE(readln(b, eol_style::any) == "four");
    REQUIRE(b.empty());
  }
  SECTION("crlf: LF with an optional CR before it; a lone CR is data") {
    REQUIRE_FALSE(b.add(std::string_view("a\rb\r\nc\n\r\nd\r")));
    REQUIRE(readln(b, eol_style::crlf) == "a\rb");
    REQUIRE(readln(b, eol_style::crlf) == "c");
    REQUIRE(readln(b, eol_style::crlf) == "");
    REQUIRE(readln(b, eol_style::crlf) == std::nullopt);  // "d\r": LF may follow
    REQUIRE(str(b) == "d\r");
    REQUIRE_FALSE(b.add("\n", 1));
    REQUIRE(readln(b, eol_style::crlf) == "d");
    REQUIRE(b.empty());
  }
  SECTION("crlf_strict: exactly CRLF; lone CR and LF are data") {
    REQUIRE_FALSE(b.add(std::string_view("a\nb\rc\r\nd\r")));
    REQUIRE(readln(b, eol_style::crlf_strict) == "a\nb\rc");
    REQUIRE(readln(b, eol_style::crlf_strict) == std::nullopt);
    REQUIRE_FALSE(b.add("\n", 1));
    REQUIRE(readln(b, eol_style::crlf_strict) == "d");
    REQUIRE(b.empty());
  }
  SECTION("lf: LF only; CR stays in the line") {
    REQUIRE_FALSE(b.add(std::string_view("a\r\nb\n\nc")));
    REQUIRE(readln(b, eol_style::lf) == "a\r");
    REQUIRE(readln(b, eol_style::lf) == "b");
    REQUIRE(readln(b, eol_style::lf) == "");
    REQUIRE(readln(b, eol_style::lf) == std::nullopt);
    REQUIRE(str(b) == "c");
  }
  SECTION("nul: a NUL byte; CR and LF are data") {
    REQUIRE_FALSE(b.add("a\r\nb\0c\0", 7));
    REQUIRE(readln(b, eol_style::nul) == "a\r\nb");
    REQUIRE(readln(b, eol_style::nul) == "c");
    REQUIRE(readln(b, eol_style::nul) == std::nullopt);
    REQUIRE(b.empty());
  }
  SECTION("max_len: a line of exactly max_len bytes is fine") {
    REQUIRE_FALSE(b.add(std::string_view("12345\r\n")));
    REQUIRE(readln(b, eol_style::crlf, 5) == "12345");
    REQUIRE_FALSE(b.add(std::string_view("12345\r\n")));
    REQUIRE(readln(b, eol_style::crlf_strict, 5) == "12345");
    REQUIRE_FALSE(b.add(std::string_view("12345\n")));
    REQUIRE(readln(b, eol_style::lf, 5) == "12345");
    REQUIRE(b.empty());
  }
  SECTION("max_len: a longer complete line is refused, buffer intact") {
    REQUIRE_FALSE(b.add(std::string_view("123456\r\nok\r\n")));
    for (eol_style s : {eol_style::any, eol_style::crlf, eol_style::crlf_strict, eol_style::lf}) {
      REQUIRE(b.readln(s, 5, ec) == std::nullopt);
      REQUIRE(ec == errc::line_too_long);
      REQUIRE(b.size() == 12);
    }
    REQUIRE(readln(b, eol_style::crlf, 6) == "123456");
    REQUIRE(readln(b, eol_style::crlf, 2) == "ok");
  }
  SECTION("max_len: more than max_len bytes without an EOL is refused") {
    REQUIRE_FALSE(b.add(std::string_view("1234")));
    REQUIRE(readln(b, eol_style::lf, 4) == std::nullopt);  // may still complete
    REQUIRE_FALSE(b.add(std::string_view("5")));
    REQUIRE(b.readln(eol_style::lf, 4, ec) == std::nullopt);
    REQUIRE(ec == errc::line_too_long);
    REQUIRE(str(b) == "12345");
    REQUIRE(b.readln(eol_style::nul, 0, ec) == std::nullopt);
    REQUIRE(ec == errc::line_too_long);
  }
  SECTION("max_len: a CR right after max_len bytes waits for its LF") {
    REQUIRE_FALSE(b.add(std::string_view("1234\r")));
    REQUIRE(readln(b, eol_style::crlf, 4) == std::nullopt);
    REQUIRE(readln(b, eol_style::crlf_strict, 4) == std::nullopt);
    REQUIRE(b.readln(eol_style::lf, 4, ec) == std::nullopt);  // CR is data for lf
    REQUIRE(ec == errc::line_too_long);
    REQUIRE(readln(b, eol_style::any, 4) == "1234");
    REQUIRE(b.empty());
    REQUIRE_FALSE(b.add(std::string_view("1234\rx")));
    REQUIRE(b.readln(eol_style::crlf, 4, ec) == std::nullopt);
    REQUIRE(ec == errc::line_too_long);
  }
  SECTION("a successful readln clears a stale error code") {
    REQUIRE_FALSE(b.add(std::string_view("x\n")));
    ec = errc::closed;
    REQUIRE(b.readln(eol_style::lf, 10, ec) == "x");
    REQUIRE_FALSE(ec);
  }
  SECTION("long lines, past the EOL search window") {
    const std::string big(3000, 'x');
    REQUIRE_FALSE(b.add(big + "\r\n\r\n" + "tail"));
    REQUIRE(readln(b, eol_style::any, 3000) == big);
    REQUIRE(str(b) == "tail");
  }
}

TEMPLATE_TEST_CASE("contiguous buffers: frozen ends refuse their operations", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType b;
  REQUIRE_FALSE(b.add(std::string_view("line\nrest")));
  std::error_code ec;
  char out[8];
  SECTION("frozen back") {
    b.freeze(buffer_end::back);
    REQUIRE(b.frozen(buffer_end::back));
    REQUIRE_FALSE(b.frozen(buffer_end::front));
    REQUIRE(b.add("x", 1) == errc::frozen);
    REQUIRE(b.add(std::string_view()) == errc::frozen);
    try {
      (void)b.prepare(1);
      FAIL("prepare on a frozen back must throw");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == errc::frozen);
    }
    REQUIRE(str(b) == "line\nrest");
    // the front still works
    REQUIRE(readln(b, eol_style::lf) == "line");
    REQUIRE_FALSE(b.prepend("p", 1));
    REQUIRE_FALSE(b.drain(1));
    b.unfreeze(buffer_end::back);
    REQUIRE_FALSE(b.add("x", 1));
    REQUIRE(str(b) == "restx");
  }
  SECTION("frozen front") {
    b.freeze(buffer_end::front);
    REQUIRE(b.frozen(buffer_end::front));
    REQUIRE(b.drain(1) == errc::frozen);
    REQUIRE(b.drain(0) == errc::frozen);
    REQUIRE(b.clear() == errc::frozen);
    REQUIRE(b.prepend("p", 1) == errc::frozen);
    REQUIRE(b.remove(out, 4) == 0);
    REQUIRE(b.readln(eol_style::lf, 100, ec) == std::nullopt);
    REQUIRE(ec == errc::frozen);
    b.consume(1);  // does nothing, like evbuffer
    REQUIRE(str(b) == "line\nrest");
    // non-destructive reads and the back still work
    REQUIRE(b.copyout(out, 4) == 4);
    REQUIRE(b.search(std::string_view("rest")) == 5);
    REQUIRE_FALSE(b.add("!", 1));
    asio::mutable_buffer m = b.prepare(1);
    std::memcpy(m.data(), "?", 1);
    b.commit(1);
    REQUIRE(str(b) == "line\nrest!?");
    b.unfreeze(buffer_end::front);
    REQUIRE_FALSE(b.frozen(buffer_end::front));
    REQUIRE(readln(b, eol_style::lf) == "line");
  }
}

TEMPLATE_TEST_CASE("contiguous buffers: the observer sees every size change", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType b;
  change_log log;
  b.set_observer(log.observer());
  std::error_code ec;
  char out[8];

  REQUIRE_FALSE(b.add("abc\n", 4));
  REQUIRE_FALSE(b.prepend("xy", 2));
  REQUIRE_FALSE(b.drain(1));
  REQUIRE(b.remove(out, 1) == 1);
  REQUIRE(readln(b, eol_style::lf) == "abc");
  asio::mutable_buffer m = b.prepare(5);
  std::memcpy(m.data(), "12345", 5);
  b.commit(3);
  b.consume(2);
  REQUIRE(b.size() == 1);

  REQUIRE(log.changes.size() == 7);
  CHECK(same(log.changes[0], 0, 4, 0));
  CHECK(same(log.changes[1], 4, 2, 0));
  CHECK(same(log.changes[2], 6, 0, 1));
  CHECK(same(log.changes[3], 5, 0, 1));
  CHECK(same(log.changes[4], 4, 0, 4));
  CHECK(same(log.changes[5], 0, 3, 0));
  CHECK(same(log.changes[6], 3, 0, 2));

  // no-ops and refused operations report nothing
  REQUIRE_FALSE(b.add(nullptr, 0));
  REQUIRE_FALSE(b.drain(0));
  REQUIRE(b.drain(5) == errc::out_of_range);
  REQUIRE(readln(b, eol_style::lf) == std::nullopt);
  b.commit(1);
  b.consume(0);
  b.freeze(buffer_end::back);
  REQUIRE(b.add("z", 1) == errc::frozen);
  b.unfreeze(buffer_end::back);
  REQUIRE(log.changes.size() == 7);

  // removing the observer stops the reports
  b.set_observer({});
  REQUIRE_FALSE(b.add("z", 1));
  REQUIRE(log.changes.size() == 7);
}

TEMPLATE_TEST_CASE("contiguous buffers: copies carry bytes, not observers or freezes",
                   "[flat][static]", flat_buffer, static_4k) {
  TestType a;
  change_log la;
  a.set_observer(la.observer());
  REQUIRE_FALSE(a.add(std::string_view("xxpayload")));
  REQUIRE_FALSE(a.drain(2));
  a.freeze(buffer_end::back);

  TestType b(a);
  REQUIRE(str(b) == "payload");
  REQUIRE_FALSE(b.frozen(buffer_end::back));
  REQUIRE_FALSE(b.add("!", 1));
  REQUIRE(str(a) == "payload");
  REQUIRE(la.changes.size() == 2);  // b's append was not reported to a's observer

  TestType c;
  change_log lc;
  c.set_observer(lc.observer());
  REQUIRE_FALSE(c.add("old", 3));
  c = b;
  REQUIRE(str(c) == "payload!");
  REQUIRE(lc.changes.size() == 2);
  CHECK(same(lc.changes[1], 3, 8, 3));

  TestType d(std::move(c));
  REQUIRE(str(d) == "payload!");
  c = std::move(d);
  REQUIRE(str(c) == "payload!");
  REQUIRE(lc.changes.size() >= 3);
  TestType& alias = c;
  c = alias;  // self-assignment keeps the bytes
  REQUIRE(str(c) == "payload!");
}

TEMPLATE_TEST_CASE("contiguous buffers: a frozen back holds a prepare until unfrozen",
                   "[flat][static]", flat_buffer, static_4k) {
  // The transport freezes the input's back while its read fills prepare()'s bytes,
  // then unfreezes and commits.
  TestType b;
  REQUIRE_FALSE(b.add("ab", 2));
  asio::mutable_buffer m = b.prepare(4);
  b.freeze(buffer_end::back);
  std::memcpy(m.data(), "cdef", 4);
  b.commit(4);  // refused: does nothing
  REQUIRE(str(b) == "ab");
  b.unfreeze(buffer_end::back);
  b.commit(4);  // the prepare is still pending
  REQUIRE(str(b) == "abcdef");
}

TEMPLATE_TEST_CASE("contiguous buffers: front operations never move prepared bytes",
                   "[flat][static]", flat_buffer, static_4k) {
  // While a read into prepare()'s bytes is in flight the user may still consume
  // the front: drains must not move the write position.
  TestType b;
  REQUIRE_FALSE(b.add("xxxxhello\n", 10));
  asio::mutable_buffer m = b.prepare(6);
  b.freeze(buffer_end::back);
  REQUIRE_FALSE(b.drain(4));
  REQUIRE(readln(b, eol_style::lf) == "hello");
  REQUIRE(b.empty());
  REQUIRE_FALSE(b.prepend("<", 1));  // room in front: fine, nothing moves
  char c;
  REQUIRE(b.remove(&c, 1) == 1);
  REQUIRE(b.prepend(std::string(64, 'p')) == errc::buffer_full);  // would shift the data
  std::memcpy(m.data(), "world\n", 6);  // the read completes
  b.unfreeze(buffer_end::back);
  b.commit(6);
  REQUIRE(str(b) == "world\n");
  REQUIRE_FALSE(b.prepend(std::string(64, 'p')));  // no prepare pending: shifting is fine
  REQUIRE(str(b) == std::string(64, 'p') + "world\n");
}

TEMPLATE_TEST_CASE("contiguous buffers: assigning to a frozen buffer is refused", "[flat][static]",
                   flat_buffer, static_4k) {
  TestType a, b;
  REQUIRE_FALSE(a.add("new", 3));
  REQUIRE_FALSE(b.add("old", 3));
  for (buffer_end e : {buffer_end::front, buffer_end::back}) {
    b.freeze(e);
    REQUIRE_THROWS_AS(b = a, std::system_error);
    REQUIRE_THROWS_AS(b = TestType(a), std::system_error);
    REQUIRE(str(b) == "old");
    b.unfreeze(e);
  }
  b = a;
  REQUIRE(str(b) == "new");
}

// ---------------------------------------------------------------------------
// flat_buffer specifics
// ---------------------------------------------------------------------------

TEST_CASE("flat_buffer: grows by doubling and keeps the bytes", "[flat]") {
  flat_buffer b;
  REQUIRE(b.capacity() == 0);
  REQUIRE(b.max_size() == flat_buffer::default_max_size);
  std::string model;
  std::size_t reallocations = 0;
  std::size_t cap = b.capacity();
  for (int i = 0; i < 2000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    REQUIRE_FALSE(b.add(piece));
    model += piece;
    if (b.capacity() != cap) {
      REQUIRE(b.capacity() >= 2 * cap);
      cap = b.capacity();
      ++reallocations;
    }
  }
  REQUIRE(str(b) == model);
  REQUIRE(reallocations <= 10);  // ~8.9 KB from 64 bytes by doubling
}

TEST_CASE("flat_buffer: add/drain streams reuse the array", "[flat]") {
  flat_buffer b;
  const std::string piece(100, 'p');
  REQUIRE_FALSE(b.add(piece));
  const std::size_t cap = b.capacity();
  for (int i = 0; i < 1000; ++i) {
    REQUIRE_FALSE(b.add(piece));
    REQUIRE_FALSE(b.drain(100));
  }
  REQUIRE(b.capacity() <= 2 * cap);  // compaction, not unbounded growth
  REQUIRE(str(b) == piece);
}

TEST_CASE("flat_buffer: max_size", "[flat]") {
  flat_buffer b(10);
  REQUIRE(b.max_size() == 10);
  REQUIRE_FALSE(b.add("0123456", 7));
  REQUIRE(b.add("abcd", 4) == errc::buffer_full);  // nothing added
  REQUIRE(str(b) == "0123456");
  REQUIRE(b.prepend("abcd", 4) == errc::buffer_full);
  REQUIRE_FALSE(b.add("abc", 3));
  REQUIRE(b.size() == 10);
  REQUIRE(b.capacity() <= 10);
  REQUIRE(b.add("x", 1) == errc::buffer_full);
  REQUIRE_THROWS_AS(b.prepare(1), std::length_error);
  REQUIRE_FALSE(b.drain(4));
  REQUIRE_FALSE(b.prepend("ab", 2));  // fits again
  REQUIRE_FALSE(b.add("cd", 2));
  REQUIRE(str(b) == "ab456abccd");
  REQUIRE(b.reserve(11) == errc::buffer_full);
  REQUIRE(flat_buffer(npos).max_size() == flat_buffer::default_max_size);
}

TEST_CASE("flat_buffer: reserve and shrink_to_fit", "[flat]") {
  flat_buffer b;
  REQUIRE_FALSE(b.reserve(1000));
  REQUIRE(b.capacity() >= 1000);
  const void* storage = b.prepare(1000).data();
  b.commit(0);
  REQUIRE_FALSE(b.add(std::string(1000, 'a')));
  REQUIRE(b.data().data() == storage);  // no reallocation within the reservation
  REQUIRE_FALSE(b.drain(990));
  b.shrink_to_fit();
  REQUIRE(b.capacity() == 10);
  REQUIRE(str(b) == std::string(10, 'a'));
  REQUIRE_FALSE(b.clear());
  b.shrink_to_fit();
  REQUIRE(b.capacity() == 0);
  REQUIRE_FALSE(b.add("x", 1));
  REQUIRE(str(b) == "x");
}

TEST_CASE("flat_buffer: with the front frozen, growth keeps data() valid", "[flat]") {
  // The transport freezes the output's front while async_write reads data(); the
  // user keeps appending. The bytes handed out must stay readable (ASan checks).
  flat_buffer b;
  REQUIRE_FALSE(b.add(std::string(100, 'w')));
  REQUIRE_FALSE(b.drain(40));  // room in front that a compaction would use
  b.freeze(buffer_end::front);
  const asio::const_buffer in_flight = b.data();
  const auto* p = static_cast<const unsigned char*>(in_flight.data());
  for (int i = 0; i < 100; ++i) REQUIRE_FALSE(b.add(std::string(100, 'a')));  // grows
  REQUIRE(b.data().data() != in_flight.data());
  for (std::size_t i = 0; i < in_flight.size(); ++i) REQUIRE(p[i] == 'w');
  b.unfreeze(buffer_end::front);  // the write completed: old arrays are freed now
  REQUIRE_FALSE(b.drain(60));
  REQUIRE(b.size() == 10000);
  REQUIRE(str(b) == std::string(10000, 'a'));
}

TEST_CASE("flat_buffer: moving steals the array and tells the source's observer", "[flat]") {
  flat_buffer a;
  change_log la;
  a.set_observer(la.observer());
  REQUIRE_FALSE(a.add(std::string(500, 'm')));
  const void* storage = a.data().data();
  flat_buffer b(std::move(a));
  REQUIRE(b.data().data() == storage);
  REQUIRE(b.size() == 500);
  REQUIRE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, usable
  REQUIRE(la.changes.size() == 2);
  CHECK(same(la.changes[1], 500, 0, 500));
  REQUIRE_FALSE(a.add("again", 5));
  REQUIRE(str(a) == "again");
}

// ---------------------------------------------------------------------------
// static_buffer specifics
// ---------------------------------------------------------------------------

TEST_CASE("static_buffer: fixed capacity, refuses what does not fit", "[static]") {
  static_buffer<8> b;
  REQUIRE(b.capacity() == 8);
  REQUIRE(b.max_size() == 8);
  REQUIRE(static_buffer<8>::static_capacity == 8);
  REQUIRE_FALSE(b.add("12345", 5));
  REQUIRE(b.add("abcd", 4) == errc::buffer_full);  // nothing added
  REQUIRE(str(b) == "12345");
  REQUIRE(b.prepend("abcd", 4) == errc::buffer_full);
  REQUIRE(str(b) == "12345");
  REQUIRE_FALSE(b.add("678", 3));
  REQUIRE(b.size() == 8);
  REQUIRE(b.add("x", 1) == errc::buffer_full);
  REQUIRE(b.prepend("x", 1) == errc::buffer_full);
  REQUIRE_THROWS_AS(b.prepare(1), std::length_error);
  REQUIRE(str(b) == "12345678");
  REQUIRE(b.capacity() == 8);

  SECTION("free room split between front and back is joined") {
    REQUIRE_FALSE(b.drain(3));     // 3 free in front, 0 at the back
    REQUIRE_FALSE(b.add("ab", 2));  // compacts
    REQUIRE(str(b) == "45678ab");
    REQUIRE_FALSE(b.drain(2));
    asio::mutable_buffer m = b.prepare(3);  // 2 in front + 1 at the back
    REQUIRE(m.size() == 3);
    std::memcpy(m.data(), "XYZ", 3);
    b.commit(3);
    REQUIRE(str(b) == "678abXYZ");
    REQUIRE_FALSE(b.drain(6));
    REQUIRE_FALSE(b.prepend("123456", 6));  // shifts the bytes back
    REQUIRE(str(b) == "123456YZ");
  }
  SECTION("a line longer than the capacity is reported, not waited for forever") {
    std::error_code ec;
    REQUIRE(b.readln(eol_style::crlf, 7, ec) == std::nullopt);
    REQUIRE(ec == errc::line_too_long);
  }
}

TEST_CASE("static_buffer: with the front frozen, bytes are never moved", "[static]") {
  static_buffer<8> b;
  REQUIRE_FALSE(b.add("123456", 6));
  REQUIRE_FALSE(b.drain(4));
  b.freeze(buffer_end::front);
  REQUIRE(b.add("abc", 3) == errc::buffer_full);  // would need a compaction
  REQUIRE_FALSE(b.add("ab", 2));                  // fits behind: fine
  REQUIRE(str(b) == "56ab");
  b.unfreeze(buffer_end::front);
  REQUIRE_FALSE(b.add("cd", 2));  // compacts now
  REQUIRE(str(b) == "56abcd");
}

TEST_CASE("static_buffer: one byte of capacity", "[static]") {
  static_buffer<1> b;
  REQUIRE_FALSE(b.add("a", 1));
  REQUIRE(b.add("b", 1) == errc::buffer_full);
  REQUIRE_FALSE(b.drain(1));
  REQUIRE_FALSE(b.prepend("c", 1));
  REQUIRE(str(b) == "c");
}

TEST_CASE("static_buffer: never allocates", "[static]") {
  static_buffer<256> b;
  std::error_code ec;
  char out[64];
  const std::size_t before = allocation_count();
  for (int i = 0; i < 1000; ++i) {
    (void)b.add("hello world\r\n", 13);
    (void)b.prepend("> ", 2);
    (void)b.search("world", 5);
    (void)b.search_eol(0, eol_style::crlf);
    (void)b.readln(eol_style::crlf, 15, ec);  // at most 15 bytes: std::string SSO
    asio::mutable_buffer m = b.prepare(20);
    std::memset(m.data(), 'z', m.size());
    b.commit(20);
    (void)b.remove(out, 10);
    b.consume(10);
    (void)b.add(std::string_view(out, 64));  // past capacity eventually
    (void)b.drain(b.size() / 2);
    static_buffer<256> copy(b);
    b = copy;
  }
  const std::size_t after = allocation_count();
  REQUIRE(after == before);
}

// ---------------------------------------------------------------------------
// Randomized model test against std::string
// ---------------------------------------------------------------------------

namespace {

// Reference end-of-line finder on a std::string, byte by byte.
std::pair<std::size_t, std::size_t> model_eol(const std::string& s, std::size_t start,
                                              eol_style style) {
  for (std::size_t i = start; i < s.size(); ++i) {
    const char c = s[i];
    switch (style) {
      case eol_style::any:
        if (c == '\r' || c == '\n') {
          std::size_t j = i;
          while (j < s.size() && (s[j] == '\r' || s[j] == '\n')) ++j;
          return {i, j - i};
        }
        break;
      case eol_style::crlf:
        if (c == '\n') return (i > start && s[i - 1] == '\r') ? std::pair{i - 1, std::size_t{2}}
                                                               : std::pair{i, std::size_t{1}};
        break;
      case eol_style::crlf_strict:
        if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') return {i, 2};
        break;
      case eol_style::lf:
        if (c == '\n') return {i, 1};
        break;
      case eol_style::nul:
        if (c == '\0') return {i, 1};
        break;
    }
  }
  return {npos, 0};
}

template <class B>
void run_model(std::uint32_t seed, std::size_t limit) {
  std::mt19937 rng(seed);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % (n + 1)); };
  const char alphabet[] = {'a', 'b', 'c', '\r', '\n', '\0', 'x', '\r', '\n'};
  auto random_bytes = [&](std::size_t n) {
    std::string s(n, ' ');
    for (auto& c : s) c = alphabet[rng() % sizeof alphabet];
    return s;
  };

  B b;
  std::string model;
  std::error_code ec;
  std::vector<char> out(600);
  for (int step = 0; step < 400; ++step) {
    INFO("seed " << seed << " step " << step);
    switch (rng() % 10) {
      case 0:
      case 1: {
        const std::string s = random_bytes(pick(rng() % 8 == 0 ? 300 : 20));
        const bool fits = model.size() + s.size() <= limit;
        REQUIRE(b.add(s) == (fits ? std::error_code() : make_error_code(errc::buffer_full)));
        if (fits) model += s;
        break;
      }
      case 2: {
        const std::string s = random_bytes(pick(20));
        const bool fits = model.size() + s.size() <= limit;
        REQUIRE(b.prepend(s) == (fits ? std::error_code() : make_error_code(errc::buffer_full)));
        if (fits) model.insert(0, s);
        break;
      }
      case 3: {
        const std::size_t n = pick(model.size() + 5);
        const bool ok = n <= model.size();
        REQUIRE(b.drain(n) == (ok ? std::error_code() : make_error_code(errc::out_of_range)));
        if (ok) model.erase(0, n);
        break;
      }
      case 4: {
        const std::size_t n = pick(out.size());
        const std::size_t k = b.remove(out.data(), n);
        REQUIRE(k == std::min(n, model.size()));
        REQUIRE(std::string(out.data(), k) == model.substr(0, k));
        model.erase(0, k);
        break;
      }
      case 5: {
        const std::size_t pos = pick(model.size() + 2);
        const std::size_t n = pick(out.size());
        const std::size_t k = b.copyout_from(pos, out.data(), n);
        const std::string expect = pos < model.size() ? model.substr(pos, n) : std::string();
        REQUIRE(std::string(out.data(), k) == expect);
        break;
      }
      case 6: {
        const auto style = static_cast<eol_style>(rng() % 5);
        const std::size_t max_len = rng() % 4 == 0 ? npos : pick(40);
        const auto [pos, len] = model_eol(model, 0, style);
        auto line = b.readln(style, max_len, ec);
        if (pos != npos && pos <= max_len) {
          REQUIRE_FALSE(ec);
          REQUIRE(line == model.substr(0, pos));
          model.erase(0, pos + len);
        } else {
          REQUIRE_FALSE(line);
          const bool can_complete =
              pos == npos &&
              (model.size() <= max_len ||
               (model.size() == max_len + 1 && model.back() == '\r' &&
                (style == eol_style::crlf || style == eol_style::crlf_strict)));
          REQUIRE(ec == (can_complete ? std::error_code() : make_error_code(errc::line_too_long)));
        }
        break;
      }
      case 7: {
        const std::size_t start = pick(model.size() + 1);
        const std::string what = random_bytes(1 + pick(2));
        REQUIRE(b.search(what, start) == model.find(what, start));
        const std::size_t end = pick(model.size() + 1);
        const std::size_t expect = model.substr(0, end).find(what, start);
        REQUIRE(b.search_range(what, start, end) == expect);
        const auto style = static_cast<eol_style>(rng() % 5);
        const auto m = b.search_eol(start, style);
        REQUIRE(std::pair(m.pos, m.length) == model_eol(model, start, style));
        break;
      }
      case 8: {
        const std::size_t n = pick(100);
        if (n > limit - model.size()) {
          REQUIRE_THROWS_AS(b.prepare(n), std::length_error);
          break;
        }
        asio::mutable_buffer m = b.prepare(n);
        REQUIRE(m.size() == n);
        const std::string s = random_bytes(n);
        std::memcpy(m.data(), s.data(), n);
        const std::size_t k = pick(n + 3);
        b.commit(k);
        model += s.substr(0, k);
        break;
      }
      case 9: {
        const std::size_t n = pick(model.size() + 3);
        b.consume(n);
        model.erase(0, std::min(n, model.size()));
        break;
      }
    }
    REQUIRE(b.size() == model.size());
    REQUIRE(str(b) == model);
    REQUIRE(b.size() <= limit);
  }
}

}  // namespace

TEST_CASE("flat_buffer: randomized model test", "[flat][model]") {
  for (std::uint32_t seed = 1; seed <= 40; ++seed) run_model<flat_buffer>(seed, npos);
}

TEST_CASE("flat_buffer with max_size: randomized model test", "[flat][model]") {
  struct bounded : flat_buffer {
    bounded() : flat_buffer(300) {}
  };
  for (std::uint32_t seed = 100; seed <= 140; ++seed) run_model<bounded>(seed, 300);
}

TEST_CASE("static_buffer: randomized model test", "[static][model]") {
  for (std::uint32_t seed = 200; seed <= 240; ++seed) run_model<static_buffer<256>>(seed, 256);
}

// ---------------------------------------------------------------------------
// Asio interop over loopback TCP
// ---------------------------------------------------------------------------

namespace {

struct tcp_pair {
  asio::io_context io;
  asio::ip::tcp::socket client{io};
  asio::ip::tcp::socket server{io};
  tcp_pair() {
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
  // Runs handlers until `done()` holds; fails after a bound instead of hanging.
  template <class Pred>
  void run_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    io.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(100));
    REQUIRE(done());
  }
};

}  // namespace

TEST_CASE("flat_buffer: asio::read_until and async_write over TCP", "[flat][asio]") {
  tcp_pair t;
  flat_buffer out;
  REQUIRE_FALSE(out.add(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  // async_write straight from data()
  bool written = false;
  asio::async_write(t.client, out.data(), [&](std::error_code ec, std::size_t n) {
    REQUIRE_FALSE(ec);
    REQUIRE(n == out.size());
    written = true;
  });
  t.run_until([&] { return written; });
  out.consume(out.size());

  flat_buffer in;
  std::size_t n = asio::read_until(t.server, bufev::dynamic_buffer(in), "\r\n\r\n");
  REQUIRE(n == 27);
  REQUIRE(in.size() >= 27);
  std::error_code ec;
  REQUIRE(in.readln(eol_style::crlf, 100, ec) == "GET / HTTP/1.1");
  REQUIRE(in.readln(eol_style::crlf, 100, ec) == "Host: x");
  REQUIRE(in.readln(eol_style::crlf, 100, ec) == "");
  REQUIRE(in.empty());
}

TEST_CASE("static_buffer: async_read_until over TCP, and a bounded line", "[static][asio]") {
  tcp_pair t;
  const std::string msg = "first line\nsecond\n";
  asio::write(t.client, asio::buffer(msg));

  static_buffer<64> in;
  bool done = false;
  std::size_t got = 0;
  asio::async_read_until(t.server, bufev::dynamic_buffer(in), '\n',
                         [&](std::error_code ec, std::size_t n) {
                           REQUIRE_FALSE(ec);
                           got = n;
                           done = true;
                         });
  t.run_until([&] { return done; });
  REQUIRE(got == 11);
  std::error_code ec;
  REQUIRE(in.readln(eol_style::lf, 64, ec) == "first line");

  SECTION("a line longer than the capacity ends the read with an error") {
    // Drain what is left, then send more than 64 bytes without a newline.
    done = false;
    asio::async_read_until(t.server, bufev::dynamic_buffer(in), '\n',
                           [&](std::error_code, std::size_t) { done = true; });
    t.run_until([&] { return done; });
    REQUIRE(in.readln(eol_style::lf, 64, ec) == "second");
    asio::write(t.client, asio::buffer(std::string(100, 'x')));
    std::error_code read_ec;
    done = false;
    asio::async_read_until(t.server, bufev::dynamic_buffer(in), '\n',
                           [&](std::error_code e, std::size_t) {
                             read_ec = e;
                             done = true;
                           });
    t.run_until([&] { return done; });
    REQUIRE(read_ec == asio::error::not_found);
    REQUIRE(in.size() == 64);  // filled to capacity, nothing lost past it
  }
}
