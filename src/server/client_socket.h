// The socket of the connection a request arrived on, so a handler can notice the client hanging
// up while it waits for the engine. cpp-httplib 0.11 does not hand the connection to handlers
// (later versions have Request::is_connection_closed), so it is found among the process's
// descriptors by its two endpoints. Linux only.
#pragma once

#include <string>

namespace hylo::server {

// -1 when not found; then a hang-up is noticed at the next write instead.
int find_client_socket(const std::string& remote_addr, int remote_port, int local_port);

// True when the peer has closed its side (or the connection broke); never blocks.
bool client_hung_up(int fd);

}  // namespace hylo::server
