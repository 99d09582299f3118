#include "control/bgp/format.h"

#include <cstdio>

#include "control/bgp/message.h"
#include "control/bgp/update.h"

namespace espgw::bgp {

std::string origin_str(Origin o) {
  switch (o) {
    case Origin::kIgp:
      return "igp";
    case Origin::kEgp:
      return "egp";
    case Origin::kIncomplete:
      return "incomplete";
  }
  return "origin-" + std::to_string(unsigned(o));
}

std::string family_str(AfiSafi f) {
  if (f == kIpv4Unicast) return "ipv4-unicast";
  if (f == kIpv6Unicast) return "ipv6-unicast";
  return "afi-" + std::to_string(f.afi) + "-safi-" + std::to_string(f.safi);
}

std::string nlri_str(const Nlri& n) {
  std::string s = n.prefix.str();
  if (n.path_id) s += "#" + std::to_string(n.path_id);
  return s;
}

std::string nlri_list_str(const std::vector<Nlri>& v) {
  std::string s;
  for (const auto& n : v) s += " " + nlri_str(n);
  return s;
}

std::string hex(std::span<const uint8_t> b) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t x : b) {
    s += kDigits[x >> 4];
    s += kDigits[x & 15];
  }
  return s;
}

std::string raw_attr_str(const RawAttr& a) {
  char flags[8];
  std::snprintf(flags, sizeof flags, "0x%02x", a.flags);
  std::string s = "attr-" + std::to_string(a.code) + " flags " + flags;
  if (!a.value.empty()) s += " " + hex(a.value);
  return s;
}

std::string community_str(uint32_t c) {
  switch (c) {
    case kNoExport:
      return "no-export";
    case kNoAdvertise:
      return "no-advertise";
    case kNoExportSubconfed:
      return "no-export-subconfed";
    case kNoPeer:
      return "no-peer";
    case kBlackhole:
      return "blackhole";
    case kGracefulShutdown:
      return "graceful-shutdown";
    default:
      return std::to_string(c >> 16) + ":" + std::to_string(c & 0xFFFF);
  }
}

std::string error_name(uint8_t code, uint8_t subcode) {
  static const char* const kCodes[] = {"",
                                       "Message Header Error",
                                       "OPEN Message Error",
                                       "UPDATE Message Error",
                                       "Hold Timer Expired",
                                       "Finite State Machine Error",
                                       "Cease",
                                       "ROUTE-REFRESH Message Error"};
  static const char* const kHeader[] = {"", "Connection Not Synchronized", "Bad Message Length",
                                        "Bad Message Type"};
  static const char* const kOpen[] = {"",
                                      "Unsupported Version Number",
                                      "Bad Peer AS",
                                      "Bad BGP Identifier",
                                      "Unsupported Optional Parameter",
                                      "Authentication Failure",
                                      "Unacceptable Hold Time",
                                      "Unsupported Capability"};
  static const char* const kUpdate[] = {"",
                                        "Malformed Attribute List",
                                        "Unrecognized Well-known Attribute",
                                        "Missing Well-known Attribute",
                                        "Attribute Flags Error",
                                        "Attribute Length Error",
                                        "Invalid ORIGIN Attribute",
                                        "AS Routing Loop",
                                        "Invalid NEXT_HOP Attribute",
                                        "Optional Attribute Error",
                                        "Invalid Network Field",
                                        "Malformed AS_PATH"};
  static const char* const kFsm[] = {"", "Unexpected Message in OpenSent",
                                     "Unexpected Message in OpenConfirm",
                                     "Unexpected Message in Established"};
  static const char* const kCease[] = {"",
                                       "Maximum Number of Prefixes Reached",
                                       "Administrative Shutdown",
                                       "Peer De-configured",
                                       "Administrative Reset",
                                       "Connection Rejected",
                                       "Other Configuration Change",
                                       "Connection Collision Resolution",
                                       "Out of Resources",
                                       "Hard Reset"};
  static const char* const kRefresh[] = {"", "Invalid Message Length"};
  auto pick = [subcode](const char* const* names, size_t n) -> std::string {
    if (subcode == 0) return "";
    if (subcode < n) return std::string(" / ") + names[subcode];
    return " / subcode " + std::to_string(subcode);
  };
  std::string sub;
  switch (code) {
    case err::kHeader:
      sub = pick(kHeader, std::size(kHeader));
      break;
    case err::kOpen:
      sub = pick(kOpen, std::size(kOpen));
      break;
    case err::kUpdate:
      sub = pick(kUpdate, std::size(kUpdate));
      break;
    case err::kFsm:
      sub = pick(kFsm, std::size(kFsm));
      break;
    case err::kCease:
      sub = pick(kCease, std::size(kCease));
      break;
    case err::kRouteRefresh:
      sub = pick(kRefresh, std::size(kRefresh));
      break;
    default:
      sub = subcode ? " / subcode " + std::to_string(subcode) : "";
      break;
  }
  std::string name =
      code > 0 && code < std::size(kCodes) ? kCodes[code] : "code " + std::to_string(code);
  return name + sub;
}

std::string to_string(const Update& u) {
  std::string s;
  auto add = [&s](const std::string& part) {
    if (part.empty()) return;
    if (!s.empty()) s += "; ";
    s += part;
  };
  if (auto eor = end_of_rib(u)) return "end-of-rib " + family_str(*eor);
  if (!u.withdrawn.empty()) add("withdrawn" + nlri_list_str(u.withdrawn));
  add(format_attrs(u.attrs));
  if (!u.nlri.empty()) add("nlri" + nlri_list_str(u.nlri));
  return s.empty() ? "empty" : s;
}

std::string to_string(const Open& o) {
  std::string s = "version " + std::to_string(o.version) + "; as " + std::to_string(o.asn()) +
                  "; hold-time " + std::to_string(o.hold_time) + "; bgp-id " +
                  IpAddr::v4(o.bgp_id).str();
  const Capabilities& c = o.caps;
  for (auto f : c.multiprotocol) s += "; mp " + family_str(f);
  if (c.route_refresh) s += "; route-refresh";
  if (c.graceful_restart) {
    const auto& gr = *c.graceful_restart;
    s += "; graceful-restart time " + std::to_string(gr.restart_time);
    if (gr.restarting) s += " restarting";
    if (gr.notification) s += " notification";
    for (const auto& f : gr.families)
      s += " " + family_str(f.family) + (f.forwarding_preserved ? "(f)" : "");
  }
  if (c.as4) s += "; as4 " + std::to_string(*c.as4);
  for (const auto& u : c.unknown)
    s += "; capability-" + std::to_string(u.code) + (u.value.empty() ? "" : " " + hex(u.value));
  return s;
}

std::string to_string(const Notification& n) {
  std::string s = error_name(n.code, n.subcode);
  if (!n.data.empty()) s += " data " + hex(n.data);
  return s;
}

std::string to_string(const Message& m) {
  struct V {
    std::string operator()(const Open& o) { return "OPEN " + to_string(o); }
    std::string operator()(const Update& u) { return "UPDATE " + to_string(u); }
    std::string operator()(const Notification& n) { return "NOTIFICATION " + to_string(n); }
    std::string operator()(const Keepalive&) { return "KEEPALIVE"; }
    std::string operator()(const RouteRefresh& r) {
      std::string s = "ROUTE-REFRESH " + family_str(r.family);
      if (r.subtype) s += " subtype " + std::to_string(r.subtype);
      return s;
    }
  };
  return std::visit(V{}, m);
}

}  // namespace espgw::bgp
