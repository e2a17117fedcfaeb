// Buffer-type policy: which buffer types hold a bufferevent's input and output.
#pragma once

#include <bufev/buffers/concepts.hpp>
#include <bufev/policies/policy_set.hpp>

namespace bufev {

/// Selects the input and output buffer types (both default to evbuffer).
template <byte_buffer Input, byte_buffer Output = Input>
struct buffers {
  using policy_category = detail::buffers_category;
  using input_type = Input;
  using output_type = Output;
};

}  // namespace bufev
