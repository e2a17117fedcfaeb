// Change-callback bookkeeping of bufev::evbuffer (libevent's evbuffer_add_cb and
// evbuffer_defer_callbacks). Kept out of line so a buffer without callbacks pays one
// null pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <asio/any_io_executor.hpp>

#include "bufev/buffers/concepts.hpp"

namespace bufev {
class evbuffer;
}

namespace bufev::detail {

struct evbuffer_cb_entry {
  std::uint64_t id = 0;
  std::function<void(evbuffer&, const buffer_change&)> fn;
  bool enabled = true;
  bool removed = false;
};

/// State shared with handlers posted for deferred delivery; `owner` is cleared when
/// the buffer is destroyed so a late handler does nothing.
struct evbuffer_deferred_state {
  evbuffer* owner = nullptr;
  buffer_change pending{};
  bool has_pending = false;
  bool scheduled = false;
};

struct evbuffer_callbacks {
  std::vector<std::shared_ptr<evbuffer_cb_entry>> list;
  std::uint64_t next_id = 1;
  unsigned dispatching = 0;
  bool need_compact = false;
  asio::any_io_executor executor;  ///< empty: callbacks run inline
  std::shared_ptr<evbuffer_deferred_state> deferred;

  void compact() {
    std::erase_if(list, [](const auto& e) { return e->removed; });
    need_compact = false;
  }
};

}  // namespace bufev::detail
