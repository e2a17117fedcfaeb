// Picks one policy per axis out of a bufferevent's policy list. Each policy names
// its axis with a nested `policy_category`; the first policy of an axis wins, so
// aliases can append defaults after the user's choices.
#pragma once

#include <type_traits>

namespace bufev::detail {

struct buffers_category {};
struct watermarks_category {};
struct deferral_category {};
struct locking_category {};
struct timers_category {};
struct rate_limit_category {};
struct handler_category {};

template <class P>
concept policy = requires { typename P::policy_category; };

template <class Category, class Default, class... Ps>
struct select_policy {
  using type = Default;
};

template <class Category, class Default, class P, class... Ps>
struct select_policy<Category, Default, P, Ps...>
    : std::conditional_t<std::is_same_v<typename P::policy_category, Category>,
                         std::type_identity<P>, select_policy<Category, Default, Ps...>> {};

template <class Category, class Default, class... Ps>
using select_policy_t = typename select_policy<Category, Default, Ps...>::type;

template <class P>
inline constexpr bool known_category_v =
    std::is_same_v<typename P::policy_category, buffers_category> ||
    std::is_same_v<typename P::policy_category, watermarks_category> ||
    std::is_same_v<typename P::policy_category, deferral_category> ||
    std::is_same_v<typename P::policy_category, locking_category> ||
    std::is_same_v<typename P::policy_category, timers_category> ||
    std::is_same_v<typename P::policy_category, rate_limit_category> ||
    std::is_same_v<typename P::policy_category, handler_category>;

}  // namespace bufev::detail
