// IKE fragmentation (RFC 7383): the Encrypted Fragment (SKF) payload header, the bounded
// reassembly of one message, and the counters of every fragment taken or refused. The crypto of
// each fragment is SkCrypter's (sk.h: protect_fragments / open_fragment).
//
// Reassembly is bounded three ways (FragLimits): fragments per message, decrypted bytes per
// message, and the time since the first fragment arrived; a refused fragment or message never
// leaves state behind.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "control/ike/message.h"
#include "control/ike/wire.h"

namespace espgw::ike {

// SKF payload: generic header | Fragment Number (2) | Total Fragments (2) | IV | ... | ICV.
inline constexpr size_t kSkfHeaderLen = kGenericHeaderLen + 4;

struct FragHeader {
  Header hdr;
  PayloadType inner_next = PayloadType::kNone;  // fragment 1: the first inner payload's type
  uint16_t number = 0, total = 0;
};

// Parses a message whose one payload is an SKF payload (header and fragment fields only; the
// contents stay encrypted). kOk, or why not.
DecodeError parse_fragment(ByteView msg, FragHeader& out);

struct FragLimits {
  unsigned max_fragments = 64;   // per message
  size_t max_bytes = 64 * 1024;  // decrypted payload octets per message
  uint64_t timeout_ms = 10000;   // from the first fragment to the last
};

// X(name): fragments and messages taken, sent, and every reason a fragment is refused.
#define ESPGW_IKE_FRAG_COUNTERS(X)                                                           \
  X(fragments_in) /* verified fragments accepted */                                          \
  X(fragments_out)                                                                           \
  X(messages_reassembled)                                                                    \
  X(messages_fragmented)                                                                     \
  X(drop_not_negotiated) /* SKF on an IKE SA without FRAGMENTATION_SUPPORTED both ways */    \
  X(drop_malformed)      /* SKF header, or the reassembled payload chain, does not decode */ \
  X(drop_integrity)      /* ICV / tag mismatch */                                            \
  X(drop_unexpected_id)  /* not the message ID we wait for */                                \
  X(drop_bad_number)     /* number 0 or > total, total 0, or smaller than before */          \
  X(drop_too_many)       /* total > max_fragments */                                         \
  X(drop_oversize)       /* the message would exceed max_bytes (all its fragments go) */     \
  X(drop_duplicate)                                                                          \
  X(drop_superseded) /* a larger total restarted the reassembly (earlier ones go) */         \
  X(drop_timeout)    /* incomplete after timeout_ms (all its fragments go) */

struct FragCounters {
#define X(n) uint64_t n = 0;
  ESPGW_IKE_FRAG_COUNTERS(X)
#undef X
  std::vector<std::pair<const char*, uint64_t>> named() const;
};

// One message being reassembled (one direction of one IKE SA). Fragments come in verified and
// decrypted (padding removed).
class Reassembly {
 public:
  enum class Result { kStored, kComplete, kDropped };
  Result add(const FragHeader& f, Bytes plain, uint64_t now, const FragLimits& lim,
             FragCounters& c);
  // Drops an incomplete message older than lim.timeout_ms.
  void expire(uint64_t now, const FragLimits& lim, FragCounters& c);
  bool active() const { return total_ != 0; }
  // After kComplete: the whole inner payload chain and the type of its first payload.
  PayloadType first() const { return first_; }
  Bytes take();
  void clear();

 private:
  uint32_t id_ = 0;
  uint16_t total_ = 0, have_ = 0;
  size_t bytes_ = 0;
  uint64_t started_ms_ = 0;
  PayloadType first_ = PayloadType::kNone;
  std::vector<std::optional<Bytes>> parts_;
  // A message refused as too large: its remaining fragments (and retransmissions) are refused
  // without starting over.
  std::optional<uint32_t> oversize_id_;
};

}  // namespace espgw::ike
