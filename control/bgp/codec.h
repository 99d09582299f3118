// Per-session codec parameters and the RFC 7606 outcome of decoding a message. No global state:
// every decode/encode call takes the Codec of the session it runs for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/bgp/constants.h"

namespace espgw::bgp {

struct Codec {
  bool as4 = true;       // both sides sent the 4-octet AS capability (RFC 6793)
  bool addpath = false;  // NLRI carry path identifiers (RFC 7911), all families
  bool ebgp = false;     // peer is external: LOCAL_PREF is discarded, confederation
                         // segments are malformed (RFC 7606 s7.2, s7.5)
};

// RFC 7606 s2 error-handling approaches, ordered by severity.
enum class Outcome : uint8_t {
  kOk,
  kAttributeDiscard,  // some attributes were dropped; the rest of the UPDATE is good
  kTreatAsWithdraw,   // withdraw every prefix the UPDATE carries (withdrawn, NLRI, MP_REACH,
                      // MP_UNREACH); its attributes must not be used
  kSessionReset,      // send `notification` and close the session
};

// What went wrong while decoding one message; the most severe outcome wins.
struct Verdict {
  Outcome outcome = Outcome::kOk;
  Notification notification;       // meaningful when outcome == kSessionReset
  std::vector<uint8_t> discarded;  // attribute type codes dropped (discard, duplicates, ignored)
  std::string reason;              // "; "-joined human-readable causes

  bool ok() const { return outcome != Outcome::kSessionReset; }
  void raise(Outcome o, const std::string& why);
  void reset(uint8_t code, uint8_t subcode, Bytes data, const std::string& why);
  void discard(uint8_t type_code, const std::string& why);
};

const char* outcome_name(Outcome o);

}  // namespace espgw::bgp
