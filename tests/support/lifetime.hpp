// Watching a bufferevent the test no longer owns (after reset_gracefully).
#pragma once

#include <memory>
#include <system_error>

#include <bufev/events.hpp>

namespace bufev::test {

/// The token lives in the bufferevent's event callback, so it expires when the
/// bufferevent is freed; the callback counts calls (none may come after a
/// graceful close). attach() replaces the bufferevent's callbacks.
struct lifetime_probe {
  std::weak_ptr<int> token;
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  template <class Bev>
  void attach(Bev& b) {
    auto t = std::make_shared<int>(0);
    token = t;
    b.setcb(nullptr, nullptr, [t, c = calls](auto&, events, std::error_code) { ++*c; });
  }
  bool freed() const { return token.expired(); }
};

}  // namespace bufev::test
