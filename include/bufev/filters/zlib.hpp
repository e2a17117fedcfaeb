// zlib compression as a bufferevent filter: the output is deflated, the input
// inflated, in raw, zlib or gzip framing (zlib1g-dev). Not part of the
// umbrella header: include <bufev/filters/zlib.hpp> and link ZLIB::ZLIB.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include <asio/buffer.hpp>

#include <bufev/buffers/concepts.hpp>
#include <bufev/core/detail/move_bytes.hpp>
#include <bufev/events.hpp>

namespace bufev::filters {

/// Errors of the zlib filter. The negative values are zlib's own return codes.
enum class zlib_errc {
  stream_error = Z_STREAM_ERROR,    ///< bad parameters or inconsistent stream state
  data_error = Z_DATA_ERROR,        ///< corrupt or invalid compressed data
  memory_error = Z_MEM_ERROR,       ///< zlib ran out of memory
  buffer_error = Z_BUF_ERROR,       ///< no progress possible
  version_error = Z_VERSION_ERROR,  ///< incompatible zlib library
  need_dictionary = 100,            ///< the stream needs a preset dictionary
  ratio_exceeded,                   ///< output/input above the configured ratio (zip bomb guard)
  truncated_stream,                 ///< the input ended inside a compressed stream
  output_full,                      ///< the destination buffer refused the output
};

namespace detail {
class zlib_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "zlib"; }
  std::string message(int ev) const override {
    switch (static_cast<zlib_errc>(ev)) {
      case zlib_errc::stream_error: return "zlib stream error (bad parameters or state)";
      case zlib_errc::data_error: return "invalid or corrupt compressed data";
      case zlib_errc::memory_error: return "zlib out of memory";
      case zlib_errc::buffer_error: return "zlib could not make progress";
      case zlib_errc::version_error: return "incompatible zlib version";
      case zlib_errc::need_dictionary: return "compressed stream needs a preset dictionary";
      case zlib_errc::ratio_exceeded: return "decompression ratio limit exceeded";
      case zlib_errc::truncated_stream: return "compressed stream truncated";
      case zlib_errc::output_full: return "destination buffer full";
    }
    return "unknown zlib error";
  }
};
}  // namespace detail

/// The category of zlib_errc ("zlib").
inline const std::error_category& zlib_category() noexcept {
  static const detail::zlib_category_impl cat;
  return cat;
}
inline std::error_code make_error_code(zlib_errc e) noexcept { return {static_cast<int>(e), zlib_category()}; }

/// How a compressed stream is framed.
enum class zlib_format {
  raw,       ///< bare deflate data (RFC 1951)
  zlib,      ///< zlib header and Adler-32 trailer (RFC 1950)
  gzip,      ///< gzip header and CRC-32 trailer (RFC 1952), what `gzip -d` reads
  automatic  ///< inflate only: zlib or gzip, detected from the header (deflate writes zlib)
};

/// Options of the zlib filter.
struct zlib_options {
  zlib_format format = zlib_format::zlib;
  int level = Z_DEFAULT_COMPRESSION;  ///< 0 (store) .. 9 (best), or -1 for zlib's default (6)
  int window_bits = 15;               ///< 9..15: the history window is 2^window_bits bytes
  int mem_level = 8;                  ///< 1..9: deflate's internal state size
  int strategy = Z_DEFAULT_STRATEGY;
  /// Zip-bomb guard for the input side: error (zlib_errc::ratio_exceeded) once a
  /// stream's output exceeds `max_ratio` times its input, after the first
  /// `ratio_grace` output bytes. 0 disables the check.
  double max_ratio = 0;
  std::size_t ratio_grace = 64 * 1024;
  /// End every normal output pass with Z_SYNC_FLUSH, so what the user wrote can
  /// be decoded at once by the peer (interactive protocols); costs ratio.
  bool sync_flush = false;
  bool compress_output = true;   ///< false: the output passes unchanged
  bool decompress_input = true;  ///< false: the input passes unchanged
  /// Output produced per zlib call at most (the destination's prepare size).
  std::size_t chunk = 64 * 1024;
};

/// Deflates the output and inflates the input. `flush_mode::flush` on the
/// output is Z_SYNC_FLUSH, `finished` is Z_FINISH (the stream's trailer; a
/// later write starts a new stream, which the inflating side reads as a
/// concatenated stream, as gzip does). On the input, the end of the lower
/// bufferevent's input (`finished`) inside a stream is `truncated_stream`.
class zlib {
 public:
  zlib() = default;
  explicit zlib(zlib_options o) : opts_(o) {}

  const zlib_options& options() const noexcept { return opts_; }
  /// Why the last call returned error.
  std::error_code error() const noexcept { return error_; }
  /// Totals of the current deflate/inflate streams (zlib's total_in/total_out).
  std::size_t deflate_total_in() const noexcept { return def_ ? def_->z.total_in : 0; }
  std::size_t deflate_total_out() const noexcept { return def_ ? def_->z.total_out : 0; }

  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    if (!opts_.compress_output) return pass(src, dst, limit);
    if (!def_ && !init_deflate()) return filter_result::error;
    stream& s = *def_;
    if (src.empty() && !s.started) return filter_result::ok;  // nothing to flush or finish
    int flush = Z_NO_FLUSH;
    if (mode == flush_mode::finished) flush = Z_FINISH;
    else if (mode == flush_mode::flush || opts_.sync_flush) flush = Z_SYNC_FLUSH;
    if (!src.empty()) s.started = true;
    const pump_result r = pump(s.z, src, dst, limit, flush, [](z_stream& z, int f) { return ::deflate(&z, f); });
    if (r.error) return fail(r.error);
    if (r.stream_end) {  // trailer written: the next byte starts a new stream
      ::deflateReset(&s.z);
      s.started = false;
    }
    return filter_result::ok;
  }

  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    if (!opts_.decompress_input) return pass(src, dst, limit);
    if (!inf_ && !init_inflate()) return filter_result::error;
    stream& s = *inf_;
    std::size_t produced = 0;
    // Loops over concatenated streams (gzip members) in one call.
    while (!src.empty() && produced < limit) {
      s.started = true;
      const pump_result r = pump(s.z, src, dst, limit - produced, Z_NO_FLUSH,
                                 [this](z_stream& z, int f) { return inflate_step(z, f); });
      produced += r.produced;
      if (r.error) return fail(r.error);
      if (!r.stream_end) break;
      ::inflateReset(&s.z);
      s.started = false;
    }
    if (mode == flush_mode::finished && s.started && src.empty() && produced < limit) {
      // The input ended: anything but a complete stream is an error, never a hang.
      return fail(make_error_code(zlib_errc::truncated_stream));
    }
    return filter_result::ok;
  }

 private:
  struct stream {
    z_stream z{};
    bool deflating = false;
    bool started = false;  // bytes of the current stream were consumed
    ~stream() {
      if (deflating) ::deflateEnd(&z);
      else ::inflateEnd(&z);
    }
  };

  struct pump_result {
    std::size_t consumed = 0;
    std::size_t produced = 0;
    bool stream_end = false;
    std::error_code error;
  };

  int deflate_wbits() const noexcept {
    const int wb = std::clamp(opts_.window_bits, 9, 15);
    switch (opts_.format) {
      case zlib_format::raw: return -wb;
      case zlib_format::zlib: return wb;
      case zlib_format::gzip: return wb + 16;
      case zlib_format::automatic: return wb;
    }
    return wb;
  }

  bool init_deflate() {
    auto s = std::make_unique<stream>();
    const int rc = ::deflateInit2(&s->z, opts_.level, Z_DEFLATED, deflate_wbits(), opts_.mem_level, opts_.strategy);
    if (rc != Z_OK) {
      fail(code_of(rc));
      return false;
    }
    s->deflating = true;
    def_ = std::move(s);
    return true;
  }
  bool init_inflate() {
    auto s = std::make_unique<stream>();
    // Window 15 reads what a deflater with any smaller window wrote.
    int wb = 15;
    if (opts_.format == zlib_format::raw) wb = -15;
    else if (opts_.format == zlib_format::gzip) wb = 15 + 16;
    else if (opts_.format == zlib_format::automatic) wb = 15 + 32;
    const int rc = ::inflateInit2(&s->z, wb);
    if (rc != Z_OK) {
      fail(code_of(rc));
      return false;
    }
    inf_ = std::move(s);
    return true;
  }

  int inflate_step(z_stream& z, int flush) {
    const int rc = ::inflate(&z, flush);
    if (rc == Z_NEED_DICT) return static_cast<int>(zlib_errc::need_dictionary);
    if (opts_.max_ratio > 0 && z.total_out > opts_.ratio_grace &&
        static_cast<double>(z.total_out) > opts_.max_ratio * static_cast<double>(z.total_in))
      return static_cast<int>(zlib_errc::ratio_exceeded);
    return rc;
  }

  static std::error_code code_of(int rc) noexcept {
    return make_error_code(static_cast<zlib_errc>(rc));
  }

  filter_result fail(std::error_code ec) noexcept {
    error_ = ec;
    return filter_result::error;
  }

  template <class Src, class Dst>
  filter_result pass(Src& src, Dst& dst, std::size_t limit) {
    const std::size_t n = std::min(src.size(), limit);
    if (n != 0 && bufev::detail::move_bytes(src, dst, n) == 0) return fail(make_error_code(zlib_errc::output_full));
    return filter_result::ok;
  }

  // Feeds src (every extent of src.data()) through `step` into space prepared in
  // dst, at most `limit` output bytes; `final_flush` goes with the last input.
  template <class Src, class Dst, class Step>
  pump_result pump(z_stream& z, Src& src, Dst& dst, std::size_t limit, int final_flush, Step&& step) {
    pump_result r;
    {
      const auto seq = src.data();
      auto it = asio::buffer_sequence_begin(seq);
      const auto end = asio::buffer_sequence_end(seq);
      asio::const_buffer in;
      auto refill = [&] {
        while (in.size() == 0 && it != end) in = *it++;
      };
      bool stop = false;
      while (!stop && r.produced < limit) {
        const std::size_t want = std::min(limit - r.produced, std::max<std::size_t>(opts_.chunk, 64));
        std::size_t written = 0;
        try {
          const auto out = dst.prepare(want);
          auto oit = asio::buffer_sequence_begin(out);
          const auto oend = asio::buffer_sequence_end(out);
          for (; !stop && oit != oend; ++oit) {
            asio::mutable_buffer ob = *oit;
            while (ob.size() != 0) {
              refill();
              const uInt ain = static_cast<uInt>(std::min<std::size_t>(in.size(), UINT_MAX));
              const uInt aout = static_cast<uInt>(std::min<std::size_t>(ob.size(), UINT_MAX));
              const bool last_in = it == end && ain == in.size();
              z.next_in = static_cast<Bytef*>(const_cast<void*>(in.data()));
              z.avail_in = ain;
              z.next_out = static_cast<Bytef*>(ob.data());
              z.avail_out = aout;
              const int rc = step(z, last_in ? final_flush : Z_NO_FLUSH);
              const std::size_t used = ain - z.avail_in;
              const std::size_t made = aout - z.avail_out;
              in += used;
              ob += made;
              written += made;
              r.consumed += used;
              if (rc == Z_STREAM_END) {
                r.stream_end = true;
                stop = true;
                break;
              }
              if (rc == Z_BUF_ERROR) {  // nothing more to do with this input
                stop = true;
                break;
              }
              if (rc != Z_OK) {
                r.error = code_of(rc);
                stop = true;
                break;
              }
              if (z.avail_out == 0) continue;  // this extent is full
              // Space left: zlib took all the input it was given (and finished
              // the flush if one was asked for).
              refill();
              if (in.size() == 0) {
                stop = true;
                break;
              }
            }
          }
        } catch (const std::bad_alloc&) {
          r.error = make_error_code(zlib_errc::memory_error);
          stop = true;
        } catch (const std::exception&) {  // length_error, frozen, full fixed buffer
          r.error = make_error_code(zlib_errc::output_full);
          stop = true;
        }
        dst.commit(written);
        r.produced += written;
        if (written == 0) break;
      }
    }
    (void)src.drain(r.consumed);
    return r;
  }

  zlib_options opts_{};
  std::unique_ptr<stream> def_;
  std::unique_ptr<stream> inf_;
  std::error_code error_;
};

}  // namespace bufev::filters

template <>
struct std::is_error_code_enum<bufev::filters::zlib_errc> : std::true_type {};
