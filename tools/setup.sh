#!/usr/bin/env bash
# Installs what luavirt's demo and tests need, if it is missing: QEMU 7.2 (qemu-system-x86
# with a matching qemu-utils), libvirt's schema checker (virt-xml-validate, which needs
# xmllint), a C compiler, Python 3, time zones (tzdata), script(1) (bsdutils), Xen's xl
# with its config parser (xen-utils; the libxl driver's tests read configs with Xen's own
# parser and check what xl says without a hypervisor), and OpenSSH (ssh carries remote
# connections; the remote tests run a private sshd). Run as root on a fresh machine; it does
# nothing when everything is there.
set -euo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1"); }
need qemu-system-x86_64
need qemu-img
need qemu-io
need virt-xml-validate
need xmllint
need cc
need python3
need ssh
need ssh-keygen
# Time zones (tests print times in several TZs) and script(1), which gives a test a terminal.
[ -e /usr/share/zoneinfo/Asia/Kolkata ] || missing+=(tzdata)
need script
# xl and sshd live in /usr/sbin, which a user's PATH may lack.
[ -x /usr/sbin/xl ] || command -v xl >/dev/null 2>&1 || missing+=(xl)
[ -x /usr/sbin/sshd ] || missing+=(sshd)

# qemu-img and qemu-system-x86_64 must come from the same QEMU: a machine that ships
# qemu-utils 10 has no qemu-system-x86, and Debian 12's qemu-system-x86 is 7.2.
if command -v qemu-system-x86_64 >/dev/null 2>&1 && command -v qemu-img >/dev/null 2>&1; then
  sys=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\.[0-9]*\).*/\1/p')
  img=$(qemu-img --version | sed -n 's/.*version \([0-9]*\.[0-9]*\).*/\1/p')
  [ "$sys" = "$img" ] || missing+=("qemu-img $img differs from qemu-system $sys")
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run this as root (or with sudo) to install them with apt-get" >&2
  exit 1
fi
. /etc/os-release
release=${VERSION_CODENAME:-bookworm}
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Pinning qemu-utils and qemu-block-extra to the release downgrades a newer backport so
# that all QEMU packages are one version.
apt-get install -y -q --allow-downgrades \
  qemu-system-x86 "qemu-utils/$release" "qemu-block-extra/$release" \
  libvirt-clients libxml2-utils gcc python3 tzdata bsdutils openssh-client openssh-server
# Without recommends: they would pull in the hypervisor and Xen's own QEMU. Its udev step
# may fail in containers; xl and its libraries are in place all the same.
if [ ! -x /usr/sbin/xl ]; then
  apt-get install -y -q --no-install-recommends "xen-utils-4.17" || [ -x /usr/sbin/xl ]
fi
echo "setup: installed $(qemu-system-x86_64 --version | head -n 1)"
