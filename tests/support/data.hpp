// Test data shared by the suites.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>

namespace bufev::test {

/// n deterministic, non-periodic-looking letters; `offset` continues a stream.
inline std::string pattern(std::size_t n, std::size_t offset = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i + offset;
    s[i] = static_cast<char>('a' + (k * 7 + k / 13) % 26);
  }
  return s;
}

/// Removes and returns everything in a bufferevent's input.
template <class Bev>
std::string take_all(Bev& b) {
  std::string s(b.input().size(), '\0');
  s.resize(b.read(s.data(), s.size()));
  return s;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool under_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool under_sanitizer = true;
#else
inline constexpr bool under_sanitizer = false;
#endif
#else
inline constexpr bool under_sanitizer = false;
#endif

/// Size of a stress transfer: `full_mib` normally, `sanitized_mib` under ASan or
/// TSan (about ten times slower), or the environment variable `env` (MiB) if set.
inline std::size_t stress_bytes(std::size_t full_mib, std::size_t sanitized_mib, const char* env) {
  if (const char* e = std::getenv(env)) return std::strtoul(e, nullptr, 10) << 20;
  return (under_sanitizer ? sanitized_mib : full_mib) << 20;
}

}  // namespace bufev::test
