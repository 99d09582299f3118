#include "dataplane/port.h"

#include <net/if.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string_view>

extern char** environ;

namespace espgw::dp {

std::string device_name(const std::string& devargs) { return devargs.substr(0, devargs.find(',')); }

bool run_command(const std::vector<std::string>& argv, std::string* err) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (rc != 0) {
    *err = argv[0] + ": " + std::strerror(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    *err = "'" + cmd + "' failed (status " + std::to_string(status) + ")";
    return false;
  }
  return true;
}

namespace {

// The largest MTU rte_eth_dev_configure accepts: some PMDs (net_tap) report only a maximum
// frame length, and ethdev adds Ethernet header + CRC (18 bytes) to the MTU to compare.
unsigned device_max_mtu(const rte_eth_dev_info& info) {
  unsigned m = info.max_mtu;
  if (info.max_rx_pktlen > 18) m = std::min<unsigned>(m, info.max_rx_pktlen - 18);
  return m;
}

bool start_port(uint16_t id, uint16_t nrxq, uint16_t ntxq, uint16_t mtu, rte_mempool* pool,
                bool rss, uint16_t* nrxq_out, std::string* err) {
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(id, &info); rc != 0) {
    *err = "rte_eth_dev_info_get: " + std::string(rte_strerror(-rc));
    return false;
  }
  // Some PMDs (net_tap) want as many rx as tx queues; the extra rx queues are polled too.
  if (std::string_view(info.driver_name) == "net_tap") nrxq = ntxq;
  *nrxq_out = nrxq;
  if (nrxq > info.max_rx_queues || ntxq > info.max_tx_queues) {
    *err = "device " + std::string(info.driver_name) + " supports " +
           std::to_string(info.max_rx_queues) + " rx / " + std::to_string(info.max_tx_queues) +
           " tx queues; need " + std::to_string(nrxq) + "/" + std::to_string(ntxq);
    return false;
  }
  if (mtu > device_max_mtu(info)) {
    *err = "mtu " + std::to_string(mtu) + " is above the largest " +
           std::string(info.driver_name) + " supports (" + std::to_string(device_max_mtu(info)) +
           ")";
    return false;
  }
  rte_eth_conf conf{};
  conf.rxmode.mtu = mtu;
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  if (rss && nrxq > 1 && info.flow_type_rss_offloads) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  }
  if (int rc = rte_eth_dev_configure(id, nrxq, ntxq, &conf); rc != 0) {
    *err = "rte_eth_dev_configure: " + std::string(rte_strerror(-rc));
    return false;
  }
  uint16_t nrxd = 512, ntxd = 512;
  rte_eth_dev_adjust_nb_rx_tx_desc(id, &nrxd, &ntxd);
  int socket = rte_eth_dev_socket_id(id);
  if (socket < 0) socket = 0;
  for (uint16_t q = 0; q < nrxq; ++q)
    if (int rc = rte_eth_rx_queue_setup(id, q, nrxd, unsigned(socket), nullptr, pool); rc != 0) {
      *err = "rx queue setup: " + std::string(rte_strerror(-rc));
      return false;
    }
  rte_eth_txconf txc = info.default_txconf;
  txc.offloads = conf.txmode.offloads;
  for (uint16_t q = 0; q < ntxq; ++q)
    if (int rc = rte_eth_tx_queue_setup(id, q, ntxd, unsigned(socket), &txc); rc != 0) {
      *err = "tx queue setup: " + std::string(rte_strerror(-rc));
      return false;
    }
  if (int rc = rte_eth_dev_start(id); rc != 0) {
    *err = "rte_eth_dev_start: " + std::string(rte_strerror(-rc));
    return false;
  }
  rte_eth_allmulticast_enable(id);  // IPv6 solicited-node multicast on real NICs
  return true;
}

bool kernel_mac(const std::string& iface, rte_ether_addr& mac) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  bool ok = ioctl(fd, SIOCGIFHWADDR, &ifr) == 0;
  close(fd);
  if (ok) std::memcpy(mac.addr_bytes, ifr.ifr_hwaddr.sa_data, 6);
  return ok;
}

void write_sysctl(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
}

}  // namespace

bool setup_ports(const Config& cfg, Runtime& rt, std::string* err) {
  const auto& dpc = cfg;
  unsigned max_mtu = 1500;
  for (const auto& p : cfg.ports) max_mtu = std::max<unsigned>(max_mtu, p.mtu);
  uint16_t room = uint16_t(RTE_PKTMBUF_HEADROOM + std::max(2048u, max_mtu + 18 + 64));
  int socket = int(rte_socket_id());
  rt.pool = rte_pktmbuf_pool_create("espgw_mbufs", dpc.mbufs, 256, 0, room, socket);
  if (!rt.pool) {
    *err = "cannot create mbuf pool of " + std::to_string(dpc.mbufs) + " mbufs: " +
           rte_strerror(rte_errno);
    return false;
  }
  rt.indirect_pool = rte_pktmbuf_pool_create("espgw_indirect", dpc.mbufs / 4, 64, 0, 0, socket);
  if (!rt.indirect_pool) {
    *err = std::string("cannot create indirect mbuf pool: ") + rte_strerror(rte_errno);
    return false;
  }
  uint16_t nw = uint16_t(rt.n_workers);
  for (const auto& p : cfg.ports) {
    PortRt pr;
    pr.name = p.name;
    pr.mtu = p.mtu;
    pr.addrs = p.addrs;
    for (const auto& a : p.addrs) {
      if (a.addr.is_v4() && !pr.src4.is_set()) pr.src4 = a.addr;
      if (a.addr.is_v6() && !pr.src6.is_set()) pr.src6 = a.addr;
    }
    std::string dev = device_name(p.device);
    if (rte_eth_dev_get_port_by_name(dev.c_str(), &pr.eth_id) != 0) {
      *err = "port " + p.name + ": no DPDK device named " + dev;
      return false;
    }
    if (!start_port(pr.eth_id, nw, uint16_t(nw + 1), p.mtu, rt.pool, true, &pr.nb_rxq, err)) {
      *err = "port " + p.name + " (" + dev + "): " + *err;
      return false;
    }
    rte_eth_macaddr_get(pr.eth_id, &pr.mac);
    rt.ports.push_back(std::move(pr));
  }
  if (cfg.exception_iface.empty()) return true;  // e.g. the perf harness
  PortRt x;
  x.name = "exception:" + cfg.exception_iface;
  x.exception = true;
  std::string dev = device_name(exception_vdev(cfg.exception_iface));
  if (rte_eth_dev_get_port_by_name(dev.c_str(), &x.eth_id) != 0) {
    *err = "exception TAP " + dev + " was not created";
    return false;
  }
  // The TAP's MTU is its own: as large as the largest port's where the TAP allows (net_tap
  // stops at 1500); larger packets for the host kernel are still delivered (a tun write is not
  // bound by the MTU), and what the kernel sends follows the kernel's own path MTU.
  rte_eth_dev_info xinfo{};
  unsigned xmax = rte_eth_dev_info_get(x.eth_id, &xinfo) == 0 ? device_max_mtu(xinfo) : 1500u;
  x.mtu = uint16_t(std::min(std::max(max_mtu, 1500u), std::max(xmax, 1280u)));
  if (!start_port(x.eth_id, 1, uint16_t(nw + 1), x.mtu, rt.pool, false, &x.nb_rxq, err)) {
    *err = "exception port: " + *err;
    return false;
  }
  rte_eth_macaddr_get(x.eth_id, &x.mac);
  if (!kernel_mac(cfg.exception_iface, x.peer_mac)) {
    *err = "cannot read the MAC of " + cfg.exception_iface;
    return false;
  }
  rt.exception_port = uint16_t(rt.ports.size());
  rt.ports.push_back(std::move(x));
  if (rt.ports.size() > kMaxPorts) {
    *err = "too many ports (max " + std::to_string(kMaxPorts - 1) + " data ports)";
    return false;
  }
  return true;
}

bool add_exception_address(const std::string& iface, const IpAddr& a, std::string* err) {
  if (a.is_v4()) return run_command({"ip", "addr", "replace", a.str() + "/32", "dev", iface}, err);
  return run_command({"ip", "-6", "addr", "replace", a.str() + "/128", "dev", iface, "nodad"}, err);
}

bool setup_exception_kernel(const Config& cfg, Runtime& rt, std::string* err) {
  const std::string& x = cfg.exception_iface;
  const std::string conf6 = "/proc/sys/net/ipv6/conf/" + x + "/";
  write_sysctl(conf6 + "accept_ra", "0");
  write_sysctl(conf6 + "autoconf", "0");
  write_sysctl(conf6 + "addr_gen_mode", "1");
  write_sysctl(conf6 + "dad_transmits", "0");
  write_sysctl("/proc/sys/net/ipv4/conf/" + x + "/rp_filter", "0");
  std::string mtu = std::to_string(rt.ports[rt.exception_port].mtu);
  if (!run_command({"ip", "link", "set", "dev", x, "arp", "off", "mtu", mtu, "up"}, err))
    return false;
  bool have4 = false, have6 = false;
  for (const auto& p : cfg.ports) {
    for (const auto& a : p.addrs) {
      if (!add_exception_address(x, a.addr, err)) return false;
      if (a.addr.is_v4()) {
        have4 = true;
        if (!run_command({"ip", "route", "replace", a.connected().str(), "dev", x, "src",
                          a.addr.str()},
                         err))
          return false;
      } else {
        have6 = true;
        if (!run_command({"ip", "-6", "route", "replace", a.connected().str(), "dev", x, "src",
                          a.addr.str()},
                         err))
          return false;
      }
    }
  }
  if (have4 && !run_command({"ip", "route", "replace", "default", "dev", x}, err)) return false;
  if (have6 && !run_command({"ip", "-6", "route", "replace", "default", "dev", x}, err))
    return false;
  return true;
}

}  // namespace espgw::dp
