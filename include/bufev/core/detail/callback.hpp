// A compact copyable callable wrapper for run-time callbacks (setcb). Every
// connection carries four of them, so each is 16 bytes (std::function is 32):
// a pointer to a static table of operations and one pointer of storage. A
// trivially copyable callable of pointer size (a captureless lambda, a function
// pointer, a lambda capturing `this`) is stored inline; anything else on the heap.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace bufev::detail {

template <class Sig>
class callback;

// Callables that can be empty: they make an empty callback.
template <class T>
inline constexpr bool nullable_callable_v = std::is_pointer_v<T> || std::is_member_pointer_v<T>;
template <class Sig>
inline constexpr bool nullable_callable_v<std::function<Sig>> = true;

template <class R, class... Args>
class callback<R(Args...)> {
  union storage {
    void* heap;
    alignas(void*) unsigned char bytes[sizeof(void*)];
  };
  struct operations {
    R (*invoke)(const storage&, Args...);
    void (*clone)(storage&, const storage&);  // null: the storage is copied bitwise
    void (*destroy)(storage&) noexcept;       // null: nothing to free
  };

  template <class F>
  static constexpr bool stored_inline = sizeof(F) <= sizeof(storage) && alignof(F) <= alignof(storage) &&
                                        std::is_trivially_copyable_v<F>;

  template <class F>
  static F& target(const storage& s) noexcept {
    if constexpr (stored_inline<F>)
      return *std::launder(reinterpret_cast<F*>(const_cast<unsigned char*>(s.bytes)));
    else
      return *static_cast<F*>(s.heap);
  }

  template <class F>
  static constexpr operations ops_for{
      [](const storage& s, Args... args) -> R { return std::invoke(target<F>(s), std::forward<Args>(args)...); },
      stored_inline<F> ? nullptr : +[](storage& dst, const storage& src) { dst.heap = new F(target<F>(src)); },
      stored_inline<F> ? nullptr : +[](storage& s) noexcept { delete static_cast<F*>(s.heap); },
  };

 public:
  callback() noexcept = default;
  callback(std::nullptr_t) noexcept {}

  /// Any callable with this signature; a null function pointer or an empty
  /// std::function makes an empty callback.
  template <class F, class D = std::decay_t<F>>
    requires(!std::is_same_v<D, callback> && !std::is_same_v<D, std::nullptr_t> &&
             std::is_invocable_r_v<R, D&, Args...>)
  callback(F&& f) {
    if constexpr (nullable_callable_v<D>) {
      if (!f) return;
    }
    if constexpr (stored_inline<D>) {
      ::new (static_cast<void*>(s_.bytes)) D(std::forward<F>(f));
    } else {
      s_.heap = new D(std::forward<F>(f));
    }
    ops_ = &ops_for<D>;
  }

  callback(const callback& o) : ops_(o.ops_) {
    if (ops_ && ops_->clone) ops_->clone(s_, o.s_);
    else s_ = o.s_;
  }
  callback(callback&& o) noexcept : ops_(std::exchange(o.ops_, nullptr)), s_(o.s_) {}
  callback& operator=(const callback& o) {
    if (this != &o) callback(o).swap(*this);
    return *this;
  }
  callback& operator=(callback&& o) noexcept {
    callback(std::move(o)).swap(*this);
    return *this;
  }
  callback& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  template <class F>
    requires std::is_constructible_v<callback, F&&>
  callback& operator=(F&& f) {
    callback(std::forward<F>(f)).swap(*this);
    return *this;
  }
  ~callback() { reset(); }

  void swap(callback& o) noexcept {
    std::swap(ops_, o.ops_);
    std::swap(s_, o.s_);
  }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  friend bool operator==(const callback& c, std::nullptr_t) noexcept { return !c; }

  /// Calls the callable; the callback must not be empty.
  R operator()(Args... args) const { return ops_->invoke(s_, std::forward<Args>(args)...); }

 private:
  void reset() noexcept {
    if (ops_ && ops_->destroy) ops_->destroy(s_);
    ops_ = nullptr;
  }

  const operations* ops_ = nullptr;
  storage s_{};
};

}  // namespace bufev::detail
