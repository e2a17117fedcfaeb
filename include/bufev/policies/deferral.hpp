// Deferral policies: run callbacks inline (libevent's default) or post them to the
// executor, coalesced, after the current handler (BEV_OPT_DEFER_CALLBACKS).
#pragma once

#include <bufev/policies/policy_set.hpp>

namespace bufev {

/// Callbacks run inline, at the point the condition is detected.
struct immediate_callbacks {
  using policy_category = detail::deferral_category;
  static constexpr bool deferred = false;
};

/// Callbacks are queued and run from a handler posted to the executor; pending
/// events coalesce, and they run in the order connected, read, write, other events.
/// Bufferevents that feed each other cannot recurse without bound.
struct deferred_callbacks {
  using policy_category = detail::deferral_category;
  static constexpr bool deferred = true;
};

}  // namespace bufev
