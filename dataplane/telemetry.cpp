// /espgw/* commands for DPDK telemetry (dpdk-telemetry.py -f <file-prefix>). Callbacks run on
// DPDK's telemetry thread and only read counters (relaxed loads) and immutable port data.
#include <rte_telemetry.h>

#include <cctype>
#include <cerrno>
#include <string>

#include "dataplane/runtime.h"

namespace espgw::dp {
namespace {
Runtime* g_rt = nullptr;

int tel_counters(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (size_t i = 0; i < kDropNames.size(); ++i)
    rte_tel_data_add_dict_u64(d, ("drop_" + std::string(kDropNames[i])).c_str(),
                              g_rt->counters->total_drop(Drop(i)));
  for (size_t i = 0; i < kEventNames.size(); ++i)
    rte_tel_data_add_dict_u64(d, std::string(kEventNames[i]).c_str(),
                              g_rt->counters->total_event(Event(i)));
  return 0;
}

// Telemetry names allow only [A-Za-z0-9_/]; port names are sanitized.
std::string tel_name(std::string s) {
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '/') c = '_';
  return s;
}

int tel_ports(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (uint16_t i = 0; i < g_rt->ports.size(); ++i) {
    PortCounters c = g_rt->counters->total_port(i);
    rte_tel_data* p = rte_tel_data_alloc();
    if (!p) return -ENOMEM;
    rte_tel_data_start_dict(p);
    rte_tel_data_add_dict_u64(p, "rx_packets", c.rx_packets);
    rte_tel_data_add_dict_u64(p, "rx_bytes", c.rx_bytes);
    rte_tel_data_add_dict_u64(p, "tx_packets", c.tx_packets);
    rte_tel_data_add_dict_u64(p, "tx_bytes", c.tx_bytes);
    rte_tel_data_add_dict_u64(p, "ethdev", g_rt->ports[i].eth_id);
    rte_tel_data_add_dict_container(d, tel_name(g_rt->ports[i].name).c_str(), p, 0);
  }
  return 0;
}

int tel_lcore(const char*, const char* params, rte_tel_data* d) {
  if (!params || !*params) return -1;
  char* end = nullptr;
  unsigned long lc = strtoul(params, &end, 10);
  if (*end || lc >= kMaxLcores) return -1;
  const auto& c = g_rt->counters->lcore[lc];
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "polls", peek(c.polls));
  rte_tel_data_add_dict_u64(d, "busy_polls", peek(c.busy_polls));
  for (size_t i = 0; i < kDropNames.size(); ++i)
    rte_tel_data_add_dict_u64(d, ("drop_" + std::string(kDropNames[i])).c_str(), peek(c.drops[i]));
  for (size_t i = 0; i < kEventNames.size(); ++i)
    rte_tel_data_add_dict_u64(d, std::string(kEventNames[i]).c_str(), peek(c.events[i]));
  return 0;
}
}  // namespace

void register_telemetry(Runtime& rt) {
  g_rt = &rt;
  rte_telemetry_register_cmd("/espgw/counters", tel_counters,
                             "espgw drop reasons (drop_*) and events, summed over lcores");
  rte_telemetry_register_cmd("/espgw/ports", tel_ports, "espgw per-port packet/byte counters");
  rte_telemetry_register_cmd("/espgw/lcore", tel_lcore,
                             "espgw counters of one lcore. Parameters: int lcore_id");
}

}  // namespace espgw::dp
