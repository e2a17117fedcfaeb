// Callbacks, two ways: a handler object whose optional members are found by
// concepts and called directly, or libevent-style callables set at run time.
#pragma once

#include <functional>
#include <system_error>
#include <type_traits>
#include <utility>

#include <bufev/core/detail/callback.hpp>
#include <bufev/events.hpp>
#include <bufev/policies/policy_set.hpp>

namespace bufev {

/// Marker for the default handler: callbacks set at run time with `setcb`.
struct dynamic_callbacks {};

/// Selects the handler type of a bufferevent. `H` may define any of
///   void on_read(Bev&);  void on_write(Bev&);
///   void on_event(Bev&, bufev::events, std::error_code);
///   void on_writability(Bev&, bool writable);
/// (templates such as `on_read(auto& bev)` are fine).
template <class H>
struct handler {
  using policy_category = detail::handler_category;
  using type = H;
};

template <class H, class Bev>
concept read_handler = requires(H& h, Bev& b) { h.on_read(b); };
template <class H, class Bev>
concept write_handler = requires(H& h, Bev& b) { h.on_write(b); };
template <class H, class Bev>
concept event_handler = requires(H& h, Bev& b, events e, std::error_code ec) { h.on_event(b, e, ec); };
template <class H, class Bev>
concept writability_handler = requires(H& h, Bev& b, bool w) { h.on_writability(b, w); };

namespace detail {

// A member named X in H makes the lookup of X in probe<H> ambiguous; that is how
// a member with the right name but the wrong signature is told apart from none.
struct probe_on_read { void on_read(); };
struct probe_on_write { void on_write(); };
struct probe_on_event { void on_event(); };
struct probe_on_writability { void on_writability(); };
template <class H> struct probe_read : H, probe_on_read {};
template <class H> struct probe_write : H, probe_on_write {};
template <class H> struct probe_event : H, probe_on_event {};
template <class H> struct probe_writability : H, probe_on_writability {};

template <class H>
concept probeable = std::is_class_v<H> && !std::is_final_v<H>;

template <class H>
concept declares_on_read = probeable<H> && !requires { &probe_read<H>::on_read; };
template <class H>
concept declares_on_write = probeable<H> && !requires { &probe_write<H>::on_write; };
template <class H>
concept declares_on_event = probeable<H> && !requires { &probe_event<H>::on_event; };
template <class H>
concept declares_on_writability =
    probeable<H> && !requires { &probe_writability<H>::on_writability; };

}  // namespace detail

/// A handler type usable with bufferevent `Bev`: it has at least one callback
/// member, and every callback member it declares has the right signature.
template <class H, class Bev>
concept bufferevent_handler =
    (read_handler<H, Bev> || write_handler<H, Bev> || event_handler<H, Bev> ||
     writability_handler<H, Bev>) &&
    (!detail::declares_on_read<H> || read_handler<H, Bev>) &&
    (!detail::declares_on_write<H> || write_handler<H, Bev>) &&
    (!detail::declares_on_event<H> || event_handler<H, Bev>) &&
    (!detail::declares_on_writability<H> || writability_handler<H, Bev>);

namespace detail {

/// Spells out which rule a handler type breaks (one static_assert per rule, so
/// the compiler names the member at fault).
template <class H, class Bev>
constexpr bool check_handler() {
  static_assert(!declares_on_read<H> || read_handler<H, Bev>,
                "bufev handler: on_read must be callable as on_read(Bev&)");
  static_assert(!declares_on_write<H> || write_handler<H, Bev>,
                "bufev handler: on_write must be callable as on_write(Bev&)");
  static_assert(!declares_on_event<H> || event_handler<H, Bev>,
                "bufev handler: on_event must be callable as "
                "on_event(Bev&, bufev::events, std::error_code)");
  static_assert(!declares_on_writability<H> || writability_handler<H, Bev>,
                "bufev handler: on_writability must be callable as on_writability(Bev&, bool)");
  static_assert(read_handler<H, Bev> || write_handler<H, Bev> || event_handler<H, Bev> ||
                    writability_handler<H, Bev>,
                "bufev handler: the type has none of on_read(Bev&), on_write(Bev&), "
                "on_event(Bev&, events, std::error_code), on_writability(Bev&, bool); "
                "check their spelling");
  return true;
}

/// Storage for run-time callbacks; it is itself a handler, so dispatch is the
/// same code path for both styles. An empty callback is simply not called, which
/// is also how clearing a callback suppresses a pending deferred call.
template <class Bev>
struct dynamic_callback_set {
  // Compact wrappers (16 bytes each, not std::function's 32): every connection has four.
  using data_cb = callback<void(Bev&)>;
  using event_cb = callback<void(Bev&, events, std::error_code)>;
  using writability_cb = callback<void(Bev&, bool)>;

  data_cb read;
  data_cb write;
  event_cb event;
  writability_cb writability;

  void on_read(Bev& b) { if (read) read(b); }
  void on_write(Bev& b) { if (write) write(b); }
  void on_event(Bev& b, events e, std::error_code ec) { if (event) event(b, e, ec); }
  void on_writability(Bev& b, bool w) { if (writability) writability(b, w); }
  void clear() noexcept {
    read = nullptr;
    write = nullptr;
    event = nullptr;
    writability = nullptr;
  }
};

template <class H, class Bev>
struct handler_storage {
  using type = H;
};
template <class Bev>
struct handler_storage<dynamic_callbacks, Bev> {
  using type = dynamic_callback_set<Bev>;
};

}  // namespace detail
}  // namespace bufev
