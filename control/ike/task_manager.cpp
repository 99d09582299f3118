#include "control/ike/task_manager.h"

#include <algorithm>

#include "control/ike/daemon.h"
#include "control/ike/ike_sa.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

void TaskManager::queue(std::unique_ptr<Task> t, bool front) {
  if (front)
    queue_.push_front(std::move(t));
  else
    queue_.push_back(std::move(t));
}

void TaskManager::clear() {
  queue_.clear();
  active_.reset();
  req_.clear();
}

void TaskManager::abort(Daemon& d, IkeSa& sa) {
  if (active_) active_->abort(d, sa);
  for (auto& t : queue_) t->abort(d, sa);
  clear();
}

void TaskManager::initiate(Daemon& d, IkeSa& sa) {
  while (!active_ && !queue_.empty()) {
    active_ = std::move(queue_.front());
    queue_.pop_front();
    retries_ = 0;
    send_request(d, sa);
  }
}

void TaskManager::send_request(Daemon& d, IkeSa& sa) {
  std::vector<Payload> payloads;
  if (!active_->build(d, sa, payloads)) {
    active_.reset();
    return;
  }
  ExchangeType ex = active_->exchange();
  if (ex == ExchangeType::kIkeSaInit) out_id_ = 0;
  auto msg = d.encode_packets(sa, ex, false, out_id_, payloads);
  if (!msg) {
    d.fail(sa, "cannot encode " + to_string(ex) + " request");
    return;
  }
  req_ = std::move(*msg);
  if (ex == ExchangeType::kIkeSaInit) sa.init_request = req_.front();
  first_ms_ = d.now();
  tries_ = 0;
  next_ms_ = first_ms_ + d.tun().retransmit_base_ms;
  d.send(sa, req_);
}

void TaskManager::on_response(Daemon& d, IkeSa& sa, const Message& m, ByteView raw) {
  if (!active_ || m.hdr.message_id != out_id_ || m.hdr.exchange != active_->exchange()) {
    d.refuse("unexpected_response", sa.label() + ": " + to_string(m.hdr.exchange) + " response " +
                                        std::to_string(m.hdr.message_id) +
                                        " matches no request of ours");
    return;
  }
  if (m.hdr.exchange == ExchangeType::kIkeSaInit) sa.init_response.assign(raw.begin(), raw.end());
  Task::Result r = active_->process(d, sa, m);
  if (sa.state == IkeState::kDead) return;  // the task failed the SA (which cleared us)
  if (m.hdr.exchange != ExchangeType::kIkeSaInit || r != Task::Result::kRetry) ++out_id_;
  if (r == Task::Result::kRetry && ++retries_ <= d.tun().max_retries) {
    send_request(d, sa);
    return;
  }
  active_.reset();
  req_.clear();
  initiate(d, sa);
}

void TaskManager::on_request(Daemon& d, IkeSa& sa, const Message& m) {
  uint32_t id = m.hdr.message_id;
  if (have_resp_ && id + 1 == in_id_) {  // retransmitted request: same answer
    d.send(sa, resp_);
    return;
  }
  if (id != in_id_) {
    d.refuse("message_id_out_of_window", sa.label() + ": request " + std::to_string(id) +
                                             ", expected " + std::to_string(in_id_));
    return;
  }
  ExchangeType ex = m.hdr.exchange;
  if (ex != ExchangeType::kIkeAuth && ex != ExchangeType::kCreateChildSa &&
      ex != ExchangeType::kInformational) {
    d.refuse("unsupported_exchange", sa.label() + ": request of exchange type " +
                                         std::to_string(unsigned(ex)));
    return;
  }
  d.on_new_request(sa);
  std::vector<Payload> out;
  switch (m.hdr.exchange) {
    case ExchangeType::kIkeAuth:
      respond_ike_auth(d, sa, m, out);
      break;
    case ExchangeType::kCreateChildSa:
      respond_create_child(d, sa, m, out);
      break;
    case ExchangeType::kInformational:
      respond_informational(d, sa, m, out);
      break;
    default:
      return;
  }
  auto msg = d.encode_packets(sa, m.hdr.exchange, true, id, out);
  if (!msg) return;
  resp_ = std::move(*msg);
  have_resp_ = true;
  in_id_ = id + 1;
  d.send(sa, resp_);
}

void TaskManager::reject_request(Daemon& d, IkeSa& sa, const Header& req, NotifyPayload n) {
  uint32_t id = req.message_id;
  if (have_resp_ && id + 1 == in_id_) {
    d.send(sa, resp_);
    return;
  }
  if (id != in_id_) {
    d.refuse("message_id_out_of_window", sa.label() + ": request " + std::to_string(id) +
                                             ", expected " + std::to_string(in_id_));
    return;
  }
  auto msg = d.encode_packets(sa, req.exchange, true, id, {make_payload(std::move(n))});
  if (!msg) return;
  resp_ = std::move(*msg);
  have_resp_ = true;
  in_id_ = id + 1;
  d.send(sa, resp_);
}

void TaskManager::tick(Daemon& d, IkeSa& sa, uint64_t now) {
  if (!active_ || req_.empty() || now < next_ms_) return;
  // With the liveness check after dpd_timeout/3 of silence, a dead peer is declared within
  // dpd_timeout (the last second covers the 1 s granularity of that check).
  uint64_t budget = uint64_t(sa.conn->dpd_timeout_s) * 1000 * 2 / 3;
  budget = budget > 2000 ? budget - 1000 : budget;
  if (now - first_ms_ >= budget) {
    active_->timeout(d, sa);
    if (sa.state != IkeState::kDead)
      d.fail(sa, std::string(active_ ? active_->name() : "exchange") + ": peer did not answer",
             true);
    return;
  }
  ++tries_;
  ++total_retransmits_;
  uint64_t iv = d.tun().retransmit_base_ms << std::min(tries_, 10u);
  next_ms_ = now + std::min(iv, d.tun().retransmit_max_ms);
  next_ms_ = std::min(next_ms_, first_ms_ + budget);
  d.send(sa, req_);
}

}  // namespace espgw::ike
