// Scenario tests for bufev::evbuffer: every operation, its error paths, segment
// boundaries for every end-of-line style, reference/file segments, callbacks, freezing.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>

#include "bufev/buffers/evbuffer.hpp"
#include "support/catch.hpp"
#include "support/files.hpp"

using bufev::buffer_change;
using bufev::buffer_end;
using bufev::eol_style;
using bufev::evbuffer;

namespace {

std::string contents(const evbuffer& b) {
  std::string s(b.size(), '\0');
  REQUIRE(b.copyout(s.data(), s.size()) == s.size());
  return s;
}

std::string via_data(const evbuffer& b) {
  std::string s;
  for (asio::const_buffer cb : b.data()) s.append(static_cast<const char*>(cb.data()), cb.size());
  return s;
}

std::vector<std::size_t> extent_sizes(const evbuffer& b) {
  std::vector<std::size_t> v;
  for (asio::const_buffer cb : b.data()) v.push_back(cb.size());
  return v;
}

/// Appends a in the current (fresh) segment so that it ends exactly at the segment's
/// end, then b, which therefore starts a new owned segment.
void add_split_owned(evbuffer& buf, std::string_view a, std::string_view b) {
  REQUIRE(buf.empty());
  REQUIRE_FALSE(buf.expand(a.size()));
  const std::size_t w = buf.writable_size();
  REQUIRE(w >= a.size());
  const std::string pad(w - a.size(), '#');
  REQUIRE_FALSE(buf.add(pad));
  REQUIRE_FALSE(buf.add(a));
  REQUIRE(buf.writable_size() == 0);
  REQUIRE_FALSE(buf.drain(pad.size()));
  REQUIRE_FALSE(buf.add(b));
}

/// Keeps the memory of reference segments alive for the test.
struct ref_pool {
  std::deque<std::string> store;
  void add(evbuffer& b, std::string_view s) {
    store.emplace_back(s);
    REQUIRE_FALSE(b.add_reference(store.back().data(), store.back().size()));
  }
};

std::string eol_text(eol_style st) {
  switch (st) {
    case eol_style::any: return "\r\n\r";
    case eol_style::crlf: return "\r\n";
    case eol_style::crlf_strict: return "\r\n";
    case eol_style::lf: return "\n";
    case eol_style::nul: return std::string(1, '\0');
  }
  return {};
}

const char* style_name(eol_style st) {
  switch (st) {
    case eol_style::any: return "any";
    case eol_style::crlf: return "crlf";
    case eol_style::crlf_strict: return "crlf_strict";
    case eol_style::lf: return "lf";
    case eol_style::nul: return "nul";
  }
  return "?";
}

struct change_log {
  std::vector<buffer_change> changes;
  static void fn(void* ctx, const buffer_change& c) { static_cast<change_log*>(ctx)->changes.push_back(c); }
  bufev::buffer_observer observer() { return {&change_log::fn, this}; }
};

bool same(const buffer_change& a, std::size_t orig, std::size_t added, std::size_t deleted) {
  return a.orig_size == orig && a.n_added == added && a.n_deleted == deleted;
}

}  // namespace

// ---------------------------------------------------------------------------------------

SCENARIO("evbuffer: add, copyout, drain and data()", "[evbuffer]") {
  GIVEN("an empty buffer") {
    evbuffer b;
    REQUIRE(b.empty());
    REQUIRE(b.size() == 0);
    REQUIRE(b.segment_count() == 0);
    REQUIRE(asio::buffer_size(b.data()) == 0);
    REQUIRE(b.max_size() >= (std::size_t(1) << 40));

    WHEN("bytes are added") {
      REQUIRE_FALSE(b.add("hello ", 6));
      REQUIRE_FALSE(b.add(std::string_view("world")));
      REQUIRE_FALSE(b.add(nullptr, 0));
      THEN("they read back in order through copyout and data()") {
        REQUIRE(b.size() == 11);
        REQUIRE(contents(b) == "hello world");
        REQUIRE(via_data(b) == "hello world");
        REQUIRE(b.segment_count() == 1);
        char out[5];
        REQUIRE(b.copyout(out, 5) == 5);
        REQUIRE(std::string(out, 5) == "hello");
        REQUIRE(b.size() == 11);
      }
      THEN("copyout_from reads from an offset and stops at the end") {
        char out[20];
        REQUIRE(b.copyout_from(6, out, 20) == 5);
        REQUIRE(std::string(out, 5) == "world");
        REQUIRE(b.copyout_from(11, out, 1) == 0);
        REQUIRE(b.copyout_from(100, out, 1) == 0);
      }
      THEN("drain removes from the front") {
        REQUIRE_FALSE(b.drain(6));
        REQUIRE(contents(b) == "world");
        REQUIRE_FALSE(b.drain(0));
        REQUIRE_FALSE(b.drain(5));
        REQUIRE(b.empty());
        REQUIRE(b.segment_count() == 0);
      }
      THEN("draining past the end fails and drains nothing") {
        REQUIRE(b.drain(12) == bufev::errc::out_of_range);
        REQUIRE(contents(b) == "hello world");
      }
      THEN("remove copies out and drains, up to the size") {
        char out[32];
        REQUIRE(b.remove(out, 5) == 5);
        REQUIRE(std::string(out, 5) == "hello");
        REQUIRE(b.remove(out, 32) == 6);
        REQUIRE(std::string(out, 6) == " world");
        REQUIRE(b.empty());
        REQUIRE(b.remove(out, 32) == 0);
      }
      THEN("consume drains, clamped to the size") {
        b.consume(3);
        REQUIRE(contents(b) == "lo world");
        b.consume(1000);
        REQUIRE(b.empty());
      }
    }
  }
  GIVEN("more data than one segment holds") {
    evbuffer b;
    std::string big;
    for (int i = 0; i < 100000; ++i) big.push_back(static_cast<char>('a' + i % 26));
    for (std::size_t i = 0; i < big.size(); i += 700) REQUIRE_FALSE(b.add(big.data() + i, std::min<std::size_t>(700, big.size() - i)));
    THEN("data() has one buffer per segment and covers everything") {
      REQUIRE(b.segment_count() > 1);
      REQUIRE(extent_sizes(b).size() == b.segment_count());
      REQUIRE(asio::buffer_size(b.data()) == big.size());
      REQUIRE(via_data(b) == big);
    }
    THEN("the data() iterator is bidirectional") {
      auto seq = b.data();
      auto it = seq.end();
      std::size_t n = 0, total = 0;
      while (it != seq.begin()) {
        --it;
        total += (*it).size();
        ++n;
      }
      REQUIRE(n == b.segment_count());
      REQUIRE(total == big.size());
    }
    THEN("drains across segments keep the rest intact") {
      REQUIRE_FALSE(b.drain(12345));
      REQUIRE(contents(b) == big.substr(12345));
      REQUIRE_FALSE(b.drain(b.size() - 10));
      REQUIRE(contents(b) == big.substr(big.size() - 10));
    }
  }
}

SCENARIO("evbuffer: prepend", "[evbuffer]") {
  evbuffer b;
  WHEN("prepending to an empty buffer") {
    REQUIRE_FALSE(b.prepend("abc", 3));
    THEN("it is like add") { REQUIRE(contents(b) == "abc"); }
  }
  WHEN("prepending after a drain made room at the front of the segment") {
    REQUIRE_FALSE(b.add("xxxxworld"));
    REQUIRE_FALSE(b.drain(4));
    REQUIRE_FALSE(b.prepend(std::string_view("hell")));
    THEN("the bytes go in front, in the same segment") {
      REQUIRE(contents(b) == "hellworld");
      REQUIRE(b.segment_count() == 1);
    }
    AND_WHEN("more is prepended than the room in front") {
      const std::string pre(3000, 'p');
      REQUIRE_FALSE(b.prepend(pre));
      THEN("a new segment holds the rest") {
        REQUIRE(contents(b) == pre + "hellworld");
        REQUIRE(b.segment_count() == 2);
      }
    }
  }
  WHEN("prepending before a reference segment") {
    ref_pool refs;
    refs.add(b, "tail");
    REQUIRE_FALSE(b.prepend("head-", 5));
    THEN("the reference is not written to") {
      REQUIRE(contents(b) == "head-tail");
      REQUIRE(refs.store.back() == "tail");
    }
  }
}

SCENARIO("evbuffer: add_buffer and prepend_buffer move segments", "[evbuffer]") {
  GIVEN("two buffers with large contents") {
    evbuffer a, b;
    const std::string x(5000, 'x'), y(9000, 'y');
    REQUIRE_FALSE(a.add(x));
    REQUIRE_FALSE(b.add(y));
    const void* b_first = (*b.data().begin()).data();
    WHEN("b is added to a") {
      REQUIRE_FALSE(a.add_buffer(b));
      THEN("all of b moves without copying its bytes") {
        REQUIRE(b.empty());
        REQUIRE(contents(a) == x + y);
        bool found = false;
        for (asio::const_buffer cb : a.data()) found |= cb.data() == b_first;
        REQUIRE(found);
      }
      THEN("b is usable again") {
        REQUIRE_FALSE(b.add("again"));
        REQUIRE(contents(b) == "again");
        REQUIRE(contents(a) == x + y);
      }
    }
    WHEN("b is prepended to a") {
      REQUIRE_FALSE(a.prepend_buffer(b));
      THEN("b's bytes come first, not copied") {
        REQUIRE(b.empty());
        REQUIRE(contents(a) == y + x);
        REQUIRE((*a.data().begin()).data() == b_first);
      }
    }
    WHEN("a buffer is added to itself") {
      THEN("it is refused") {
        REQUIRE(a.add_buffer(a) == bufev::errc::invalid_argument);
        REQUIRE(a.prepend_buffer(a) == bufev::errc::invalid_argument);
        REQUIRE(contents(a) == x);
      }
    }
  }
  GIVEN("a small source and a destination with free space") {
    evbuffer a, b;
    REQUIRE_FALSE(a.add("head "));
    REQUIRE_FALSE(b.add("small"));
    WHEN("b is added to a") {
      REQUIRE_FALSE(a.add_buffer(b));
      THEN("the bytes are copied into a's free space: one dense segment") {
        REQUIRE(contents(a) == "head small");
        REQUIRE(a.segment_count() == 1);
        REQUIRE(b.empty());
      }
    }
  }
  GIVEN("an empty source") {
    evbuffer a, b;
    REQUIRE_FALSE(a.add("a"));
    THEN("moving it changes nothing") {
      REQUIRE_FALSE(a.add_buffer(b));
      REQUIRE_FALSE(a.prepend_buffer(b));
      REQUIRE(contents(a) == "a");
    }
  }
}

SCENARIO("evbuffer: remove_buffer", "[evbuffer]") {
  GIVEN("a source of three large reference segments") {
    ref_pool refs;
    evbuffer src, dst;
    const std::string s1(4000, '1'), s2(5000, '2'), s3(6000, '3');
    refs.add(src, s1);
    refs.add(src, s2);
    refs.add(src, s3);
    REQUIRE(src.segment_count() == 3);
    WHEN("exactly the first two segments are moved") {
      REQUIRE(src.remove_buffer(dst, 9000) == 9000);
      THEN("they are relinked (the bytes still live in the reference memory)") {
        REQUIRE(contents(dst) == s1 + s2);
        REQUIRE(contents(src) == s3);
        auto it = dst.data().begin();
        REQUIRE((*it).data() == refs.store[0].data());
        ++it;
        REQUIRE((*it).data() == refs.store[1].data());
      }
    }
    WHEN("a large part of a segment is moved") {
      REQUIRE(src.remove_buffer(dst, 4000 + 3000) == 7000);
      THEN("the part is shared, not copied") {
        REQUIRE(contents(dst) == s1 + s2.substr(0, 3000));
        REQUIRE(contents(src) == s2.substr(3000) + s3);
        auto it = dst.data().begin();
        ++it;
        REQUIRE((*it).data() == refs.store[1].data());
        REQUIRE((*src.data().begin()).data() == refs.store[1].data() + 3000);
      }
    }
    WHEN("a small part of a segment is moved") {
      REQUIRE(src.remove_buffer(dst, 4000 + 100) == 4100);
      THEN("the part is copied") {
        REQUIRE(contents(dst) == s1 + s2.substr(0, 100));
        REQUIRE(contents(src) == s2.substr(100) + s3);
      }
    }
    WHEN("more than the size is asked for") {
      REQUIRE(src.remove_buffer(dst, 1 << 20) == 15000);
      THEN("everything moves") {
        REQUIRE(src.empty());
        REQUIRE(contents(dst) == s1 + s2 + s3);
      }
    }
    WHEN("zero bytes or the same buffer is given") {
      REQUIRE(src.remove_buffer(dst, 0) == 0);
      REQUIRE(src.remove_buffer(src, 10) == 0);
      THEN("nothing moves") {
        REQUIRE(src.size() == 15000);
        REQUIRE(dst.empty());
      }
    }
  }
  GIVEN("a small owned source and a destination with room") {
    evbuffer src, dst;
    REQUIRE_FALSE(src.add("0123456789"));
    REQUIRE_FALSE(dst.add(">"));
    REQUIRE(src.remove_buffer(dst, 4) == 4);
    THEN("the bytes are copied") {
      REQUIRE(contents(dst) == ">0123");
      REQUIRE(contents(src) == "456789");
      REQUIRE(dst.segment_count() == 1);
    }
  }
}

SCENARIO("evbuffer: peek", "[evbuffer]") {
  ref_pool refs;
  evbuffer b;
  refs.add(b, "aaaa");
  refs.add(b, "bbbbbb");
  refs.add(b, "cc");
  std::array<asio::const_buffer, 8> ext{};
  THEN("peek(npos) needs one extent per segment") {
    REQUIRE(b.peek(evbuffer::npos, ext) == 3);
    REQUIRE(b.segment_count() == 3);
    REQUIRE(ext[0].size() == 4);
    REQUIRE(ext[1].size() == 6);
    REQUIRE(ext[2].size() == 2);
  }
  THEN("peek(n) covers exactly the first n bytes") {
    REQUIRE(b.peek(4, ext) == 1);
    REQUIRE(b.peek(5, ext) == 2);
    REQUIRE(ext[1].size() == 1);
    REQUIRE(b.peek(0, ext) == 0);
    REQUIRE(b.peek(1000, ext) == 3);
  }
  THEN("with too few extents it fills what it can and returns the count needed") {
    std::array<asio::const_buffer, 1> one{};
    REQUIRE(b.peek(evbuffer::npos, one) == 3);
    REQUIRE(one[0].size() == 4);
    REQUIRE(b.peek(evbuffer::npos, std::span<asio::const_buffer>()) == 3);
  }
  THEN("an empty buffer needs no extent") {
    evbuffer e;
    REQUIRE(e.peek(evbuffer::npos, ext) == 0);
  }
}

SCENARIO("evbuffer: pullup", "[evbuffer]") {
  std::error_code ec;
  GIVEN("data in several segments") {
    ref_pool refs;
    evbuffer b;
    refs.add(b, "hello ");
    refs.add(b, "big ");
    refs.add(b, "world");
    WHEN("the first 8 bytes are pulled up") {
      unsigned char* p = b.pullup(8, ec);
      THEN("they are contiguous and the content is unchanged") {
        REQUIRE_FALSE(ec);
        REQUIRE(p != nullptr);
        REQUIRE(std::string(reinterpret_cast<char*>(p), 8) == "hello bi");
        REQUIRE(contents(b) == "hello big world");
        REQUIRE(extent_sizes(b).front() >= 8);
        REQUIRE(refs.store[0] == "hello ");
      }
    }
    WHEN("everything is pulled up") {
      unsigned char* p = b.pullup(evbuffer::npos, ec);
      THEN("one segment holds it all") {
        REQUIRE_FALSE(ec);
        REQUIRE(std::string(reinterpret_cast<char*>(p), b.size()) == "hello big world");
        REQUIRE(b.segment_count() == 1);
      }
    }
    WHEN("more than the size is asked for") {
      unsigned char* p = b.pullup(100, ec);
      THEN("nullptr and out_of_range, nothing changes") {
        REQUIRE(p == nullptr);
        REQUIRE(ec == bufev::errc::out_of_range);
        REQUIRE(b.segment_count() == 3);
      }
    }
    WHEN("the bytes already are contiguous") {
      unsigned char* p = b.pullup(3, ec);
      THEN("the segment's own memory is returned") {
        REQUIRE(p == reinterpret_cast<const unsigned char*>(refs.store[0].data()));
      }
    }
  }
  GIVEN("an owned head segment with room and data after it") {
    evbuffer b;
    add_split_owned(b, "front-", "back");
    REQUIRE(b.segment_count() == 2);
    REQUIRE_FALSE(b.drain(2));  // leaves room in front of the head segment's data
    unsigned char* p = b.pullup(8, ec);
    THEN("the head is realigned and filled") {
      REQUIRE_FALSE(ec);
      REQUIRE(std::string(reinterpret_cast<char*>(p), 8) == "ont-back");
      REQUIRE(b.segment_count() == 1);
      REQUIRE(contents(b) == "ont-back");
    }
  }
  GIVEN("an empty buffer") {
    evbuffer b;
    THEN("pullup returns nullptr without error") {
      REQUIRE(b.pullup(evbuffer::npos, ec) == nullptr);
      REQUIRE_FALSE(ec);
      REQUIRE(b.pullup(1, ec) == nullptr);
      REQUIRE(ec == bufev::errc::out_of_range);
    }
  }
}

SCENARIO("evbuffer: reserve and commit", "[evbuffer]") {
  std::error_code ec;
  evbuffer b;
  REQUIRE_FALSE(b.add("x"));
  GIVEN("a reservation in one extent") {
    std::array<asio::mutable_buffer, 1> ext{};
    REQUIRE(b.reserve(1000, ext, ec) == 1);
    REQUIRE_FALSE(ec);
    REQUIRE(ext[0].size() >= 1000);
    WHEN("fewer bytes are committed than reserved") {
      std::memcpy(ext[0].data(), "abc", 3);
      std::array<asio::mutable_buffer, 1> c{asio::mutable_buffer(ext[0].data(), 3)};
      REQUIRE_FALSE(b.commit(c));
      THEN("exactly those become readable") { REQUIRE(contents(b) == "xabc"); }
      THEN("the same extents cannot be committed twice") { REQUIRE(b.commit(c) == bufev::errc::not_reserved); }
    }
    WHEN("another operation on the back comes first") {
      REQUIRE_FALSE(b.add("y"));
      THEN("commit reports not_reserved and adds nothing") {
        REQUIRE(b.commit(ext) == bufev::errc::not_reserved);
        REQUIRE(contents(b) == "xy");
      }
    }
    WHEN("the front is drained in between") {
      std::memcpy(ext[0].data(), "abc", 3);
      REQUIRE_FALSE(b.drain(1));
      std::array<asio::mutable_buffer, 1> c{asio::mutable_buffer(ext[0].data(), 3)};
      THEN("the reservation stays valid") {
        REQUIRE_FALSE(b.commit(c));
        REQUIRE(contents(b) == "abc");
      }
    }
    WHEN("extents that were not reserved are committed") {
      char other[10];
      std::array<asio::mutable_buffer, 1> c{asio::mutable_buffer(other, 10)};
      std::array<asio::mutable_buffer, 1> too_big{asio::mutable_buffer(ext[0].data(), ext[0].size() + 1)};
      std::array<asio::mutable_buffer, 2> too_many{ext[0], ext[0]};
      THEN("not_reserved, nothing added") {
        REQUIRE(b.commit(c) == bufev::errc::not_reserved);
        REQUIRE(b.commit(too_big) == bufev::errc::not_reserved);
        REQUIRE(b.commit(too_many) == bufev::errc::not_reserved);
        REQUIRE(contents(b) == "x");
      }
    }
    WHEN("nothing is committed") {
      std::array<asio::mutable_buffer, 1> c{asio::mutable_buffer(ext[0].data(), 0)};
      REQUIRE_FALSE(b.commit(c));
      THEN("the buffer is unchanged") { REQUIRE(contents(b) == "x"); }
    }
  }
  GIVEN("a reservation in two extents larger than the free space") {
    std::array<asio::mutable_buffer, 2> ext{};
    const std::size_t free0 = b.writable_size();
    const std::size_t n = free0 + 5000;
    const std::size_t used = b.reserve(n, ext, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(used == 2);
    REQUIRE(ext[0].size() == free0);
    REQUIRE(ext[0].size() + ext[1].size() >= n);
    WHEN("both extents are filled partly") {
      std::memset(ext[0].data(), 'a', ext[0].size());
      std::memset(ext[1].data(), 'b', 10);
      std::array<asio::mutable_buffer, 2> c{ext[0], asio::mutable_buffer(ext[1].data(), 10)};
      REQUIRE_FALSE(b.commit(c));
      THEN("the bytes follow each other") {
        REQUIRE(contents(b) == "x" + std::string(free0, 'a') + std::string(10, 'b'));
        REQUIRE(b.segment_count() == 2);
      }
    }
    WHEN("only the first extent is committed (trailing extent dropped)") {
      std::memset(ext[0].data(), 'a', 5);
      std::array<asio::mutable_buffer, 1> c{asio::mutable_buffer(ext[0].data(), 5)};
      REQUIRE_FALSE(b.commit(c));
      THEN("only its bytes are added") { REQUIRE(contents(b) == "xaaaaa"); }
    }
    WHEN("the first extent is left empty and the second is filled") {
      std::memcpy(ext[1].data(), "zz", 2);
      std::array<asio::mutable_buffer, 2> c{asio::mutable_buffer(ext[0].data(), 0), asio::mutable_buffer(ext[1].data(), 2)};
      REQUIRE_FALSE(b.commit(c));
      THEN("the data stays dense") {
        REQUIRE(contents(b) == "xzz");
        REQUIRE(b.segment_count() == 2);
        REQUIRE_FALSE(b.add("!"));
        REQUIRE(contents(b) == "xzz!");
      }
    }
  }
  GIVEN("a two-extent reservation whose first segment is then drained empty") {
    std::array<asio::mutable_buffer, 2> ext{};
    REQUIRE(b.reserve(b.writable_size() + 2000, ext, ec) == 2);
    REQUIRE_FALSE(b.drain(1));  // the reserved segment stays in the chain, empty
    WHEN("the first extent is committed empty and the second filled") {
      std::memcpy(ext[1].data(), "hello", 5);
      std::array<asio::mutable_buffer, 2> c{asio::mutable_buffer(ext[0].data(), 0), asio::mutable_buffer(ext[1].data(), 5)};
      REQUIRE_FALSE(b.commit(c));
      THEN("the empty segment is unlinked: data segments are never empty") {
        REQUIRE(b.segment_count() == 1);
        std::array<asio::const_buffer, 2> p{};
        REQUIRE(b.peek(evbuffer::npos, p) == 1);
        REQUIRE(p[0].size() == 5);
        REQUIRE_FALSE(b.add(" world"));
        REQUIRE(contents(b) == "hello world");
      }
    }
  }
  GIVEN("a reservation into an empty buffer with a 3-extent span") {
    evbuffer e;
    std::array<asio::mutable_buffer, 3> ext{};
    const std::size_t used = e.reserve(100, ext, ec);
    THEN("one extent suffices") {
      REQUIRE(used == 1);
      REQUIRE(ext[0].size() >= 100);
    }
  }
  THEN("reserve with no extents is an error") {
    REQUIRE(b.reserve(10, std::span<asio::mutable_buffer>(), ec) == 0);
    REQUIRE(ec == bufev::errc::invalid_argument);
  }
  THEN("commit without a reservation is an error") {
    std::array<asio::mutable_buffer, 0> none{};
    REQUIRE(b.commit(none) == bufev::errc::not_reserved);
  }
}

SCENARIO("evbuffer: expand, prepare and commit(n)", "[evbuffer]") {
  evbuffer b;
  WHEN("expand(n) is called") {
    REQUIRE_FALSE(b.expand(10000));
    const auto before = b.memory();
    REQUIRE(b.writable_size() >= 10000);
    THEN("adding n bytes allocates nothing more") {
      REQUIRE_FALSE(b.add(std::string(10000, 'e')));
      REQUIRE(b.memory().allocated == before.allocated);
      REQUIRE(b.size() == 10000);
    }
  }
  WHEN("bytes are prepared") {
    REQUIRE_FALSE(b.add("ab"));
    auto mb = b.prepare(5000);
    THEN("the sequence has exactly that many bytes") { REQUIRE(asio::buffer_size(mb) == 5000); }
    AND_WHEN("part of it is written and committed") {
      const std::string text(3000, 'q');
      REQUIRE(asio::buffer_copy(mb, asio::buffer(text)) == 3000);
      b.commit(3000);
      THEN("those bytes are appended") { REQUIRE(contents(b) == "ab" + text); }
    }
    AND_WHEN("more than prepared is committed") {
      asio::buffer_copy(mb, asio::buffer(std::string(5000, 'r')));
      b.commit(99999);
      THEN("the commit is clamped") { REQUIRE(b.size() == 5002); }
    }
    AND_WHEN("another back operation comes before commit") {
      REQUIRE_FALSE(b.add("c"));
      b.commit(10);
      THEN("the commit does nothing") { REQUIRE(contents(b) == "abc"); }
    }
  }
  WHEN("more than max_size() is prepared") {
    THEN("std::length_error") { REQUIRE_THROWS_AS(b.prepare(b.max_size() + 1), std::length_error); }
  }
  WHEN("zero bytes are prepared") {
    auto mb = b.prepare(0);
    THEN("the sequence is empty") {
      REQUIRE(mb.begin() == mb.end());
      b.commit(10);
      REQUIRE(b.empty());
    }
  }
  WHEN("the prepared sequence spans segments") {
    REQUIRE_FALSE(b.add("x"));
    const std::size_t free0 = b.writable_size();
    auto mb = b.prepare(free0 + 100);
    std::size_t n = 0;
    for (auto it = mb.begin(); it != mb.end(); ++it) ++n;
    THEN("it has two extents, and iterates backwards too") {
      REQUIRE(n == 2);
      auto it = mb.end();
      --it;
      REQUIRE((*it).size() == 100);
      --it;
      REQUIRE((*it).size() == free0);
      REQUIRE(it == mb.begin());
    }
  }
}

SCENARIO("evbuffer: search", "[evbuffer]") {
  ref_pool refs;
  evbuffer b;
  refs.add(b, "the quick br");
  refs.add(b, "own fox jumps over the lazy d");
  refs.add(b, "og");
  const std::string all = "the quick brown fox jumps over the lazy dog";
  THEN("matches are found across segment boundaries") {
    REQUIRE(b.search("brown") == all.find("brown"));
    REQUIRE(b.search("dog") == all.find("dog"));
    REQUIRE(b.search("the") == 0);
    REQUIRE(b.search("the", 1) == all.find("the", 1));
    REQUIRE(b.search("the", 32) == evbuffer::npos);
    REQUIRE(b.search("cat") == evbuffer::npos);
    REQUIRE(b.search(all) == 0);
    REQUIRE(b.search(all + "!") == evbuffer::npos);
    REQUIRE(b.search("g", all.size()) == evbuffer::npos);
  }
  THEN("an empty needle matches at start") {
    REQUIRE(b.search("", 5) == 5);
    REQUIRE(b.search("", all.size()) == all.size());
    REQUIRE(b.search("", all.size() + 1) == evbuffer::npos);
  }
  THEN("search_range needs the match to end at or before end") {
    const std::size_t at = all.find("fox");
    REQUIRE(b.search_range("fox", 3, 0, at + 3) == at);
    REQUIRE(b.search_range("fox", 3, 0, at + 2) == evbuffer::npos);
    REQUIRE(b.search_range("fox", 3, at + 1, all.size()) == evbuffer::npos);
    REQUIRE(b.search_range("dog", 3, 0, 1000) == all.find("dog"));
  }
  THEN("a partial match followed by the real one is found") {
    evbuffer c;
    refs.add(c, "aaab");
    refs.add(c, "aab");
    REQUIRE(c.search("aab") == 1);
    REQUIRE(c.search("aab", 2) == 4);
    REQUIRE(c.search("baa") == 3);
  }
}

SCENARIO("evbuffer: search_eol for each style", "[evbuffer][eol]") {
  evbuffer b;
  REQUIRE_FALSE(b.add(std::string_view("ab\rcd\r\nef\n\ngh\0ij\n\r\r\nk", 21)));
  THEN("lf finds LF only") {
    auto m = b.search_eol(0, eol_style::lf);
    REQUIRE(m.pos == 6);
    REQUIRE(m.length == 1);
    REQUIRE(b.search_eol(7, eol_style::lf).pos == 9);
  }
  THEN("crlf takes an LF with an optional CR before it") {
    auto m = b.search_eol(0, eol_style::crlf);
    REQUIRE(m.pos == 5);
    REQUIRE(m.length == 2);
    m = b.search_eol(7, eol_style::crlf);
    REQUIRE(m.pos == 9);
    REQUIRE(m.length == 1);
    m = b.search_eol(6, eol_style::crlf);  // CR before start does not count
    REQUIRE(m.pos == 6);
    REQUIRE(m.length == 1);
  }
  THEN("crlf_strict needs CR LF") {
    auto m = b.search_eol(0, eol_style::crlf_strict);
    REQUIRE(m.pos == 5);
    REQUIRE(m.length == 2);
    m = b.search_eol(7, eol_style::crlf_strict);
    REQUIRE(m.pos == 18);
    REQUIRE(m.length == 2);
  }
  THEN("any takes the first CR or LF and the run after it") {
    auto m = b.search_eol(0, eol_style::any);
    REQUIRE(m.pos == 2);
    REQUIRE(m.length == 1);
    m = b.search_eol(3, eol_style::any);
    REQUIRE(m.pos == 5);
    REQUIRE(m.length == 2);
    m = b.search_eol(7, eol_style::any);
    REQUIRE(m.pos == 9);
    REQUIRE(m.length == 2);
    m = b.search_eol(12, eol_style::any);
    REQUIRE(m.pos == 16);
    REQUIRE(m.length == 4);
  }
  THEN("nul finds the NUL byte") {
    auto m = b.search_eol(0, eol_style::nul);
    REQUIRE(m.pos == 13);
    REQUIRE(m.length == 1);
    REQUIRE(m.found());
  }
  THEN("no end of line past the last one") {
    REQUIRE_FALSE(b.search_eol(20, eol_style::lf).found());
    REQUIRE(b.search_eol(20, eol_style::any).pos == evbuffer::npos);
    REQUIRE_FALSE(b.search_eol(21, eol_style::lf).found());
    REQUIRE_FALSE(b.search_eol(100, eol_style::crlf).found());
  }
}

SCENARIO("evbuffer: readln", "[evbuffer][eol]") {
  std::error_code ec;
  GIVEN("CRLF text") {
    evbuffer b;
    REQUIRE_FALSE(b.add("GET / HTTP/1.1\r\nHost: x\r\n\r\npartial"));
    THEN("lines come out without their end of line") {
      REQUIRE(b.readln(eol_style::crlf_strict, 100, ec) == "GET / HTTP/1.1");
      REQUIRE(b.readln(eol_style::crlf_strict, 100, ec) == "Host: x");
      REQUIRE(b.readln(eol_style::crlf_strict, 100, ec) == "");
      REQUIRE_FALSE(ec);
      AND_THEN("an incomplete line stays in the buffer") {
        REQUIRE_FALSE(b.readln(eol_style::crlf_strict, 100, ec).has_value());
        REQUIRE_FALSE(ec);
        REQUIRE(contents(b) == "partial");
        REQUIRE_FALSE(b.add("\r\n"));
        REQUIRE(b.readln(eol_style::crlf_strict, 100, ec) == "partial");
        REQUIRE(b.empty());
      }
    }
  }
  GIVEN("a line longer than the maximum") {
    evbuffer b;
    REQUIRE_FALSE(b.add("0123456789abcdef"));
    THEN("without an end of line it is line_too_long and the buffer is intact") {
      REQUIRE_FALSE(b.readln(eol_style::lf, 10, ec).has_value());
      REQUIRE(ec == bufev::errc::line_too_long);
      REQUIRE(b.size() == 16);
    }
    THEN("with its end of line beyond the maximum too") {
      REQUIRE_FALSE(b.add("\n"));
      REQUIRE_FALSE(b.readln(eol_style::lf, 10, ec).has_value());
      REQUIRE(ec == bufev::errc::line_too_long);
      REQUIRE(b.size() == 17);
      AND_THEN("a larger maximum reads it") {
        REQUIRE(b.readln(eol_style::lf, 16, ec) == "0123456789abcdef");
        REQUIRE_FALSE(ec);
      }
    }
    THEN("no more than the maximum buffered is not an error yet") {
      REQUIRE_FALSE(b.readln(eol_style::lf, 16, ec).has_value());
      REQUIRE_FALSE(ec);
    }
  }
  GIVEN("a line of exactly the maximum with a CR at the end") {
    evbuffer b;
    REQUIRE_FALSE(b.add("0123456789\r"));
    THEN("crlf waits for the LF instead of failing") {
      REQUIRE_FALSE(b.readln(eol_style::crlf, 10, ec).has_value());
      REQUIRE_FALSE(ec);
      REQUIRE_FALSE(b.readln(eol_style::crlf_strict, 10, ec).has_value());
      REQUIRE_FALSE(ec);
      REQUIRE_FALSE(b.add("\n"));
      REQUIRE(b.readln(eol_style::crlf, 10, ec) == "0123456789");
    }
    THEN("lf reports it as too long") {
      REQUIRE_FALSE(b.readln(eol_style::lf, 10, ec).has_value());
      REQUIRE(ec == bufev::errc::line_too_long);
    }
  }
  GIVEN("lone CRs") {
    evbuffer b;
    REQUIRE_FALSE(b.add("a\rb\r\n"));
    THEN("crlf keeps a lone CR in the line, any ends the line there") {
      evbuffer c;
      REQUIRE_FALSE(c.add("a\rb\r\n"));
      REQUIRE(b.readln(eol_style::crlf, 100, ec) == "a\rb");
      REQUIRE(c.readln(eol_style::any, 100, ec) == "a");
      REQUIRE(c.readln(eol_style::any, 100, ec) == "b");
      REQUIRE(c.empty());
    }
  }
  GIVEN("an empty buffer") {
    evbuffer b;
    THEN("no line, no error") {
      REQUIRE_FALSE(b.readln(eol_style::any, 10, ec).has_value());
      REQUIRE_FALSE(ec);
    }
  }
}

SCENARIO("evbuffer: readln with lines split across segments, every style and split point", "[evbuffer][eol]") {
  const auto style = GENERATE(eol_style::any, eol_style::crlf, eol_style::crlf_strict, eol_style::lf, eol_style::nul);
  const bool owned = GENERATE(true, false);
  const std::string eol = eol_text(style);
  const std::string text = "first line" + eol + "second";
  INFO("style " << style_name(style) << (owned ? " owned" : " reference"));
  for (std::size_t k = 1; k < text.size(); ++k) {
    INFO("split at " << k);
    std::error_code ec;
    ref_pool refs;
    evbuffer b;
    if (owned) {
      add_split_owned(b, std::string_view(text).substr(0, k), std::string_view(text).substr(k));
    } else {
      refs.add(b, std::string_view(text).substr(0, k));
      refs.add(b, std::string_view(text).substr(k));
    }
    REQUIRE(b.segment_count() == 2);
    const auto m = b.search_eol(0, style);
    REQUIRE(m.pos == 10);
    REQUIRE(m.length == eol.size());
    auto line = b.readln(style, 64, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(line == "first line");
    REQUIRE(contents(b) == "second");
  }
}

SCENARIO("evbuffer: CRLF split exactly between two segments", "[evbuffer][eol]") {
  const auto style = GENERATE(eol_style::crlf_strict, eol_style::crlf, eol_style::any);
  const bool owned = GENERATE(true, false);
  INFO("style " << style_name(style));
  std::error_code ec;
  ref_pool refs;
  evbuffer b;
  if (owned) {
    add_split_owned(b, "abc\r", "\ndef\r\n");
  } else {
    refs.add(b, "abc\r");
    refs.add(b, "\ndef\r\n");
  }
  REQUIRE(b.segment_count() == 2);
  THEN("the CR LF pair is one end of line") {
    REQUIRE(b.readln(style, 100, ec) == "abc");
    REQUIRE(contents(b) == "def\r\n");
    REQUIRE(b.readln(style, 100, ec) == "def");
    REQUIRE(b.empty());
  }
  THEN("with only the CR present, crlf styles wait") {
    evbuffer c;
    refs.add(c, "abc\r");
    auto line = c.readln(style, 100, ec);
    if (style == eol_style::any) {
      REQUIRE(line == "abc");
    } else {
      REQUIRE_FALSE(line.has_value());
      REQUIRE(c.size() == 4);
    }
  }
}

SCENARIO("evbuffer: reference cleanup timing", "[evbuffer][reference]") {
  static const char text[] = "0123456789abcdefghij";  // 20 bytes
  int calls = 0;
  const void* seen_data = nullptr;
  std::size_t seen_len = 0;
  auto cleanup = [&](const void* d, std::size_t n) {
    ++calls;
    seen_data = d;
    seen_len = n;
  };
  GIVEN("a reference in a buffer") {
    auto b = std::make_unique<evbuffer>();
    REQUIRE_FALSE(b->add("head"));
    REQUIRE_FALSE(b->add_reference(text, 20, cleanup));
    REQUIRE_FALSE(b->add("tail"));
    REQUIRE(contents(*b) == std::string("head") + text + "tail");
    WHEN("part of it is drained") {
      REQUIRE_FALSE(b->drain(4 + 19));
      THEN("the cleanup has not run") { REQUIRE(calls == 0); }
      AND_WHEN("its last byte is drained") {
        REQUIRE_FALSE(b->drain(1));
        THEN("the cleanup runs once, with the original extent") {
          REQUIRE(calls == 1);
          REQUIRE(seen_data == text);
          REQUIRE(seen_len == 20);
          REQUIRE_FALSE(b->drain(4));
          b.reset();
          REQUIRE(calls == 1);
        }
      }
    }
    WHEN("the buffer is destroyed") {
      b.reset();
      THEN("the cleanup runs once") { REQUIRE(calls == 1); }
    }
    WHEN("the buffer is moved into another by add_buffer") {
      evbuffer other;
      REQUIRE_FALSE(other.add_buffer(*b));
      b.reset();
      THEN("nothing runs until the other buffer drains it") {
        REQUIRE(calls == 0);
        REQUIRE_FALSE(other.drain(24));
        REQUIRE(calls == 1);
      }
    }
    WHEN("a small part of it moves to another buffer with remove_buffer") {
      evbuffer other;
      REQUIRE(b->remove_buffer(other, 4 + 10) == 14);
      THEN("the part is copied: the cleanup follows the source buffer only") {
        REQUIRE(contents(other) == "head0123456789");
        REQUIRE(contents(*b) == "abcdefghijtail");
        REQUIRE_FALSE(b->drain(b->size()));
        REQUIRE(calls == 1);
        REQUIRE_FALSE(other.drain(other.size()));
        REQUIRE(calls == 1);
      }
    }
    WHEN("a second buffer shares it with add_buffer_reference") {
      evbuffer shared;
      REQUIRE_FALSE(shared.add_buffer_reference(*b));
      REQUIRE(contents(shared) == contents(*b));
      THEN("the two drain independently and the cleanup runs after the last") {
        REQUIRE_FALSE(shared.drain(shared.size()));
        REQUIRE(calls == 0);
        REQUIRE(b->size() == 28);
        REQUIRE(contents(*b) == std::string("head") + text + "tail");
        REQUIRE_FALSE(b->drain(10));
        REQUIRE(calls == 0);
        b.reset();
        REQUIRE(calls == 1);
      }
      THEN("destroying the first keeps the bytes alive in the second") {
        b.reset();
        REQUIRE(calls == 0);
        REQUIRE(contents(shared) == std::string("head") + text + "tail");
        REQUIRE_FALSE(shared.drain(24));
        REQUIRE(calls == 1);
      }
    }
  }
  GIVEN("a large reference split by remove_buffer") {
    const std::string big(10000, 'R');
    auto b = std::make_unique<evbuffer>();
    REQUIRE_FALSE(b->add_reference(big.data(), big.size(), cleanup));
    evbuffer other;
    REQUIRE(b->remove_buffer(other, 6000) == 6000);
    THEN("the part is shared and the cleanup waits for both buffers") {
      REQUIRE((*other.data().begin()).data() == big.data());
      REQUIRE((*b->data().begin()).data() == big.data() + 6000);
      REQUIRE_FALSE(b->drain(b->size()));
      REQUIRE(calls == 0);
      REQUIRE_FALSE(other.drain(5999));
      REQUIRE(calls == 0);
      REQUIRE_FALSE(other.drain(1));
      REQUIRE(calls == 1);
      REQUIRE(seen_data == big.data());
      REQUIRE(seen_len == big.size());
    }
    THEN("destroying both buffers runs it once") {
      b.reset();
      REQUIRE(calls == 0);
      other = evbuffer();
      REQUIRE(calls == 1);
    }
  }
  GIVEN("an empty reference") {
    evbuffer b;
    REQUIRE_FALSE(b.add_reference(text, 0, cleanup));
    THEN("its cleanup runs at once") {
      REQUIRE(calls == 1);
      REQUIRE(b.empty());
    }
  }
  GIVEN("a frozen back") {
    evbuffer b;
    b.freeze(buffer_end::back);
    THEN("add_reference fails and the cleanup does not run") {
      REQUIRE(b.add_reference(text, 20, cleanup) == bufev::errc::frozen);
      REQUIRE(calls == 0);
      REQUIRE(b.add_reference(text, 20) == bufev::errc::frozen);
    }
  }
  GIVEN("a reference without cleanup") {
    evbuffer b;
    REQUIRE_FALSE(b.add_reference(text, 20));
    THEN("its bytes read back") {
      REQUIRE(contents(b) == text);
      REQUIRE((*b.data().begin()).data() == text);
    }
  }
}

SCENARIO("evbuffer: add_buffer_reference shares owned segments", "[evbuffer]") {
  evbuffer a, b;
  const std::string big(5000, 's');
  REQUIRE_FALSE(a.add(big));
  REQUIRE_FALSE(b.add_buffer_reference(a));
  THEN("both see the same bytes in the same memory") {
    REQUIRE(contents(b) == big);
    REQUIRE((*a.data().begin()).data() == (*b.data().begin()).data());
  }
  THEN("appending to the source does not change the copy") {
    REQUIRE_FALSE(a.add("more"));
    REQUIRE(contents(b) == big);
    REQUIRE(contents(a) == big + "more");
  }
  THEN("prepending to the source does not write into shared memory") {
    REQUIRE_FALSE(a.drain(10));
    REQUIRE_FALSE(a.prepend("0123456789", 10));
    REQUIRE(contents(b) == big);
    REQUIRE(contents(a) == "0123456789" + big.substr(10));
  }
  THEN("the source dies first, the copy lives on") {
    { evbuffer gone = std::move(a); }
    REQUIRE(contents(b) == big);
  }
  THEN("sharing with itself is refused") { REQUIRE(a.add_buffer_reference(a) == bufev::errc::invalid_argument); }
}

namespace {
struct temp_file {
  std::string path;
  explicit temp_file(const std::string& content) {
    const int fd = bufev::test::make_temp_file(path);
    REQUIRE(fd >= 0);
    const bool written = bufev::test::write_all(fd, content.data(), content.size());
    bufev::test::close_fd(fd);  // Windows cannot remove a file that is still open
    REQUIRE(written);
  }
  ~temp_file() { bufev::test::remove_file(path); }
  int open_again() const { return bufev::test::open_read(path); }
};
using bufev::test::fd_open;
}  // namespace

SCENARIO("evbuffer: file segments", "[evbuffer][file]") {
  std::string content;
  for (int i = 0; i < 20000; ++i) content += static_cast<char>('A' + i % 23);
  content += "\r\nend\r\n";
  temp_file tf(content);
  const int fd = tf.open_again();
  REQUIRE(fd >= 0);
  GIVEN("a file region added between memory bytes") {
    evbuffer b;
    REQUIRE_FALSE(b.add("pre:"));
    REQUIRE_FALSE(b.add_file(fd, 100, content.size() - 100));
    REQUIRE_FALSE(b.add(":post"));
    const std::string expect = "pre:" + content.substr(100) + ":post";
    THEN("copyout reads the file contents") {
      REQUIRE(b.size() == expect.size());
      REQUIRE(contents(b) == expect);
      REQUIRE(b.bytes_before_file() == 4);
    }
    THEN("data() reads the region into memory") {
      REQUIRE(via_data(b) == expect);
      REQUIRE_FALSE(b.materialize());
    }
    THEN("search and readln work across the region") {
      REQUIRE(b.search("end") == expect.find("end"));
      std::error_code ec;
      auto line = b.readln(eol_style::crlf_strict, 1 << 20, ec);
      REQUIRE(line == expect.substr(0, expect.find("\r\n")));
      REQUIRE(b.readln(eol_style::crlf_strict, 100, ec) == "end");
      REQUIRE(contents(b) == ":post");
    }
    WHEN("the memory bytes in front are drained") {
      REQUIRE_FALSE(b.drain(4 + 50));
      THEN("front_file describes the rest of the region for sendfile") {
        auto fr = b.front_file();
        REQUIRE(fr.has_value());
        REQUIRE(fr->fd == fd);
        REQUIRE(fr->offset == 150);
        REQUIRE(fr->length == content.size() - 150);
        REQUIRE(b.bytes_before_file() == 0);
      }
      AND_WHEN("the region is drained completely") {
        REQUIRE(fd_open(fd));
        REQUIRE_FALSE(b.drain(content.size() - 150));
        THEN("the descriptor is closed and the memory bytes remain") {
          REQUIRE_FALSE(fd_open(fd));
          REQUIRE_FALSE(b.front_file().has_value());
          REQUIRE(contents(b) == ":post");
        }
      }
    }
    WHEN("part of the region moves with remove_buffer") {
      evbuffer other;
      REQUIRE(b.remove_buffer(other, 4 + 5000) == 5004);
      THEN("the rest is still a file region and both read correctly") {
        REQUIRE(contents(other) == expect.substr(0, 5004));
        REQUIRE(contents(b) == expect.substr(5004));
        auto fr = b.front_file();
        REQUIRE(fr.has_value());
        REQUIRE(fr->offset == 100 + 5000);
        REQUIRE(via_data(other) == expect.substr(0, 5004));
      }
    }
    WHEN("the region is pulled up") {
      std::error_code ec;
      unsigned char* p = b.pullup(4 + 10, ec);
      THEN("its bytes are in memory") {
        REQUIRE_FALSE(ec);
        REQUIRE(std::string(reinterpret_cast<char*>(p), 14) == expect.substr(0, 14));
        REQUIRE(contents(b) == expect);
      }
    }
  }
  GIVEN("a region the buffer does not own") {
    {
      evbuffer b;
      REQUIRE_FALSE(b.add_file(fd, 0, 10, false));
      REQUIRE(contents(b) == content.substr(0, 10));
    }
    THEN("the descriptor stays open") {
      REQUIRE(fd_open(fd));
      bufev::test::close_fd(fd);
    }
  }
  GIVEN("a region beyond the end of the file") {
    evbuffer b;
    REQUIRE_FALSE(b.add_file(fd, content.size() - 10, 100, false));
    THEN("materialize reports the error and copyout stops short") {
      REQUIRE(b.materialize());
      char out[100];
      REQUIRE(b.copyout(out, 100) < 100);
      bufev::test::close_fd(fd);
    }
  }
  GIVEN("bad arguments") {
    evbuffer b;
    THEN("a negative fd is refused, an empty region just closes the fd") {
      REQUIRE(b.add_file(-1, 0, 10) == bufev::errc::invalid_argument);
      REQUIRE_FALSE(b.add_file(fd, 0, 0));
      REQUIRE_FALSE(fd_open(fd));
      REQUIRE(b.empty());
    }
  }
}

SCENARIO("evbuffer: change callbacks", "[evbuffer][callbacks]") {
  GIVEN("a buffer with a callback") {
    evbuffer b;
    std::vector<buffer_change> seen;
    auto h = b.add_cb([&](evbuffer& self, const buffer_change& c) {
      REQUIRE(&self == &b);
      seen.push_back(c);
    });
    REQUIRE(h);
    WHEN("the size changes") {
      REQUIRE_FALSE(b.add("hello"));
      REQUIRE_FALSE(b.prepend(">", 1));
      REQUIRE_FALSE(b.drain(2));
      char out[2];
      REQUIRE(b.remove(out, 2) == 2);
      THEN("each change is reported with orig_size, n_added, n_deleted") {
        REQUIRE(seen.size() == 4);
        REQUIRE(same(seen[0], 0, 5, 0));
        REQUIRE(same(seen[1], 5, 1, 0));
        REQUIRE(same(seen[2], 6, 0, 2));
        REQUIRE(same(seen[3], 4, 0, 2));
      }
    }
    WHEN("nothing changes") {
      REQUIRE_FALSE(b.add("", 0));
      REQUIRE(b.drain(1) == bufev::errc::out_of_range);
      REQUIRE_FALSE(b.search("x") != evbuffer::npos);
      THEN("no call") { REQUIRE(seen.empty()); }
    }
    WHEN("the callback is disabled, then enabled") {
      REQUIRE(b.set_cb_enabled(h, false));
      REQUIRE_FALSE(b.cb_enabled(h));
      REQUIRE_FALSE(b.add("a"));
      REQUIRE(b.set_cb_enabled(h, true));
      REQUIRE_FALSE(b.add("b"));
      THEN("only the enabled period is reported") {
        REQUIRE(seen.size() == 1);
        REQUIRE(same(seen[0], 1, 1, 0));
      }
    }
    WHEN("the callback is removed") {
      REQUIRE(b.remove_cb(h));
      REQUIRE_FALSE(b.remove_cb(h));
      REQUIRE_FALSE(b.set_cb_enabled(h, true));
      REQUIRE_FALSE(b.add("a"));
      THEN("it is not called") { REQUIRE(seen.empty()); }
    }
    WHEN("a second callback is added") {
      std::vector<int> order;
      evbuffer c;
      c.add_cb([&](const buffer_change&) { order.push_back(1); });
      c.add_cb([&](const buffer_change&) { order.push_back(2); });
      REQUIRE_FALSE(c.add("x"));
      THEN("callbacks run in the order they were added") { REQUIRE(order == std::vector<int>{1, 2}); }
    }
  }
  GIVEN("callbacks that change the buffer and the callback list") {
    evbuffer b;
    int first = 0, second = 0;
    evbuffer::callback_handle h2;
    b.add_cb([&](evbuffer& self, const buffer_change& c) {
      ++first;
      if (c.n_added && self.size() > 3) REQUIRE_FALSE(self.drain(self.size() - 3));  // re-entrant change
      self.remove_cb(h2);
    });
    h2 = b.add_cb([&](const buffer_change&) { ++second; });
    REQUIRE_FALSE(b.add("123456"));
    THEN("the nested change is reported and the removed callback is not run again") {
      REQUIRE(contents(b) == "456");
      REQUIRE(first == 2);
      REQUIRE(second == 0);
      REQUIRE_FALSE(b.add("x"));
      REQUIRE(second == 0);
    }
  }
  GIVEN("an observer and a callback") {
    evbuffer b;
    change_log log;
    b.set_observer(log.observer());
    int cb = 0;
    b.add_cb([&](const buffer_change&) { ++cb; });
    REQUIRE_FALSE(b.add("abc"));
    std::error_code ec;
    REQUIRE(b.readln(eol_style::lf, 10, ec) == std::nullopt);
    REQUIRE_FALSE(b.add("\n"));
    REQUIRE(b.readln(eol_style::lf, 10, ec) == "abc");
    THEN("the observer sees every change too") {
      REQUIRE(log.changes.size() == 3);
      REQUIRE(same(log.changes[2], 4, 0, 4));
      REQUIRE(cb == 3);
    }
  }
}

SCENARIO("evbuffer: deferred change callbacks", "[evbuffer][callbacks]") {
  asio::io_context io;
  GIVEN("callbacks deferred to an io_context") {
    auto b = std::make_unique<evbuffer>();
    std::vector<buffer_change> seen;
    b->add_cb([&](const buffer_change& c) { seen.push_back(c); });
    b->defer_callbacks(io.get_executor());
    change_log log;
    b->set_observer(log.observer());
    REQUIRE_FALSE(b->add("hello"));
    REQUIRE_FALSE(b->add(" world"));
    REQUIRE_FALSE(b->drain(3));
    THEN("nothing runs inline, the observer does") {
      REQUIRE(seen.empty());
      REQUIRE(log.changes.size() == 3);
    }
    WHEN("the io_context runs") {
      io.run_for(std::chrono::seconds(5));
      THEN("one coalesced call: first orig_size, summed counts") {
        REQUIRE(seen.size() == 1);
        REQUIRE(same(seen[0], 0, 11, 3));
      }
      AND_WHEN("more changes follow") {
        REQUIRE_FALSE(b->add("!"));
        io.restart();
        io.run_for(std::chrono::seconds(5));
        THEN("they are delivered in a new call") {
          REQUIRE(seen.size() == 2);
          REQUIRE(same(seen[1], 8, 1, 0));
        }
      }
    }
    WHEN("the buffer is destroyed before the io_context runs") {
      b.reset();
      io.run_for(std::chrono::seconds(5));
      THEN("no callback runs") { REQUIRE(seen.empty()); }
    }
    WHEN("deferral is switched off") {
      io.run_for(std::chrono::seconds(5));
      b->defer_callbacks(asio::any_io_executor());
      REQUIRE_FALSE(b->add("x"));
      THEN("callbacks run inline again") {
        REQUIRE(seen.size() == 2);
        REQUIRE(same(seen[1], 8, 1, 0));
      }
    }
  }
  GIVEN("a deferred callback that is removed before delivery") {
    evbuffer b;
    int calls = 0;
    auto h = b.add_cb([&](const buffer_change&) { ++calls; });
    b.defer_callbacks(io.get_executor());
    REQUIRE_FALSE(b.add("abc"));
    REQUIRE(b.remove_cb(h));
    io.run_for(std::chrono::seconds(5));
    THEN("it is not called") { REQUIRE(calls == 0); }
  }
}

SCENARIO("evbuffer: frozen ends refuse their operations", "[evbuffer][freeze]") {
  evbuffer b, other;
  REQUIRE_FALSE(b.add("0123456789"));
  REQUIRE_FALSE(other.add("other"));
  std::error_code ec;
  change_log log;
  b.set_observer(log.observer());
  GIVEN("a frozen back") {
    b.freeze(buffer_end::back);
    REQUIRE(b.frozen(buffer_end::back));
    REQUIRE_FALSE(b.frozen(buffer_end::front));
    THEN("appending operations fail with errc::frozen and change nothing") {
      REQUIRE(b.add("x") == bufev::errc::frozen);
      REQUIRE(b.add_reference("x", 1) == bufev::errc::frozen);
      REQUIRE(b.add_file(0, 0, 1, false) == bufev::errc::frozen);
      REQUIRE(b.add_buffer(other) == bufev::errc::frozen);
      REQUIRE(b.add_buffer_reference(other) == bufev::errc::frozen);
      REQUIRE(other.remove_buffer(b, 2) == 0);
      std::array<asio::mutable_buffer, 2> ext{};
      REQUIRE(b.reserve(10, ext, ec) == 0);
      REQUIRE(ec == bufev::errc::frozen);
      REQUIRE(b.expand(100) == bufev::errc::frozen);
      REQUIRE_THROWS_AS(b.prepare(10), std::system_error);
      REQUIRE(contents(b) == "0123456789");
      REQUIRE(contents(other) == "other");
      REQUIRE(log.changes.empty());
    }
    THEN("the front still works") {
      REQUIRE_FALSE(b.drain(1));
      REQUIRE_FALSE(b.prepend("<", 1));
      REQUIRE(b.readln(eol_style::lf, 100, ec) == std::nullopt);
      REQUIRE_FALSE(ec);
      REQUIRE(b.remove_buffer(other, 2) == 2);
      REQUIRE(contents(other) == "other<1");
    }
    THEN("a commit after freezing is refused") {
      b.unfreeze(buffer_end::back);
      std::array<asio::mutable_buffer, 1> ext{};
      REQUIRE(b.reserve(10, ext, ec) == 1);
      auto mb = b.prepare(5);
      (void)mb;
      b.freeze(buffer_end::back);
      b.commit(5);
      REQUIRE(b.size() == 10);
      REQUIRE(b.commit(ext) == bufev::errc::frozen);
      REQUIRE(b.size() == 10);
    }
    THEN("unfreezing restores it") {
      b.unfreeze(buffer_end::back);
      REQUIRE_FALSE(b.frozen(buffer_end::back));
      REQUIRE_FALSE(b.add("x"));
      REQUIRE(contents(b) == "0123456789x");
    }
  }
  GIVEN("a frozen front") {
    b.freeze(buffer_end::front);
    REQUIRE(b.frozen(buffer_end::front));
    THEN("consuming operations fail with errc::frozen and change nothing") {
      REQUIRE(b.drain(1) == bufev::errc::frozen);
      char out[4];
      REQUIRE(b.remove(out, 4) == 0);
      REQUIRE(b.prepend("x", 1) == bufev::errc::frozen);
      REQUIRE(b.prepend_buffer(other) == bufev::errc::frozen);
      REQUIRE(other.prepend_buffer(b) == bufev::errc::frozen);
      REQUIRE(other.add_buffer(b) == bufev::errc::frozen);
      REQUIRE(b.remove_buffer(other, 3) == 0);
      b.consume(3);
      REQUIRE(b.add("\n") == std::error_code());
      REQUIRE_FALSE(b.readln(eol_style::lf, 100, ec).has_value());
      REQUIRE(ec == bufev::errc::frozen);
      REQUIRE(contents(b) == "0123456789\n");
      REQUIRE(contents(other) == "other");
      REQUIRE(log.changes.size() == 1);  // only the add
    }
    THEN("reading without removing still works") {
      REQUIRE(contents(b) == "0123456789");
      REQUIRE(b.search("5") == 5);
      REQUIRE(b.pullup(3, ec) != nullptr);
      REQUIRE(b.add_buffer_reference(other) == std::error_code());
      REQUIRE(other.add_buffer_reference(b) == std::error_code());
    }
  }
}

SCENARIO("evbuffer: bytes do not move under an operation in flight", "[evbuffer][freeze]") {
  std::error_code ec;
  GIVEN("a data() sequence handed to a writer, and an append after it") {
    evbuffer b;
    REQUIRE_FALSE(b.add("abc"));
    auto seq = b.data();
    b.freeze(buffer_end::front);
    REQUIRE_FALSE(b.add("def"));
    REQUIRE_FALSE(b.add(std::string(5000, 'g')));
    THEN("the sequence still covers the bytes it was made for") {
      REQUIRE(asio::buffer_size(seq) == 3);
      REQUIRE(std::string(static_cast<const char*>((*seq.begin()).data()), 3) == "abc");
      REQUIRE(b.size() == 5006);
    }
  }
  GIVEN("a small tail of data late in its segment") {
    evbuffer b;
    REQUIRE_FALSE(b.add(std::string(300, 'a')));
    REQUIRE_FALSE(b.drain(250));
    const void* before = (*b.data().begin()).data();
    const std::size_t space = b.writable_size();
    WHEN("more space is prepared with the front frozen") {
      b.freeze(buffer_end::front);
      auto mb = b.prepare(space + 100);
      THEN("the data is not moved to make room") {
        REQUIRE((*b.data().begin()).data() == before);
        REQUIRE(asio::buffer_size(mb) == space + 100);
      }
    }
    WHEN("the same is done with the front open") {
      auto mb = b.prepare(space + 100);
      THEN("the data is moved to the start of its segment instead of allocating") {
        REQUIRE((*b.data().begin()).data() != before);
        REQUIRE(contents(b) == std::string(50, 'a'));
        REQUIRE(b.segment_count() == 1);
        REQUIRE(asio::buffer_size(mb) == space + 100);
      }
    }
  }
  GIVEN("data in two segments and a frozen front") {
    ref_pool refs;
    evbuffer b;
    refs.add(b, "abc");
    refs.add(b, "def");
    b.freeze(buffer_end::front);
    THEN("pullup of bytes already contiguous works, rearranging is refused") {
      REQUIRE(b.pullup(3, ec) != nullptr);
      REQUIRE_FALSE(ec);
      REQUIRE(b.pullup(4, ec) == nullptr);
      REQUIRE(ec == bufev::errc::frozen);
      REQUIRE(b.segment_count() == 2);
    }
  }
  GIVEN("a read in flight into prepared space (back frozen)") {
    evbuffer in, other;
    REQUIRE_FALSE(in.add("old data"));
    auto mb = in.prepare(100);
    const std::string incoming = "incoming bytes";
    asio::buffer_copy(mb, asio::buffer(incoming));  // the "kernel" writes
    in.freeze(buffer_end::back);
    const int front_op = GENERATE(0, 1, 2, 3, 4, 5, 6);
    INFO("front operation " << front_op);
    std::string front = "old data";
    switch (front_op) {
      case 0: REQUIRE_FALSE(in.drain(8)); front = ""; break;
      case 1: REQUIRE(in.readln(eol_style::lf, 100, ec) == std::nullopt); break;
      case 2: REQUIRE_FALSE(other.add_buffer(in)); front = ""; break;
      case 3: REQUIRE(in.remove_buffer(other, 8) == 8); front = ""; break;
      case 4: REQUIRE_FALSE(other.prepend_buffer(in)); front = ""; break;
      case 5:
        REQUIRE_FALSE(in.drain(8));
        REQUIRE_FALSE(in.prepend("new front", 9));
        front = "new front";
        break;
      case 6: REQUIRE_FALSE(in.prepend("> ", 2)); front = "> old data"; break;
    }
    WHEN("the read completes") {
      in.unfreeze(buffer_end::back);
      in.commit(incoming.size());
      THEN("the bytes it wrote are committed after whatever the front holds") {
        REQUIRE(contents(in) == front + incoming);
        if (front_op >= 2 && front_op <= 4) REQUIRE(contents(other) == "old data");
      }
    }
  }
}

SCENARIO("evbuffer: moves", "[evbuffer]") {
  GIVEN("a buffer with data, a callback and an observer") {
    evbuffer a;
    REQUIRE_FALSE(a.add(std::string(3000, 'm')));
    int a_calls = 0;
    a.add_cb([&](const buffer_change&) { ++a_calls; });
    change_log log;
    a.set_observer(log.observer());
    a.freeze(buffer_end::front);
    WHEN("it is move-constructed") {
      evbuffer b(std::move(a));
      THEN("the data moves; callbacks, observer and freeze stay with a") {
        REQUIRE(b.size() == 3000);
        REQUIRE(a.empty());
        REQUIRE(a_calls == 1);
        REQUIRE(log.changes.size() == 1);
        REQUIRE(same(log.changes[0], 3000, 0, 3000));
        REQUIRE_FALSE(b.frozen(buffer_end::front));
        REQUIRE(a.frozen(buffer_end::front));
        REQUIRE_FALSE(b.drain(10));
        REQUIRE(a_calls == 1);
        REQUIRE_FALSE(a.add("a"));
        REQUIRE(a_calls == 2);
      }
    }
    WHEN("it is move-assigned over a buffer with data") {
      evbuffer b;
      REQUIRE_FALSE(b.add("old"));
      std::vector<buffer_change> b_seen;
      b.add_cb([&](const buffer_change& c) { b_seen.push_back(c); });
      b = std::move(a);
      THEN("b's old bytes are replaced and both sides are told") {
        REQUIRE(contents(b) == std::string(3000, 'm'));
        REQUIRE(b_seen.size() == 1);
        REQUIRE(same(b_seen[0], 3, 3000, 3));
        REQUIRE(a_calls == 1);
        evbuffer& alias = b;
        b = std::move(alias);  // self-move keeps the data
        REQUIRE(b.size() == 3000);
      }
    }
  }
}

SCENARIO("evbuffer: segment waste stays under 12.5% for steady streams", "[evbuffer][memory]") {
  const std::size_t piece = GENERATE(std::size_t(64), std::size_t(1000), std::size_t(65536));
  INFO("piece " << piece);
  evbuffer b;
  const std::string chunk(piece, 'w');
  while (b.size() < (1u << 20)) REQUIRE_FALSE(b.add(chunk));
  const auto m = b.memory();
  REQUIRE(m.used == b.size());
  const double waste = double(m.allocated - m.used) / double(m.allocated);
  INFO("allocated " << m.allocated << " used " << m.used << " segments " << m.segments);
  REQUIRE(waste < 0.125);
  REQUIRE(m.segments < 200);
}

SCENARIO("evbuffer: add/drain loops reuse memory", "[evbuffer][memory]") {
  const std::size_t piece = GENERATE(std::size_t(64), std::size_t(4096), std::size_t(65536));
  evbuffer b;
  const std::string chunk(piece, 'z');
  REQUIRE_FALSE(b.add(chunk));
  REQUIRE_FALSE(b.drain(piece));
  const auto steady = b.memory();
  for (int i = 0; i < 1000; ++i) {
    REQUIRE_FALSE(b.add(chunk));
    REQUIRE_FALSE(b.drain(piece));
  }
  THEN("no segment is allocated in the loop") {
    REQUIRE(b.memory().allocated == steady.allocated);
    REQUIRE(b.memory().segments == steady.segments);
  }
  WHEN("the pattern spans segments (2.5 pieces in flight)") {
    evbuffer c;
    for (int i = 0; i < 3; ++i) REQUIRE_FALSE(c.add(chunk));
    for (int i = 0; i < 20; ++i) {
      REQUIRE_FALSE(c.add(chunk));
      REQUIRE_FALSE(c.drain(piece));
    }
    const auto before = c.memory().allocated;
    for (int i = 0; i < 200; ++i) {
      REQUIRE_FALSE(c.add(chunk));
      REQUIRE_FALSE(c.drain(piece));
    }
    THEN("the allocation stays bounded") {
      REQUIRE(c.memory().allocated <= before + 2 * (piece + 4096));
      REQUIRE(c.size() == 3 * piece);
    }
  }
  WHEN("the data moves through add_buffer into a buffer that drains it") {
    evbuffer src, dst;
    for (int i = 0; i < 1000; ++i) {
      REQUIRE_FALSE(src.add(chunk));
      REQUIRE_FALSE(dst.add_buffer(src));
      REQUIRE_FALSE(dst.drain(piece));
    }
    THEN("neither buffer piles up empty segments") {
      REQUIRE(src.memory().segments + dst.memory().segments <= 2);
      REQUIRE(src.memory().allocated + dst.memory().allocated <= 4 * (piece + 4096));
    }
  }
  THEN("shrink_to_fit releases the spare space") {
    b.shrink_to_fit();
    REQUIRE(b.memory().allocated == 0);
    REQUIRE_FALSE(b.add("after"));
    REQUIRE(contents(b) == "after");
  }
}

TEST_CASE("evbuffer models the buffer concepts", "[evbuffer]") {
  STATIC_REQUIRE(bufev::byte_buffer<evbuffer>);
  STATIC_REQUIRE(bufev::segmented_buffer<evbuffer>);
  STATIC_REQUIRE(bufev::freezable_buffer<evbuffer>);
  STATIC_REQUIRE(asio::is_const_buffer_sequence<evbuffer::const_buffers_type>::value);
  STATIC_REQUIRE(asio::is_mutable_buffer_sequence<evbuffer::mutable_buffers_type>::value);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<evbuffer>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<evbuffer>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<evbuffer>);
  STATIC_REQUIRE(sizeof(evbuffer::const_buffers_type) <= 3 * sizeof(void*));
}

// ---- the thread's segment cache and search across segments -------------------------------

TEST_CASE("evbuffer: a segment freed by one buffer is reused by another", "[evbuffer][memory][cache]") {
  const std::size_t piece = GENERATE(std::size_t(100), std::size_t(4000), std::size_t(65536));
  INFO("piece " << piece);
  const std::string chunk(piece, 'c');
  const void* first = nullptr;
  {
    evbuffer a;
    REQUIRE_FALSE(a.add(chunk));
    std::array<asio::const_buffer, 1> v{};
    REQUIRE(a.peek(1, v) == 1);
    first = v[0].data();
  }  // a's segment goes to this thread's cache
  const auto before = evbuffer::thread_cache_stats();
  REQUIRE(before.segments >= 1);
  evbuffer b;
  REQUIRE_FALSE(b.add(chunk));
  std::array<asio::const_buffer, 1> v{};
  REQUIRE(b.peek(1, v) == 1);
  CHECK(v[0].data() == first);
  const auto after = evbuffer::thread_cache_stats();
  CHECK(after.hits == before.hits + 1);
  CHECK(after.misses == before.misses);
  REQUIRE(contents(b) == chunk);
}

TEST_CASE("evbuffer: data moving between buffers allocates from the cache", "[evbuffer][memory][cache]") {
  const std::size_t piece = GENERATE(std::size_t(64), std::size_t(4096), std::size_t(65536));
  INFO("piece " << piece);
  const std::string chunk(piece, 'p');
  evbuffer src, dst;
  // A pipeline as a pair makes it: src's segments move to dst, which frees them.
  auto batch = [&] {
    for (std::size_t k = 0; k < 256 * 1024; k += piece) REQUIRE_FALSE(src.add(chunk));
    REQUIRE(src.remove_buffer(dst, src.size()) == 256 * 1024);
    REQUIRE_FALSE(dst.drain(dst.size()));
  };
  for (int i = 0; i < 3; ++i) batch();
  const auto before = evbuffer::thread_cache_stats();
  for (int i = 0; i < 20; ++i) batch();
  const auto after = evbuffer::thread_cache_stats();
  CHECK(after.misses == before.misses);  // no operator new in the steady state
  CHECK(after.hits > before.hits);
  CHECK(after.bytes <= 1024 * 1024);
}

TEST_CASE("evbuffer: the segment cache stays bounded and can be trimmed", "[evbuffer][memory][cache]") {
  {
    std::vector<evbuffer> many(40);
    const std::string chunk(100000, 'b');
    for (auto& b : many) {
      REQUIRE_FALSE(b.add(chunk));
      REQUIRE_FALSE(b.add(chunk));
    }
    std::string small(1000, 's');
    for (auto& b : many) REQUIRE_FALSE(b.add(small));
  }  // about 8 MiB freed at once
  auto s = evbuffer::thread_cache_stats();
  CHECK(s.bytes <= 1024 * 1024);
  CHECK(s.segments >= 1);
  {
    // Segments larger than the cached maximum are freed at once.
    evbuffer big;
    REQUIRE_FALSE(big.add(std::string(1 << 20, 'x')));
  }
  CHECK(evbuffer::thread_cache_stats().bytes <= 1024 * 1024);
  evbuffer::trim_thread_cache();
  s = evbuffer::thread_cache_stats();
  CHECK(s.bytes == 0);
  CHECK(s.segments == 0);
  // A full cache of one size makes room for the sizes freed now.
  {
    std::vector<evbuffer> many(200);
    for (auto& b : many) REQUIRE_FALSE(b.add(std::string(8000, 'e')));
  }
  REQUIRE(evbuffer::thread_cache_stats().bytes > 1024 * 1024 - 16384);
  const void* first = nullptr;
  {
    evbuffer a;
    REQUIRE_FALSE(a.add(std::string(200000, 'f')));
    std::array<asio::const_buffer, 1> v{};
    REQUIRE(a.peek(1, v) == 1);
    first = v[0].data();
  }
  evbuffer b;
  REQUIRE_FALSE(b.add(std::string(200000, 'f')));
  std::array<asio::const_buffer, 1> v{};
  REQUIRE(b.peek(1, v) == 1);
  CHECK(v[0].data() == first);
  CHECK(evbuffer::thread_cache_stats().bytes <= 1024 * 1024);
}

TEST_CASE("evbuffer: each thread has its own segment cache, freed at exit", "[evbuffer][memory][cache]") {
  evbuffer::trim_thread_cache();
  const auto main_before = evbuffer::thread_cache_stats();
  evbuffer made_there;
  bufev::segment_cache_stats there{};
  bool added = true;
  std::thread t([&] {  // no Catch assertions off the main thread
    {
      evbuffer x;
      added = !x.add(std::string(50000, 't'));
    }
    there = evbuffer::thread_cache_stats();
    added = added && !made_there.add(std::string(30000, 'm'));
  });
  t.join();  // the thread's cache is freed now (LeakSanitizer would report it)
  REQUIRE(added);
  CHECK(there.segments == 1);
  CHECK(there.misses >= 1);
  // Nothing of that went to this thread's cache.
  const auto main_after = evbuffer::thread_cache_stats();
  CHECK(main_after.segments == main_before.segments);
  CHECK(main_after.misses == main_before.misses);
  // A segment allocated on the other thread is freed into this thread's cache.
  REQUIRE(contents(made_there) == std::string(30000, 'm'));
  made_there = evbuffer();
  CHECK(evbuffer::thread_cache_stats().segments == main_before.segments + 1);
}

TEST_CASE("evbuffer: search across segment boundaries matches std::string::find", "[evbuffer][search]") {
  // Reference segments keep every piece in a segment of its own.
  const std::vector<std::string> pieces = {"ab", "a", "aab", "ba", "b", "aaaab", "abab", "a", "bab", "aa"};
  evbuffer b;
  std::string all;
  for (const auto& p : pieces) {
    REQUIRE_FALSE(b.add_reference(p.data(), p.size()));
    all += p;
  }
  REQUIRE(b.segment_count() == pieces.size());
  const std::vector<std::string> needles = {"a",   "b",    "ab",   "ba",     "aab",  "abab", "aaaa",
                                            "bb",  "babb", "aaab", "abaab",  "baaaa", "aabaabab",
                                            "aaa", "c",    "bac",  "baaaab", "aaba"};
  for (const auto& n : needles) {
    for (std::size_t start = 0; start <= all.size(); ++start) {
      INFO("needle " << n << " start " << start);
      const std::size_t want = all.find(n, start);
      REQUIRE(b.search(n, start) == (want == std::string::npos ? evbuffer::npos : want));
      for (std::size_t end = start; end <= all.size(); end += 3) {
        const std::size_t r = want != std::string::npos && want + n.size() <= end ? want : evbuffer::npos;
        REQUIRE(b.search_range(n.data(), n.size(), start, end) == r);
      }
    }
  }
}
