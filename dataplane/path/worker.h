// The poll-mode worker: rx burst -> classify -> route (bulk FIB lookups) -> tx burst.
#pragma once

#include "dataplane/runtime.h"

namespace espgw::dp {

struct WorkerArgs {
  Runtime* rt;
  unsigned index;  // 0..n_workers-1: rx/tx queue id on every port
};

// rte_eal_remote_launch entry point; returns when rt->running becomes false.
int worker_main(void* args);

}  // namespace espgw::dp
