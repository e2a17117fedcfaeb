// static_buffer<0> could never hold a byte: it must not compile, with a clear message.
#include <bufev/buffers/static_buffer.hpp>

int main() {
  bufev::static_buffer<0> b;
  return static_cast<int>(b.size());
}
