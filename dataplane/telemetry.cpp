// /espgw/* commands for DPDK telemetry (dpdk-telemetry.py -f <file-prefix>). Callbacks run on
// DPDK's telemetry thread and only read counters (relaxed loads) and immutable port data.
#include <rte_telemetry.h>

#include <string>

#include "dataplane/control.h"

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

int tel_ports(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (uint16_t i = 0; i < g_rt->ports.size(); ++i) {
    PortCounters c = g_rt->counters->total_port(i);
    std::string n = g_rt->ports[i].name;
    rte_tel_data_add_dict_u64(d, (n + ".rx_packets").c_str(), c.rx_packets);
    rte_tel_data_add_dict_u64(d, (n + ".rx_bytes").c_str(), c.rx_bytes);
    rte_tel_data_add_dict_u64(d, (n + ".tx_packets").c_str(), c.tx_packets);
    rte_tel_data_add_dict_u64(d, (n + ".tx_bytes").c_str(), c.tx_bytes);
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

void register_telemetry(Runtime& rt, Control&) {
  g_rt = &rt;
  rte_telemetry_register_cmd("/espgw/counters", tel_counters,
                             "espgw drop reasons (drop_*) and events, summed over lcores");
  rte_telemetry_register_cmd("/espgw/ports", tel_ports, "espgw per-port packet/byte counters");
  rte_telemetry_register_cmd("/espgw/lcore", tel_lcore,
                             "espgw counters of one lcore. Parameters: int lcore_id");
}

}  // namespace espgw::dp
