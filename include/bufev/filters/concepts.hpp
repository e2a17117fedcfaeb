// The filter concept: libevent's bufferevent_filter_cb contract with types.
// A filter is a stateful object with an input transform (lower input -> this
// input) and an output transform (this output -> lower output).
#pragma once

#include <concepts>
#include <cstddef>
#include <system_error>
#include <type_traits>
#include <utility>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/evbuffer.hpp>
#include <bufev/error.hpp>
#include <bufev/events.hpp>

namespace bufev {

/// A filter's input transform from `Src` (the lower bufferevent's input) to
/// `Dst` (the filter bufferevent's input):
///   filter_result filter_input(Src& src, Dst& dst, std::size_t dst_limit, flush_mode mode);
/// It consumes from the front of `src` and appends at most `dst_limit` bytes to
/// `dst` (`bufev::unlimited` in flush/finished mode or without a high
/// watermark). `ok`: progress was made or nothing was left to do; `need_more`:
/// it cannot go on before more input arrives (the transport stops without a
/// callback); `error`: the stream is broken (event(reading|error)).
template <class F, class Src, class Dst>
concept input_filter = byte_buffer<Src> && byte_buffer<Dst> &&
    requires(F& f, Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
      { f.filter_input(src, dst, limit, mode) } -> std::same_as<filter_result>;
    };

/// A filter's output transform from `Src` (the filter bufferevent's output) to
/// `Dst` (the lower bufferevent's output), with the same contract. In
/// `finished` mode it writes its trailer (a compression end, a close_notify).
template <class F, class Src, class Dst>
concept output_filter = byte_buffer<Src> && byte_buffer<Dst> &&
    requires(F& f, Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
      { f.filter_output(src, dst, limit, mode) } -> std::same_as<filter_result>;
    };

/// A filter over buffers of type `B` in both directions (all evbuffer by default).
///
/// Optional members, detected and used by the filter transport when present
/// (a stateful protocol such as TLS needs them; simple filters skip them):
/// - `std::error_code error() const`: why the last call returned `error`
///   (otherwise the event carries `errc::filter_failed`);
/// - `bool output_pending() const`: the filter has output to produce without
///   new data (a handshake message, a close_notify): `filter_output` runs even
///   when the source is empty;
/// - `bool input_pending() const`: the filter holds decoded data inside (TLS
///   records already read): `filter_input` runs even when the source is empty;
/// - `bool needs_input() const`: the filter must read even while the user has
///   reading disabled (a handshake): the lower bufferevent keeps reading and
///   `filter_input` runs;
/// - `events on_lower_event(events what, std::error_code& ec)`: sees every event
///   of the lower bufferevent first and returns what to forward (`connected`
///   of the socket starts a TLS handshake and is held back until it is done;
///   an EOF without close_notify becomes an error);
/// - `std::pair<events, std::error_code> take_events()`: events the filter
///   raises itself (e.g. `connected` once its handshake is done), polled after
///   every call of a transform.
template <class F, class B = evbuffer>
concept bufferevent_filter = input_filter<F, B, B> && output_filter<F, B, B>;

namespace detail {

template <class F>
std::error_code filter_error(const F& f) {
  if constexpr (requires { { f.error() } -> std::convertible_to<std::error_code>; }) {
    if (std::error_code ec = f.error()) return ec;
  }
  return make_error_code(errc::filter_failed);
}
template <class F>
bool filter_output_pending(const F& f) {
  if constexpr (requires { { f.output_pending() } -> std::convertible_to<bool>; }) return f.output_pending();
  else return false;
}
template <class F>
bool filter_input_pending(const F& f) {
  if constexpr (requires { { f.input_pending() } -> std::convertible_to<bool>; }) return f.input_pending();
  else return false;
}
template <class F>
bool filter_needs_input(const F& f) {
  if constexpr (requires { { f.needs_input() } -> std::convertible_to<bool>; }) return f.needs_input();
  else return false;
}
template <class F>
events filter_on_lower_event(F& f, events what, std::error_code& ec) {
  if constexpr (requires { { f.on_lower_event(what, ec) } -> std::convertible_to<events>; })
    return f.on_lower_event(what, ec);
  else return what;
}
template <class F>
std::pair<events, std::error_code> filter_take_events(F& f) {
  if constexpr (requires { { f.take_events() } -> std::convertible_to<std::pair<events, std::error_code>>; })
    return f.take_events();
  else return {events::none, {}};
}

}  // namespace detail

/// A filter made of two callables, for simple cases:
///   filter_result in(Src&, Dst&, std::size_t dst_limit, flush_mode)
///   filter_result out(Src&, Dst&, std::size_t dst_limit, flush_mode)
/// Generic lambdas (`auto& src, auto& dst`) work with any buffer type.
template <class In, class Out>
class callable_filter {
 public:
  callable_filter(In in, Out out) : in_(std::move(in)), out_(std::move(out)) {}

  template <class Src, class Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode mode)
    requires std::is_invocable_r_v<filter_result, In&, Src&, Dst&, std::size_t, flush_mode>
  {
    return in_(src, dst, limit, mode);
  }
  template <class Src, class Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode mode)
    requires std::is_invocable_r_v<filter_result, Out&, Src&, Dst&, std::size_t, flush_mode>
  {
    return out_(src, dst, limit, mode);
  }

  In& input_function() noexcept { return in_; }
  Out& output_function() noexcept { return out_; }

 private:
  [[no_unique_address]] In in_;
  [[no_unique_address]] Out out_;
};

/// Makes a filter from an input and an output callable (libevent's
/// `bufferevent_filter_new(underlying, input_cb, output_cb, ...)` arguments).
template <class In, class Out>
callable_filter<std::decay_t<In>, std::decay_t<Out>> make_filter(In&& in, Out&& out) {
  return {std::forward<In>(in), std::forward<Out>(out)};
}

}  // namespace bufev
