// Runs an IKE SA's exchanges (strongSwan's task_manager_t): a queue of initiator tasks executed
// one at a time (message ID window 1), retransmission with exponential back-off until a budget is
// used up, and the responder side's message ID check with the cached last response for
// retransmitted requests.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "control/ike/task.h"
#include "control/ike/wire.h"

namespace espgw::ike {

class TaskManager {
 public:
  void queue(std::unique_ptr<Task> t, bool front = false);
  bool busy() const { return active_ != nullptr; }
  bool idle() const { return !active_ && queue_.empty(); }
  const Task* active() const { return active_.get(); }
  // Starts the next queued task when no exchange is outstanding.
  void initiate(Daemon& d, IkeSa& sa);
  // A response (decrypted) to our outstanding request; raw is the message as received.
  void on_response(Daemon& d, IkeSa& sa, const Message& m, ByteView raw);
  // A request (decrypted): answered once in order; a retransmission gets the cached response.
  void on_request(Daemon& d, IkeSa& sa, const Message& m);
  // An authentic request we cannot process (e.g. an unsupported critical payload): answered with
  // the notify under the usual message ID rules (a retransmission gets the cached response).
  void reject_request(Daemon& d, IkeSa& sa, const Header& req, NotifyPayload n);
  // The IKE SA goes: every queued or active task releases what it holds, then the queue is empty.
  void abort(Daemon& d, IkeSa& sa);
  // Retransmits; on the exhausted budget the task's timeout() runs and the SA is failed.
  void tick(Daemon& d, IkeSa& sa, uint64_t now);

  // The responder's IKE_SA_INIT answer is sent by the daemon; it becomes the cached response.
  void set_init_response(Bytes resp) {
    resp_ = {std::move(resp)};
    have_resp_ = true;
    in_id_ = 1;
  }
  // The datagrams of the last response (several: IKE fragments, RFC 7383).
  const std::vector<Bytes>& cached_response() const { return resp_; }
  void set_next_out(uint32_t id) { out_id_ = id; }
  uint32_t next_out() const { return out_id_; }
  uint32_t next_in() const { return in_id_; }
  unsigned retransmits() const { return total_retransmits_; }
  void clear();

 private:
  void send_request(Daemon& d, IkeSa& sa);
  std::deque<std::unique_ptr<Task>> queue_;
  std::unique_ptr<Task> active_;
  uint32_t out_id_ = 0, in_id_ = 0;
  std::vector<Bytes> req_;  // the outstanding request's datagrams
  uint64_t first_ms_ = 0, next_ms_ = 0;
  unsigned tries_ = 0, total_retransmits_ = 0, retries_ = 0;
  std::vector<Bytes> resp_;
  bool have_resp_ = false;
};

}  // namespace espgw::ike
