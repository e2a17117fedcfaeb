// bufev: libevent-style bufferevents for standalone Asio. The umbrella header.
#pragma once

#include <bufev/error.hpp>
#include <bufev/events.hpp>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/dynamic_buffer.hpp>
#include <bufev/buffers/evbuffer.hpp>
#include <bufev/buffers/flat_buffer.hpp>
#include <bufev/buffers/static_buffer.hpp>

#include <bufev/policies/buffers.hpp>
#include <bufev/policies/deferral.hpp>
#include <bufev/policies/locking.hpp>
#include <bufev/policies/timers.hpp>
#include <bufev/policies/watermarks.hpp>

#include <bufev/core/bufferevent.hpp>
#include <bufev/core/handler.hpp>
#include <bufev/core/ref_ptr.hpp>

#include <bufev/transports/concepts.hpp>
#include <bufev/transports/pair.hpp>
#include <bufev/transports/filter.hpp>
#include <bufev/transports/socket.hpp>

// Filters (zlib is separate: #include <bufev/filters/zlib.hpp>, link ZLIB::ZLIB).
#include <bufev/filters/concepts.hpp>
#include <bufev/filters/framing.hpp>
#include <bufev/filters/identity.hpp>
#include <bufev/filters/stack.hpp>
