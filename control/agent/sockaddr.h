// IpAddr <-> sockaddr for the control plane's kernel sockets (IKE, BGP).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "dataplane/net/ip.h"

namespace espgw::agent {

inline socklen_t to_sockaddr(const IpAddr& a, uint16_t port, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (a.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

// The address and port of a peer; an IPv4-mapped IPv6 address comes back as IPv4.
inline IpAddr from_sockaddr(const sockaddr_storage& ss, uint16_t* port = nullptr) {
  IpAddr a;
  if (ss.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    a.family = 4;
    std::memcpy(a.bytes.data(), &s->sin_addr, 4);
    if (port) *port = ntohs(s->sin_port);
    return a;
  }
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  if (port) *port = ntohs(s6->sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
    a.family = 4;
    std::memcpy(a.bytes.data(), reinterpret_cast<const uint8_t*>(&s6->sin6_addr) + 12, 4);
    return a;
  }
  return IpAddr::v6(reinterpret_cast<const uint8_t*>(&s6->sin6_addr));
}

}  // namespace espgw::agent
