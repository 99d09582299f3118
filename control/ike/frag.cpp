#include "control/ike/frag.h"

#include <openssl/crypto.h>

namespace espgw::ike {

DecodeError parse_fragment(ByteView msg, FragHeader& out) {
  out = {};
  DecodeStatus st = decode_header(msg, out.hdr);
  if (!st.ok()) return st.error;
  if (out.hdr.next != PayloadType::kEncryptedFragment) return DecodeError::kInvalidSyntax;
  Reader r(msg.subspan(kHeaderLen));
  out.inner_next = PayloadType(r.u8());
  r.skip(1);  // flags
  uint16_t len = r.u16();
  out.number = r.u16();
  out.total = r.u16();
  if (!r.ok()) return DecodeError::kTruncated;
  // The SKF payload is the only one (RFC 7383 2.5): it ends the message.
  if (len < kSkfHeaderLen || len != msg.size() - kHeaderLen) return DecodeError::kBadLength;
  return DecodeError::kOk;
}

std::vector<std::pair<const char*, uint64_t>> FragCounters::named() const {
  return {
#define X(n) {#n, n},
      ESPGW_IKE_FRAG_COUNTERS(X)
#undef X
  };
}

void Reassembly::clear() {
  for (auto& p : parts_)
    if (p) OPENSSL_cleanse(p->data(), p->size());
  parts_.clear();
  total_ = have_ = 0;
  bytes_ = 0;
  first_ = PayloadType::kNone;
}

Reassembly::Result Reassembly::add(const FragHeader& f, Bytes plain, uint64_t now,
                                   const FragLimits& lim, FragCounters& c) {
  auto refuse = [&](uint64_t& counter) {
    ++counter;
    OPENSSL_cleanse(plain.data(), plain.size());
    return Result::kDropped;
  };
  if (f.total == 0 || f.number == 0 || f.number > f.total) return refuse(c.drop_bad_number);
  if (f.total > lim.max_fragments) return refuse(c.drop_too_many);
  if (oversize_id_ == f.hdr.message_id) return refuse(c.drop_oversize);
  if (active() && f.hdr.message_id != id_) clear();  // the caller admits one ID at a time
  if (active() && f.total != total_) {
    // 2.6.2: a larger total means the sender re-fragmented smaller (PMTU): start anew; a smaller
    // one belongs to the earlier, abandoned attempt.
    if (f.total < total_) return refuse(c.drop_bad_number);
    c.drop_superseded += have_;
    clear();
  }
  if (!active()) {
    id_ = f.hdr.message_id;
    total_ = f.total;
    started_ms_ = now;
    parts_.assign(total_, std::nullopt);
  }
  auto& slot = parts_[f.number - 1];
  if (slot) return refuse(c.drop_duplicate);
  if (bytes_ + plain.size() > lim.max_bytes) {
    c.drop_oversize += have_ + 1;
    OPENSSL_cleanse(plain.data(), plain.size());
    oversize_id_ = id_;
    clear();
    return Result::kDropped;
  }
  if (f.number == 1) first_ = f.inner_next;
  bytes_ += plain.size();
  slot = std::move(plain);
  ++have_;
  return have_ == total_ ? Result::kComplete : Result::kStored;
}

void Reassembly::expire(uint64_t now, const FragLimits& lim, FragCounters& c) {
  if (!active() || now - started_ms_ < lim.timeout_ms) return;
  c.drop_timeout += have_;
  clear();
}

Bytes Reassembly::take() {
  Bytes all;
  all.reserve(bytes_);
  for (auto& p : parts_)
    if (p) all.insert(all.end(), p->begin(), p->end());
  clear();
  return all;
}

}  // namespace espgw::ike
