# Sourced by scripts/run and scripts/test: installs the Debian packages the
# build needs, and nothing when they are all there already.
# Usage: install_packages PKG...

install_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building servent needs (see README.md).
BUILD_PACKAGES=(build-essential cmake pkg-config libuv1-dev node-llhttp libssl-dev libfmt-dev zlib1g-dev libpcap-dev nlohmann-json3-dev libncurses-dev libabsl-dev)
# What the tests need on top: the test framework, and the real programs they
# drive or check against (curl; tshark and dumpcap for the Wireshark cross-check;
# libtorrent through Debian's own python3, aria2c, ctorrent and transmission-cli
# for BitTorrent).
TEST_PACKAGES=(doctest-dev curl tshark tmux python3-libtorrent aria2 ctorrent transmission-cli opentracker)
