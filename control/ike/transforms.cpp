#include "control/ike/transforms.h"

#include <algorithm>
#include <array>
#include <map>
#include <tuple>

namespace espgw::ike {

std::optional<EncrInfo> encr_info(uint16_t id) {
  switch (id) {
    case encr::kAesCbc:
      return EncrInfo{id, false, true, 0, 16, 0, 16};
    case encr::kAesGcm16:
      return EncrInfo{id, true, true, 4, 8, 16, 1};
    case encr::kNullAuthAesGmac:
      return EncrInfo{id, true, true, 4, 8, 16, 1};
    case encr::kChacha20Poly1305:
      return EncrInfo{id, true, false, 4, 8, 16, 1};
    default:
      return std::nullopt;
  }
}

bool encr_key_length_ok(uint16_t id, uint16_t bits) {
  auto e = encr_info(id);
  if (!e) return false;
  if (!e->needs_key_length) return bits == 0;
  return bits == 128 || bits == 192 || bits == 256;
}

size_t prf_len(uint16_t id) {
  switch (id) {
    case prf::kHmacSha256:
      return 32;
    case prf::kHmacSha384:
      return 48;
    case prf::kHmacSha512:
      return 64;
    default:
      return 0;
  }
}

size_t integ_key_len(uint16_t id) {
  switch (id) {
    case integ::kHmacSha256_128:
      return 32;
    case integ::kHmacSha384_192:
      return 48;
    case integ::kHmacSha512_256:
      return 64;
    default:
      return 0;
  }
}

size_t integ_icv_len(uint16_t id) { return integ_key_len(id) / 2; }

bool dh_supported(uint16_t g) {
  switch (g) {
    case dh::kModp2048:
    case dh::kModp3072:
    case dh::kEcp256:
    case dh::kEcp384:
    case dh::kEcp521:
    case dh::kCurve25519:
      return true;
    default:
      return false;
  }
}

size_t Suite::encr_key_len() const {
  auto e = encr_info(encr);
  if (!e) return 0;
  size_t key = e->needs_key_length ? encr_key_bits / 8 : 32;
  return key + e->salt_len;
}

bool Suite::aead() const {
  auto e = encr_info(encr);
  return e && e->aead;
}

namespace {

struct Token {
  std::string_view name;
  TransformType type;
  uint16_t id;
  uint16_t key_bits;
};

constexpr std::array<Token, 27> kTokens{{
    {"aes128", TransformType::kEncr, encr::kAesCbc, 128},
    {"aes192", TransformType::kEncr, encr::kAesCbc, 192},
    {"aes256", TransformType::kEncr, encr::kAesCbc, 256},
    {"aes128gcm16", TransformType::kEncr, encr::kAesGcm16, 128},
    {"aes192gcm16", TransformType::kEncr, encr::kAesGcm16, 192},
    {"aes256gcm16", TransformType::kEncr, encr::kAesGcm16, 256},
    {"aes128gcm128", TransformType::kEncr, encr::kAesGcm16, 128},
    {"aes256gcm128", TransformType::kEncr, encr::kAesGcm16, 256},
    {"aes128gmac", TransformType::kEncr, encr::kNullAuthAesGmac, 128},
    {"aes256gmac", TransformType::kEncr, encr::kNullAuthAesGmac, 256},
    {"chacha20poly1305", TransformType::kEncr, encr::kChacha20Poly1305, 0},
    {"sha256", TransformType::kInteg, integ::kHmacSha256_128, 0},
    {"sha384", TransformType::kInteg, integ::kHmacSha384_192, 0},
    {"sha512", TransformType::kInteg, integ::kHmacSha512_256, 0},
    {"prfsha256", TransformType::kPrf, prf::kHmacSha256, 0},
    {"prfsha384", TransformType::kPrf, prf::kHmacSha384, 0},
    {"prfsha512", TransformType::kPrf, prf::kHmacSha512, 0},
    {"modp2048", TransformType::kDh, dh::kModp2048, 0},
    {"modp3072", TransformType::kDh, dh::kModp3072, 0},
    {"ecp256", TransformType::kDh, dh::kEcp256, 0},
    {"ecp384", TransformType::kDh, dh::kEcp384, 0},
    {"ecp521", TransformType::kDh, dh::kEcp521, 0},
    {"x25519", TransformType::kDh, dh::kCurve25519, 0},
    {"curve25519", TransformType::kDh, dh::kCurve25519, 0},
    {"esn", TransformType::kEsn, esn::kYes, 0},
    {"noesn", TransformType::kEsn, esn::kNo, 0},
    {"none", TransformType::kDh, dh::kNone, 0},
}};

std::string token_name(TransformType type, uint16_t id, uint16_t bits) {
  for (const auto& t : kTokens)
    if (t.type == type && t.id == id && t.key_bits == bits) return std::string(t.name);
  return std::to_string(int(type)) + ":" + std::to_string(id);
}

bool complete(const Suite& s) {
  auto e = encr_info(s.encr);
  if (!e || !encr_key_length_ok(s.encr, s.encr_key_bits)) return false;
  if (e->aead != (s.integ == integ::kNone)) return false;
  if (s.integ != integ::kNone && integ_key_len(s.integ) == 0) return false;
  if (s.dh != dh::kNone && !dh_supported(s.dh)) return false;
  if (s.protocol == ProtocolId::kIke) {
    // GMAC is integrity-only and not defined for IKE.
    return s.encr != encr::kNullAuthAesGmac && prf_len(s.prf) != 0 && s.dh != dh::kNone &&
           s.esn == 0;
  }
  if (s.protocol == ProtocolId::kEsp) return s.prf == 0 && s.esn <= esn::kYes;
  return false;
}

bool spi_ok(const Proposal& p) {
  if (p.protocol == ProtocolId::kIke) return p.spi.empty() || p.spi.size() == 8;
  return p.spi.size() == 4;
}

std::vector<Transform> of_type(const Proposal& p, TransformType t) {
  std::vector<Transform> v;
  for (const auto& x : p.transforms)
    if (x.type == t) v.push_back(x);
  return v;
}

// Types where absence means NONE (id 0).
bool none_if_absent(TransformType t, ProtocolId proto) {
  return t == TransformType::kInteg || (t == TransformType::kDh && proto != ProtocolId::kIke) ||
         (t == TransformType::kEsn && proto != ProtocolId::kIke);
}

std::optional<Proposal> match(const Proposal& ours, const Proposal& theirs) {
  if (ours.protocol != theirs.protocol || theirs.unknown_attribute || !spi_ok(theirs))
    return std::nullopt;
  std::vector<uint8_t> types;
  for (const auto* p : {&ours, &theirs})
    for (const auto& t : p->transforms) types.push_back(uint8_t(t.type));
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());

  Proposal out;
  out.number = theirs.number;
  out.protocol = theirs.protocol;
  out.spi = theirs.spi;
  for (uint8_t ty : types) {
    TransformType type = TransformType(ty);
    auto mine = of_type(ours, type);
    auto peer = of_type(theirs, type);
    bool explicit_peer = !peer.empty();
    if (none_if_absent(type, ours.protocol)) {
      if (mine.empty()) mine.push_back({type, 0, 0});
      if (peer.empty()) peer.push_back({type, 0, 0});
    }
    auto it = std::find_if(peer.begin(), peer.end(), [&](const Transform& t) {
      return std::find(mine.begin(), mine.end(), t) != mine.end();
    });
    if (it == peer.end()) return std::nullopt;
    if (explicit_peer) out.transforms.push_back(*it);
  }
  auto s = suite_of(out);
  if (!s || !complete(*s)) return std::nullopt;
  return out;
}

}  // namespace

std::string Suite::str() const {
  std::string s = token_name(TransformType::kEncr, encr, encr_key_bits);
  if (integ != 0) s += "-" + token_name(TransformType::kInteg, integ, 0);
  if (prf != 0) s += "-" + token_name(TransformType::kPrf, prf, 0);
  if (dh != 0) s += "-" + token_name(TransformType::kDh, dh, 0);
  if (protocol == ProtocolId::kEsp) s += esn ? "-esn" : "-noesn";
  return s;
}

std::optional<Suite> suite_of(const Proposal& p) {
  Suite s;
  s.protocol = p.protocol;
  std::array<bool, 6> seen{};
  for (const auto& t : p.transforms) {
    uint8_t ty = uint8_t(t.type);
    if (ty < 1 || ty > 5 || seen[ty]) return std::nullopt;
    seen[ty] = true;
    switch (t.type) {
      case TransformType::kEncr:
        s.encr = t.id;
        s.encr_key_bits = t.key_length;
        break;
      case TransformType::kPrf:
        s.prf = t.id;
        break;
      case TransformType::kInteg:
        s.integ = t.id;
        break;
      case TransformType::kDh:
        s.dh = t.id;
        break;
      case TransformType::kEsn:
        s.esn = t.id;
        break;
    }
  }
  if (!seen[uint8_t(TransformType::kEncr)]) return std::nullopt;
  return s;
}

Proposal proposal_of(const Suite& s) {
  Proposal p;
  p.protocol = s.protocol;
  p.transforms.push_back({TransformType::kEncr, s.encr, s.encr_key_bits});
  if (s.prf) p.transforms.push_back({TransformType::kPrf, s.prf, 0});
  if (s.integ) p.transforms.push_back({TransformType::kInteg, s.integ, 0});
  if (s.dh) p.transforms.push_back({TransformType::kDh, s.dh, 0});
  if (s.protocol == ProtocolId::kEsp) p.transforms.push_back({TransformType::kEsn, s.esn, 0});
  return p;
}

std::optional<Proposal> parse_proposal(std::string_view str, ProtocolId protocol) {
  if (protocol != ProtocolId::kIke && protocol != ProtocolId::kEsp) return std::nullopt;
  Proposal p;
  p.protocol = protocol;
  std::map<TransformType, std::vector<Transform>> by_type;
  size_t pos = 0;
  while (pos <= str.size()) {
    size_t dash = str.find('-', pos);
    std::string_view tok = str.substr(pos, dash == std::string_view::npos ? str.npos : dash - pos);
    auto it =
        std::find_if(kTokens.begin(), kTokens.end(), [&](const Token& t) { return t.name == tok; });
    if (it == kTokens.end()) return std::nullopt;
    Transform t{it->type, it->id, it->key_bits};
    auto& v = by_type[t.type];
    if (std::find(v.begin(), v.end(), t) == v.end()) v.push_back(t);
    if (dash == std::string_view::npos) break;
    pos = dash + 1;
  }
  auto& enc = by_type[TransformType::kEncr];
  if (enc.empty()) return std::nullopt;
  bool aead = encr_info(enc.front().id)->aead;
  for (const auto& e : enc)
    if (encr_info(e.id)->aead != aead) return std::nullopt;
  if (protocol == ProtocolId::kIke) {
    if (by_type.count(TransformType::kEsn)) return std::nullopt;
    auto& prfs = by_type[TransformType::kPrf];
    if (prfs.empty()) {
      for (const auto& i : by_type[TransformType::kInteg]) {
        uint16_t id = i.id == integ::kHmacSha256_128   ? prf::kHmacSha256
                      : i.id == integ::kHmacSha384_192 ? prf::kHmacSha384
                                                       : prf::kHmacSha512;
        prfs.push_back({TransformType::kPrf, id, 0});
      }
    }
    if (prfs.empty()) return std::nullopt;
    auto& dhs = by_type[TransformType::kDh];
    if (dhs.empty() || std::any_of(dhs.begin(), dhs.end(), [](auto& t) { return t.id == 0; }))
      return std::nullopt;
  } else {
    if (!by_type[TransformType::kPrf].empty()) return std::nullopt;
    if (by_type[TransformType::kEsn].empty())
      by_type[TransformType::kEsn].push_back({TransformType::kEsn, esn::kNo, 0});
    auto& dhs = by_type[TransformType::kDh];
    if (dhs.size() == 1 && dhs.front().id == dh::kNone) dhs.clear();
  }
  if (aead != by_type[TransformType::kInteg].empty()) return std::nullopt;
  for (auto& [type, v] : by_type)
    for (const auto& t : v) p.transforms.push_back(t);
  return p;
}

std::optional<Proposal> select_proposal(const std::vector<Proposal>& ours,
                                        const std::vector<Proposal>& theirs) {
  for (const auto& t : theirs)
    for (const auto& o : ours)
      if (auto m = match(o, t)) return m;
  return std::nullopt;
}

std::vector<Proposal> without_dh(std::vector<Proposal> proposals) {
  for (auto& p : proposals)
    std::erase_if(p.transforms, [](const Transform& t) { return t.type == TransformType::kDh; });
  return proposals;
}

std::optional<Suite> accept_reply(const std::vector<Proposal>& offered, const SaPayload& reply) {
  if (reply.proposals.size() != 1) return std::nullopt;
  const Proposal& r = reply.proposals.front();
  auto s = suite_of(r);
  if (!s) return std::nullopt;  // more than one transform of a type
  // The transforms of a proposal are a set: a responder may list them in any order (strongSwan
  // sends ENCR, INTEG, PRF, DH), so compare them sorted.
  auto canonical = [](std::vector<Transform> t) {
    std::sort(t.begin(), t.end(), [](const Transform& a, const Transform& b) {
      return std::tie(a.type, a.id, a.key_length) < std::tie(b.type, b.id, b.key_length);
    });
    return t;
  };
  for (const auto& o : offered) {
    if (o.number != r.number) continue;
    auto m = match(o, r);
    if (m && !r.unknown_attribute && canonical(m->transforms) == canonical(r.transforms) &&
        m->spi == r.spi && m->protocol == r.protocol)
      return s;
  }
  return std::nullopt;
}

std::optional<crypto::Algo> esp_algo(const Suite& s) {
  using crypto::Algo;
  if (s.protocol != ProtocolId::kEsp) return std::nullopt;
  switch (s.encr) {
    case encr::kAesGcm16:
      if (s.integ != 0) return std::nullopt;
      if (s.encr_key_bits == 128) return Algo::kAesGcm128;
      if (s.encr_key_bits == 256) return Algo::kAesGcm256;
      return std::nullopt;
    case encr::kNullAuthAesGmac:
      if (s.integ != 0) return std::nullopt;
      if (s.encr_key_bits == 128) return Algo::kAesGmac128;
      if (s.encr_key_bits == 256) return Algo::kAesGmac256;
      return std::nullopt;
    case encr::kChacha20Poly1305:
      if (s.integ != 0 || s.encr_key_bits != 0) return std::nullopt;
      return Algo::kChacha20Poly1305;
    case encr::kAesCbc:
      if (s.encr_key_bits == 128 && s.integ == integ::kHmacSha256_128)
        return Algo::kAesCbc128Sha256;
      if (s.encr_key_bits != 256) return std::nullopt;
      if (s.integ == integ::kHmacSha256_128) return Algo::kAesCbc256Sha256;
      if (s.integ == integ::kHmacSha384_192) return Algo::kAesCbc256Sha384;
      if (s.integ == integ::kHmacSha512_256) return Algo::kAesCbc256Sha512;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace espgw::ike
