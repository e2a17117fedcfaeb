// Compile-time filter stacks: N filters over a bufferevent are one concrete,
// nested type (like asio::ssl::stream<tcp::socket>), written bottom-up:
//
//   auto top = std::move(lower) | filters::zlib{} | filters::length_prefix{};
//   auto top = make_stack(std::move(lower), filters::zlib{}, filters::length_prefix{});
//
// `a | f` puts filter f on top of bufferevent a: bytes from the wire go up
// through a, then f; bytes the user writes go down through f, then a.
#pragma once

#include <type_traits>
#include <utility>

#include <bufev/core/handler.hpp>
#include <bufev/core/ref_ptr.hpp>
#include <bufev/policies/locking.hpp>
#include <bufev/policies/policy_set.hpp>
#include <bufev/transports/filter.hpp>

namespace bufev {

/// A filter with the policies of the bufferevent that will run it:
/// `std::move(lower) | layer<deferred_callbacks, locked>(my_filter{})`.
template <class Filter, class... Policies>
struct layered_filter {
  Filter filter;
};

/// Names the policies of one layer of a stack.
template <class... Policies, class Filter>
layered_filter<std::decay_t<Filter>, Policies...> layer(Filter&& f) {
  return {std::forward<Filter>(f)};
}

namespace detail {
template <class T>
struct is_layered : std::false_type {};
template <class F, class... P>
struct is_layered<layered_filter<F, P...>> : std::true_type {};
template <class T>
struct is_bufferevent_ptr : std::false_type {};
template <class B>
struct is_bufferevent_ptr<bufferevent_ptr<B>> : std::true_type {};

// What may stand on the right of `|`: a filter object.
template <class F>
concept stackable_filter = std::is_class_v<std::remove_cvref_t<F>> &&
                           !is_bufferevent_ptr<std::remove_cvref_t<F>>::value;
}  // namespace detail

/// `lower | filter`: a filter bufferevent (default policies: dynamic callbacks,
/// immediate) over `lower`, which it owns. Chaining `|` builds a stack whose
/// layers link through `setcb`; `make_stack` links them with direct calls instead.
template <class Lower, detail::stackable_filter F>
  requires(!detail::is_layered<std::remove_cvref_t<F>>::value)
auto operator|(bufferevent_ptr<Lower>&& lower, F&& f) {
  return make_filter_bufferevent(std::move(lower), std::forward<F>(f));
}

/// `lower | layer<Policies...>(filter)`: the same with chosen policies.
template <class Lower, class F, class... Policies>
auto operator|(bufferevent_ptr<Lower>&& lower, layered_filter<F, Policies...> l) {
  return make_filter_bufferevent<Policies...>(std::move(lower), std::move(l.filter));
}

/// Builds a stack bottom-up: `f0` directly over `lower`, `fs...` above it, the
/// last one on top. `TopPolicies...` configure the top layer (the one the user
/// sees). Intermediate layers use `handler<filter_link>` (the layer above calls
/// through three function pointers, no std::function) with immediate callbacks
/// and the top layer's locking policy, so the stack shares one lock.
template <class... TopPolicies, class Lower, class F0>
auto make_stack(bufferevent_ptr<Lower> lower, F0&& f0) {
  return make_filter_bufferevent<TopPolicies...>(std::move(lower), std::forward<F0>(f0));
}

template <class... TopPolicies, class Lower, class F0, class F1, class... Fs>
auto make_stack(bufferevent_ptr<Lower> lower, F0&& f0, F1&& f1, Fs&&... fs) {
  using lock = detail::select_policy_t<detail::locking_category, unlocked, TopPolicies...>;
  auto mid = make_filter_bufferevent<handler<filter_link>, lock>(std::move(lower), std::forward<F0>(f0));
  return make_stack<TopPolicies...>(std::move(mid), std::forward<F1>(f1), std::forward<Fs>(fs)...);
}

}  // namespace bufev
