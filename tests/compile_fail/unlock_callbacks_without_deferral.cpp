// unlock-callbacks without deferral is a configuration error.
#include <bufev/bufev.hpp>

using bad = bufev::basic_bufferevent<bufev::pair_transport, bufev::immediate_callbacks,
                                     bufev::locked_unlock_callbacks>;
bad* p = nullptr;
int main() { return bad::deferred ? 0 : 1; }
