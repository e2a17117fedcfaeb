// A compile-time high watermark below the low one is refused.
#include <bufev/bufev.hpp>

using bad = bufev::pair_bufferevent<bufev::fixed_watermarks<100, 10>>;
int main() { return static_cast<int>(bad::watermark_policy::read_marks().high); }
