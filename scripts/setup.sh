#!/usr/bin/env bash
# Installs every Debian package espgw and its tests need (as root), then builds into build/.
# Idempotent: apt-get update runs once, and only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  g++ meson ninja-build pkg-config
  dpdk dpdk-dev libdpdk-dev libipsec-mb-dev libyaml-cpp-dev libssl-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # tests: namespaces, kernel peers, the independent checks
  iproute2 iputils-ping tcpdump ethtool python3 python3-pytest python3-scapy python3-cryptography python3-yaml
  python3-matplotlib
  # real peers for interop tests
  strongswan-swanctl charon-systemd libcharon-extra-plugins libstrongswan-extra-plugins
  libstrongswan-standard-plugins
  bird2 frr gobgpd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD=${ESPGW_BUILD:-build}
if [[ ! -f $BUILD/build.ninja ]]; then
  meson setup "$BUILD" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD"
