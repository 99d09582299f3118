#include "control/model/proposal.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "control/model/config.h"

namespace espgw::model {
namespace {

struct DhName {
  std::string_view name;
  DhGroup group;
};
constexpr std::array<DhName, 7> kDhNames{{
    {"modp2048", DhGroup::kModp2048},
    {"modp3072", DhGroup::kModp3072},
    {"ecp256", DhGroup::kEcp256},
    {"ecp384", DhGroup::kEcp384},
    {"ecp521", DhGroup::kEcp521},
    {"x25519", DhGroup::kCurve25519},
    {"curve25519", DhGroup::kCurve25519},
}};

struct IkeEncrName {
  std::string_view name;
  IkeEncr encr;
  bool aead;
};
constexpr std::array<IkeEncrName, 5> kIkeEncrNames{{
    {"aes128gcm16", IkeEncr::kAes128Gcm16, true},
    {"aes256gcm16", IkeEncr::kAes256Gcm16, true},
    {"aes128", IkeEncr::kAes128Cbc, false},
    {"aes256", IkeEncr::kAes256Cbc, false},
    {"chacha20poly1305", IkeEncr::kChacha20Poly1305, true},
}};

struct IntegName {
  std::string_view name;
  IkeInteg integ;
  Prf prf;  // the PRF that goes with it when none is given
};
constexpr std::array<IntegName, 3> kIntegNames{{
    {"sha256", IkeInteg::kHmacSha256_128, Prf::kHmacSha256},
    {"sha384", IkeInteg::kHmacSha384_192, Prf::kHmacSha384},
    {"sha512", IkeInteg::kHmacSha512_256, Prf::kHmacSha512},
}};

struct PrfName {
  std::string_view name;
  Prf prf;
};
constexpr std::array<PrfName, 3> kPrfNames{{
    {"prfsha256", Prf::kHmacSha256},
    {"prfsha384", Prf::kHmacSha384},
    {"prfsha512", Prf::kHmacSha512},
}};

template <class Table>
auto find_name(const Table& t, std::string_view name) -> const typename Table::value_type* {
  for (const auto& e : t)
    if (e.name == name) return &e;
  return nullptr;
}

// Splits "a-b-c" into lowercase tokens; empty tokens (leading/trailing/double '-') are an error.
bool tokenize(std::string_view s, std::vector<std::string>* out, std::string* error) {
  if (s.empty()) {
    *error = "empty proposal";
    return false;
  }
  size_t start = 0;
  while (true) {
    size_t dash = s.find('-', start);
    std::string_view tok = s.substr(start, dash == std::string_view::npos ? s.npos : dash - start);
    if (tok.empty()) {
      *error = "empty algorithm name in '" + std::string(s) + "'";
      return false;
    }
    std::string lower;
    for (char c : tok) lower += char(std::tolower(static_cast<unsigned char>(c)));
    out->push_back(std::move(lower));
    if (dash == std::string_view::npos) return true;
    start = dash + 1;
  }
}

std::string duplicate(std::string_view kind, std::string_view s) {
  return "more than one " + std::string(kind) + " in '" + std::string(s) + "'";
}

std::string unknown(std::string_view tok, std::string_view s) {
  return "unknown or unsupported algorithm '" + std::string(tok) + "' in '" + std::string(s) + "'";
}

}  // namespace

std::string_view dh_name(DhGroup g) {
  for (const auto& d : kDhNames)
    if (d.group == g) return d.name;
  return "none";
}

bool IkeProposal::aead() const {
  for (const auto& e : kIkeEncrNames)
    if (e.encr == encr) return e.aead;
  return false;
}

std::string IkeProposal::str() const {
  std::string s;
  for (const auto& e : kIkeEncrNames)
    if (e.encr == encr) s = e.name;
  for (const auto& i : kIntegNames)
    if (i.integ == integ) s += "-" + std::string(i.name);
  for (const auto& p : kPrfNames)
    if (p.prf == prf) s += "-" + std::string(p.name);
  s += "-" + std::string(dh_name(dh));
  return s;
}

std::string EspProposal::str() const {
  std::string s(crypto::info(algo).name);
  if (dh != DhGroup::kNone) s += "-" + std::string(dh_name(dh));
  switch (esn) {
    case EspEsn::kNo:
      break;
    case EspEsn::kYes:
      s += "-esn";
      break;
    case EspEsn::kYesNo:
      s += "-esn-noesn";
      break;
    case EspEsn::kNoYes:
      s += "-noesn-esn";
      break;
  }
  return s;
}

Parsed<IkeProposal> parse_ike_proposal(std::string_view s) {
  Parsed<IkeProposal> r;
  auto fail = [&r](std::string why) {
    r.error = std::move(why);
    return r;
  };
  std::vector<std::string> toks;
  if (!tokenize(s, &toks, &r.error)) return r;
  const IkeEncrName* encr = nullptr;
  const IntegName* integ = nullptr;
  const PrfName* prf = nullptr;
  const DhName* dh = nullptr;
  for (const auto& t : toks) {
    if (auto* e = find_name(kIkeEncrNames, t)) {
      if (encr) return fail(duplicate("encryption algorithm", s));
      encr = e;
    } else if (auto* i = find_name(kIntegNames, t)) {
      if (integ) return fail(duplicate("integrity algorithm", s));
      integ = i;
    } else if (auto* p = find_name(kPrfNames, t)) {
      if (prf) return fail(duplicate("prf", s));
      prf = p;
    } else if (auto* d = find_name(kDhNames, t)) {
      if (dh) return fail(duplicate("DH group", s));
      dh = d;
    } else {
      return fail(unknown(t, s));
    }
  }
  if (!encr) return fail("no encryption algorithm in '" + std::string(s) + "'");
  if (!dh) return fail("no DH group in '" + std::string(s) + "' (IKE needs one)");
  if (encr->aead && integ)
    return fail("'" + std::string(encr->name) + "' is AEAD: no integrity algorithm allowed in '" +
                std::string(s) + "'");
  if (encr->aead && !prf)
    return fail("AEAD proposal '" + std::string(s) + "' needs a prf (e.g. prfsha256)");
  if (!encr->aead && !integ)
    return fail("'" + std::string(encr->name) + "' needs an integrity algorithm in '" +
                std::string(s) + "' (sha256, sha384 or sha512)");
  IkeProposal p;
  p.encr = encr->encr;
  p.integ = integ ? integ->integ : IkeInteg::kNone;
  p.prf = prf ? prf->prf : integ->prf;
  p.dh = dh->group;
  r.value = p;
  return r;
}

Parsed<EspProposal> parse_esp_proposal(std::string_view s) {
  Parsed<EspProposal> r;
  auto fail = [&r](std::string why) {
    r.error = std::move(why);
    return r;
  };
  std::vector<std::string> toks;
  if (!tokenize(s, &toks, &r.error)) return r;
  std::optional<crypto::Algo> combined;  // a single-token kAlgos name (AEAD or GMAC)
  std::string cipher, integ;             // aes128/aes256 + sha256/384/512
  const DhName* dh = nullptr;
  std::vector<std::string> esn;  // "esn"/"noesn" in the order given (preference)
  for (const auto& t : toks) {
    if (t == "esn" || t == "noesn") {
      if (std::find(esn.begin(), esn.end(), t) != esn.end())
        return fail(duplicate("'" + t + "'", s));
      esn.push_back(t);
    } else if (auto a = crypto::algo_by_name(t); a && crypto::info(*a).aead) {
      if (combined || !cipher.empty()) return fail(duplicate("encryption algorithm", s));
      combined = a;
    } else if (t == "aes128" || t == "aes256") {
      if (combined || !cipher.empty()) return fail(duplicate("encryption algorithm", s));
      cipher = t;
    } else if (find_name(kIntegNames, t)) {
      if (!integ.empty()) return fail(duplicate("integrity algorithm", s));
      integ = t;
    } else if (auto* d = find_name(kDhNames, t)) {
      if (dh) return fail(duplicate("DH group", s));
      dh = d;
    } else {
      return fail(unknown(t, s));
    }
  }
  EspProposal p;
  p.dh = dh ? dh->group : DhGroup::kNone;
  if (esn.size() == 2)
    p.esn = esn.front() == "esn" ? EspEsn::kYesNo : EspEsn::kNoYes;
  else if (esn.size() == 1 && esn.front() == "esn")
    p.esn = EspEsn::kYes;
  if (combined) {
    if (!integ.empty())
      return fail("'" + std::string(crypto::info(*combined).name) +
                  "' is AEAD: no integrity algorithm allowed in '" + std::string(s) + "'");
    p.algo = *combined;
  } else if (!cipher.empty()) {
    if (integ.empty())
      return fail("'" + cipher + "' needs an integrity algorithm in '" + std::string(s) +
                  "' (sha256, sha384 or sha512)");
    auto a = crypto::algo_by_name(cipher + "-" + integ);
    if (!a)
      return fail("unsupported combination " + cipher + "-" + integ + " in '" + std::string(s) +
                  "'");
    p.algo = *a;
  } else {
    return fail("no encryption algorithm in '" + std::string(s) + "'");
  }
  r.value = p;
  return r;
}

const std::vector<IkeProposal>& default_ike_proposals() {
  static const std::vector<IkeProposal> v{
      {IkeEncr::kAes256Gcm16, IkeInteg::kNone, Prf::kHmacSha384, DhGroup::kEcp384},
      {IkeEncr::kAes128Gcm16, IkeInteg::kNone, Prf::kHmacSha256, DhGroup::kEcp256},
      {IkeEncr::kAes256Cbc, IkeInteg::kHmacSha256_128, Prf::kHmacSha256, DhGroup::kModp2048},
  };
  return v;
}

// ESN is offered first: with the 4096-packet windows of high-rate tunnels 32-bit sequence numbers
// run out within hours (2^32 packets); peers without ESN still get 32-bit numbers.
const std::vector<EspProposal>& default_esp_proposals() {
  static const std::vector<EspProposal> v{
      {crypto::Algo::kAesGcm256, DhGroup::kNone, EspEsn::kYesNo},
      {crypto::Algo::kAesGcm128, DhGroup::kNone, EspEsn::kYesNo},
      {crypto::Algo::kAesCbc256Sha256, DhGroup::kNone, EspEsn::kYesNo},
  };
  return v;
}

std::vector<IkeProposal> effective_ike_proposals(const IpsecPolicy& p) {
  if (p.ike.empty()) return default_ike_proposals();
  std::vector<IkeProposal> v;
  for (const auto& s : p.ike)
    if (auto r = parse_ike_proposal(s)) v.push_back(*r.value);
  return v;
}

std::vector<EspProposal> effective_esp_proposals(const IpsecPolicy& p) {
  if (p.esp.empty()) return default_esp_proposals();
  std::vector<EspProposal> v;
  for (const auto& s : p.esp)
    if (auto r = parse_esp_proposal(s)) v.push_back(*r.value);
  return v;
}

}  // namespace espgw::model
