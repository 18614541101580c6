# Installs and starts libvirt 9.0 (Debian bookworm's) for the benchmark's comparison, when it
# is missing. Sourced by tools/bench.sh; every step is idempotent, so a second run only checks.
# These machines have no systemd: libvirtd and virtlogd are started by hand as daemons.

# Installs libvirtd, its QEMU driver and virsh. QEMU's packages are pinned to the release in
# the same apt-get call (as tools/setup.sh does): a newer qemu-utils from backports conflicts
# with Debian 12's qemu-system-x86 7.2, and apt must not pick it while resolving libvirt.
libvirt_install() {
  if command -v libvirtd >/dev/null && command -v virtlogd >/dev/null && command -v virsh >/dev/null \
    && [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ]; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "libvirt is missing: run tools/bench.sh as root to install it"
  . /etc/os-release
  local release=${VERSION_CODENAME:-bookworm}
  note "installing libvirt (libvirtd, its QEMU driver, virsh) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends --allow-downgrades \
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
    qemu-system-x86 "qemu-utils/$release" "qemu-block-extra/$release" >/dev/null
}

# libvirtd runs QEMU as root with no security driver: these containers have neither the
# libvirt-qemu user's access to /tmp images nor AppArmor/SELinux.
libvirt_configure() {
  mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null \
    || useradd --system --no-create-home --gid libvirt-qemu --shell /usr/sbin/nologin libvirt-qemu
  local conf=/etc/libvirt/qemu.conf
  touch "$conf"
  set_conf "$conf" user '"root"'
  set_conf "$conf" group '"root"'
  set_conf "$conf" security_driver '"none"'
}

# Sets `key = value` in a libvirt config file: drops the lines that set it, then appends
# one (the commented-out examples stay as they are).
set_conf() {
  local file=$1 key=$2 value=$3
  sed -i -E "/^[[:space:]]*${key}[[:space:]]*=/d" "$file"
  printf '%s = %s\n' "$key" "$value" >>"$file"
}

# Starts virtlogd (libvirtd hands QEMU's output to it) and libvirtd if they are not running,
# then waits until virsh gets an answer.
libvirt_start() {
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  local _
  for _ in $(seq 50); do
    virsh -c qemu:///system version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "libvirtd does not answer on qemu:///system (see /var/log/libvirt)"
}

libvirt_ready() {
  libvirt_install
  libvirt_configure
  libvirt_start
}
