// The IKE exchanges. Each file holds one exchange: its initiator task (build/process) and the
// responder's handling of the request.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "control/ike/message.h"
#include "control/ike/task.h"
#include "control/ike/transforms.h"

namespace espgw::ike {

struct IkeSa;
class Daemon;

// IKE_SA_INIT (tasks/ike_init.cpp); the responder side is Daemon::handle_init_request.
std::unique_ptr<Task> make_ike_init();
// IKE_AUTH with the first Child SA (tasks/ike_auth.cpp).
std::unique_ptr<Task> make_ike_auth();
void respond_ike_auth(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out);
// CREATE_CHILD_SA rekeying a Child SA, identified by its inbound SPI (tasks/child_rekey.cpp).
std::unique_ptr<Task> make_child_rekey(uint32_t spi_in);
void respond_create_child(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out);
// CREATE_CHILD_SA creating a Child SA for an IKE SA that has none left (the only one was deleted
// by the peer or expired): no REKEY_SA; the responder side is respond_create_child
// (tasks/child_create.cpp).
std::unique_ptr<Task> make_child_create();
// CREATE_CHILD_SA rekeying the IKE SA (tasks/ike_rekey.cpp).
std::unique_ptr<Task> make_ike_rekey();
void respond_ike_rekey(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out);
// INFORMATIONAL with DELETE (tasks/delete.cpp): Child SAs by inbound SPI, or the IKE SA.
std::unique_ptr<Task> make_child_delete(std::vector<uint32_t> spis_in);
std::unique_ptr<Task> make_ike_delete();
// INFORMATIONAL with AUTHENTICATION_FAILED after we rejected the responder's AUTH (2.21.2); the
// IKE SA goes once it is answered or timed out.
std::unique_ptr<Task> make_auth_failed();
// INFORMATIONAL without payloads: liveness check (tasks/dpd.cpp). Also the responder of every
// INFORMATIONAL request (deletes, notifies, empty).
std::unique_ptr<Task> make_dpd();
void respond_informational(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out);

// Helpers shared by the tasks (tasks/common.cpp).
const NotifyPayload* first_error(const Message& m);
// A CREATE_CHILD_SA answer of INVALID_KE_PAYLOAD names the group the peer wants (RFC 7296
// 1.2/1.3): true, with `group` set to it, when it is another group we can make, so the exchange
// is retried with that group.
bool take_requested_group(Daemon& d, const Message& m, uint16_t& group);
// Responder traffic-selector narrowing: the intersection of the peer's selectors with ours.
std::vector<TrafficSelector> narrow_ts(const std::vector<TrafficSelector>& theirs,
                                       const std::vector<TrafficSelector>& ours);
// True if every selector of `got` lies within one of `offered`.
bool ts_subset(const std::vector<TrafficSelector>& got,
               const std::vector<TrafficSelector>& offered);
// The address ranges of selectors as a minimal set of prefixes (what the data plane checks inner
// source addresses against; protocol and ports are not enforced there).
std::vector<Prefix> ts_prefixes(const std::vector<TrafficSelector>& ts);
Proposal with_spi(Proposal p, uint32_t spi);
std::vector<Proposal> with_spi(std::vector<Proposal> ps, uint32_t spi);
std::vector<Proposal> with_ike_spi(std::vector<Proposal> ps, uint64_t spi);
uint32_t spi32_of(const Proposal& p);
uint64_t spi64_of(const Proposal& p);
// accept_reply() with the reply's transforms in type order first: accept_reply compares against
// match(), which lists transforms by type, while peers (strongSwan: ENCR, INTEG, PRF, DH) may not.
std::optional<Suite> accept_response(const std::vector<Proposal>& offered, const SaPayload& reply);
Bytes nat_hash_bytes(uint64_t spi_i, uint64_t spi_r, const Endpoint& e);

}  // namespace espgw::ike
