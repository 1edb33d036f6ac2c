# shellcheck shell=bash
# Shared by the scripts that build the shoot guest (scripts/guest-image,
# scripts/guest-kernel) and its QEMU (scripts/qemu) from Debian packages. Source it; it
# defines:
#
#   missing_packages TOOL=PACKAGE...
#                              prints, one per line, the package of each TOOL not on PATH
#   install_packages PACKAGE...
#                              installs them (as root; refuses otherwise), updating apt's
#                              index only when the install fails without it
#
# Only what is missing is installed, so a prepared machine never calls apt.

missing_packages() {
  local pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || echo "${pair#*=}"
  done
}

install_packages() {
  (($# > 0)) || return 0
  if [[ $(id -u) != 0 ]]; then
    echo "missing packages ($*); install them as root" >&2
    return 1
  fi
  echo "installing $*" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
  fi
}
