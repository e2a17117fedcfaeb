// Test data shared by the suites.
#pragma once

#include <cstddef>
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

}  // namespace bufev::test
