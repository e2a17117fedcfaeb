// The "transport" policy axis: what moves bytes between a bufferevent's buffers
// and the outside world (a pair partner, a socket, an underlying bufferevent).
#pragma once

#include <concepts>

#include <bufev/events.hpp>

namespace bufev {

/// A transport for bufferevent type `Bev`. The core calls
/// - `start_reading/stop_reading` when reading becomes active or inactive
///   (enabled by the user and not suspended by a watermark, rate limit, ...);
/// - `start_writing/stop_writing` when writing becomes active or inactive
///   (enabled, not suspended, and output non-empty);
/// - `flush(bev, dir, mode)`: 1 if it processed anything, 0 if not, -1 on error;
/// - `close(bev)` once, when the bufferevent is closed or freed.
/// The transport reports back through the core's transport interface
/// (`transport_read_done`, `transport_wrote`, `transport_event`), to which
/// `basic_bufferevent` grants it access.
template <class T, class Bev>
concept transport_for = requires(T& t, Bev& b, direction d, flush_mode m) {
  t.start_reading(b);
  t.stop_reading(b);
  t.start_writing(b);
  t.stop_writing(b);
  { t.flush(b, d, m) } -> std::convertible_to<int>;
  t.close(b);
};

}  // namespace bufev
