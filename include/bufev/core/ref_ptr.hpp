// Ownership of bufferevents. A bufferevent lives on the heap with an intrusive
// reference count (as in libevent): the user's bufferevent_ptr owns it, and
// operations in flight keep it alive, so it can be destroyed at any time, also
// from inside its own callbacks.
#pragma once

#include <cstddef>
#include <utility>

namespace bufev {
namespace detail {

/// Keeps an object alive (no close on release). Used by handlers in flight.
template <class T>
class ref_ptr {
 public:
  ref_ptr() noexcept = default;
  explicit ref_ptr(T* p) noexcept : p_(p) {
    if (p_) p_->add_ref();
  }
  ref_ptr(const ref_ptr& o) noexcept : ref_ptr(o.p_) {}
  ref_ptr(ref_ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ref_ptr& operator=(ref_ptr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~ref_ptr() {
    if (p_) p_->release();
  }
  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

}  // namespace detail

/// Owning handle to a bufferevent (move-only). Destroying or resetting it frees
/// the bufferevent as `bufferevent_free` does: it is closed at once (no callback
/// runs afterwards, pending output is discarded) and its memory goes when the
/// last operation in flight has finished.
template <class Bev>
class bufferevent_ptr {
 public:
  using element_type = Bev;

  bufferevent_ptr() noexcept = default;
  bufferevent_ptr(std::nullptr_t) noexcept {}
  /// Adopts one reference (the one `Bev::create` returns).
  explicit bufferevent_ptr(Bev* adopted) noexcept : p_(adopted) {}
  bufferevent_ptr(bufferevent_ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  bufferevent_ptr& operator=(bufferevent_ptr&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  bufferevent_ptr(const bufferevent_ptr&) = delete;
  bufferevent_ptr& operator=(const bufferevent_ptr&) = delete;
  ~bufferevent_ptr() { reset(); }

  /// Closes and releases the bufferevent.
  void reset() noexcept {
    if (Bev* p = std::exchange(p_, nullptr)) {
      p->close();
      p->release();
    }
  }
  /// Hands the bufferevent over to a graceful close (`Bev::close_gracefully`):
  /// queued bytes are still sent, then it closes and frees itself.
  void reset_gracefully() {
    if (Bev* p = std::exchange(p_, nullptr)) {
      p->close_gracefully();
      p->release();
    }
  }
  Bev* get() const noexcept { return p_; }
  Bev* operator->() const noexcept { return p_; }
  Bev& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  friend bool operator==(const bufferevent_ptr& a, const bufferevent_ptr& b) noexcept {
    return a.p_ == b.p_;
  }

 private:
  Bev* p_ = nullptr;
};

}  // namespace bufev
