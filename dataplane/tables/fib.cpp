#include "dataplane/tables/fib.h"
#include "dataplane/sizing.h"

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_rcu_qsbr.h>
#include <rte_rib.h>
#include <rte_rib6.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace espgw::dp {

Fib::~Fib() {
  for (auto& c : copies_) {
    if (c.v4) rte_fib_free(c.v4);
    if (c.v6) rte_fib6_free(c.v6);
  }
}

bool Fib::init(const std::string& name, int socket, unsigned max_v4, unsigned max_v6,
               rte_rcu_qsbr* qsbr, std::string* err) {
  qsbr_ = qsbr;
  for (int i = 0; i < 2; ++i) {
    rte_fib_conf c4{};
    c4.type = RTE_FIB_DIR24_8;
    c4.default_nh = 0;
    c4.max_routes = int(max_v4);
    c4.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
    c4.dir24_8.num_tbl8 = fib_tbl8_v4(max_v4);
    std::string n4 = name + "4_" + std::to_string(i);
    copies_[i].v4 = rte_fib_create(n4.c_str(), socket, &c4);
    if (!copies_[i].v4) {
      *err = "rte_fib_create(" + n4 + ") failed: " + rte_strerror(rte_errno);
      return false;
    }
    rte_fib6_conf c6{};
    c6.type = RTE_FIB6_TRIE;
    c6.default_nh = 0;
    c6.max_routes = int(max_v6);
    c6.trie.nh_sz = RTE_FIB6_TRIE_4B;
    c6.trie.num_tbl8 = fib_tbl8_v6(max_v6);
    std::string n6 = name + "6_" + std::to_string(i);
    copies_[i].v6 = rte_fib6_create(n6.c_str(), socket, &c6);
    if (!copies_[i].v6) {
      *err = "rte_fib6_create(" + n6 + ") failed: " + rte_strerror(rte_errno);
      return false;
    }
  }
  active_.store(&copies_[0], std::memory_order_release);
  return true;
}

int Fib::apply_one(FibCopy& c, const FibChange& ch) {
  const Prefix& p = ch.prefix;
  int rc;
  if (p.addr.is_v4()) {
    rc = ch.del ? rte_fib_delete(c.v4, p.addr.v4_host(), p.len)
                : rte_fib_add(c.v4, p.addr.v4_host(), p.len, ch.nh);
  } else {
    uint8_t ip[16];
    std::copy(p.addr.bytes.begin(), p.addr.bytes.end(), ip);
    rc = ch.del ? rte_fib6_delete(c.v6, ip, p.len) : rte_fib6_add(c.v6, ip, p.len, ch.nh);
  }
  // Deleting an absent route is not an error for us (idempotent withdrawals).
  if (ch.del && rc == -ENOENT) return 0;
  return rc;
}

namespace {
// The exact route for a prefix in one copy (from the RIB behind the FIB).
struct Prior {
  bool present = false;
  uint64_t nh = 0;
};
Prior exact(const FibCopy& c, const Prefix& p) {
  Prior r;
  if (p.addr.is_v4()) {
    rte_rib_node* n = rte_rib_lookup_exact(rte_fib_get_rib(c.v4), p.addr.v4_host(), p.len);
    if (n && rte_rib_get_nh(n, &r.nh) == 0) r.present = true;
  } else {
    uint8_t ip[16];
    std::copy(p.addr.bytes.begin(), p.addr.bytes.end(), ip);
    rte_rib6_node* n = rte_rib6_lookup_exact(rte_fib6_get_rib(c.v6), ip, p.len);
    if (n && rte_rib6_get_nh(n, &r.nh) == 0) r.present = true;
  }
  return r;
}

// What an operator can act on: which limit of the dataplane config was hit.
std::string fib_error(const FibChange& ch, int rc) {
  const char* fam = ch.prefix.addr.is_v4() ? "max_routes_v4" : "max_routes_v6";
  // DIR24_8 / TRIE refuse a prefix that needs a tbl8 group when none is free (ENOSPC); the RIB
  // behind the FIB refuses a node when it holds max_routes nodes (ENOMEM / ENOSPC).
  if (rc == -ENOSPC || rc == -ENOMEM)
    return std::string("FIB full (") + fam + " routes or its tbl8 groups exhausted)";
  return std::string("FIB refused the route: ") + rte_strerror(-rc);
}
}  // namespace

bool Fib::apply(std::span<const FibChange> batch, std::vector<FibFailure>* failed) {
  if (batch.empty()) return true;
  std::vector<FibFailure> local;
  if (!failed) failed = &local;
  const size_t failed_before = failed->size();
  const FibCopy* cur = active_.load(std::memory_order_relaxed);
  FibCopy& next = cur == &copies_[0] ? copies_[1] : copies_[0];
  FibCopy& old = cur == &copies_[0] ? copies_[0] : copies_[1];
  // 1. the copy no worker reads; a change that does not fit leaves its prefix as it was
  // (rte_fib_add undoes its own partial work) and the others go on.
  std::vector<size_t> done;
  done.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    int rc = apply_one(next, batch[i]);
    if (rc == 0) done.push_back(i);
    else failed->push_back({i, fib_error(batch[i], rc)});
  }
  if (done.empty()) return false;  // nothing changed, nothing to publish
  // 2. publish, 3. wait until no worker can still be reading the old copy
  active_.store(&next, std::memory_order_release);
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  // 4. replay onto the old copy. Both copies see the same sequence of successful operations,
  // so this fits too; should it not, the change is taken back out of the published copy (after
  // publishing the old one again) so that both copies agree and the caller is told.
  std::vector<size_t> diverged;
  for (size_t i : done)
    if (apply_one(old, batch[i]) != 0) diverged.push_back(i);
  if (!diverged.empty()) {
    active_.store(&old, std::memory_order_release);
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    for (size_t i : diverged) {
      Prior pr = exact(old, batch[i].prefix);
      apply_one(next, {batch[i].prefix, uint32_t(pr.nh), !pr.present});
      failed->push_back({i, "FIB copies disagree: change taken back"});
    }
    std::sort(failed->begin() + ptrdiff_t(failed_before), failed->end(),
              [](const FibFailure& a, const FibFailure& b) { return a.index < b.index; });
  }
  ++generation_;
  return failed->size() == failed_before;
}

}  // namespace espgw::dp
