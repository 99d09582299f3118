#include "control/bgp/codec.h"

#include <utility>

namespace espgw::bgp {

void Verdict::raise(Outcome o, const std::string& why) {
  if (o > outcome) outcome = o;
  if (!why.empty()) reason += (reason.empty() ? "" : "; ") + why;
}

void Verdict::reset(uint8_t code, uint8_t subcode, Bytes data, const std::string& why) {
  if (outcome != Outcome::kSessionReset)
    notification = Notification{code, subcode, std::move(data)};
  raise(Outcome::kSessionReset, why);
}

void Verdict::discard(uint8_t type_code, const std::string& why) {
  discarded.push_back(type_code);
  raise(Outcome::kAttributeDiscard, why);
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kAttributeDiscard:
      return "attribute-discard";
    case Outcome::kTreatAsWithdraw:
      return "treat-as-withdraw";
    case Outcome::kSessionReset:
      return "session-reset";
  }
  return "?";
}

}  // namespace espgw::bgp
