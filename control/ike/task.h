// One IKE exchange as seen by its initiator (strongSwan's task_t): build() fills the request,
// process() handles the response. The responder side of each exchange is a function in the same
// task file (tasks/tasks.h). The TaskManager runs tasks one at a time (window size 1).
#pragma once

#include <vector>

#include "control/ike/message.h"

namespace espgw::ike {

struct IkeSa;
class Daemon;

class Task {
 public:
  enum class Result { kDone, kRetry, kFailed };
  virtual ~Task() = default;
  virtual const char* name() const = 0;
  virtual ExchangeType exchange() const = 0;
  // Fills the request payloads; false = nothing to do any more (the task is dropped).
  virtual bool build(Daemon& d, IkeSa& sa, std::vector<Payload>& out) = 0;
  // Handles the response. kRetry: build and send again with the same message ID (IKE_SA_INIT
  // after COOKIE or INVALID_KE_PAYLOAD).
  virtual Result process(Daemon& d, IkeSa& sa, const Message& resp) = 0;
  // The peer did not answer within the retransmission budget.
  virtual void timeout(Daemon&, IkeSa&) {}
  // The task is dropped unfinished because its IKE SA goes: release what it holds (SPIs).
  virtual void abort(Daemon&, IkeSa&) {}
};

}  // namespace espgw::ike
