#!/usr/bin/env bash
# The main job on an embedded default: defines a domain with a qcow2 and a raw disk made by
# qemu-img, manages its disk sets, starts it under QEMU (TCG), shows it running from another
# process, destroys it, snapshots it and lists it from a Lua script. Everything happens in a
# temporary state folder that is removed at the end (set KEEP=1 to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo build --workspace --locked --quiet

work=$(mktemp -d /tmp/luavirt-demo.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'target/debug/luavirt destroy demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export LUAVIRT_STATE_DIR="$work/state"
export PATH="$PWD/target/debug:$PATH"

step() { printf '\n$ %s\n' "$*"; "$@"; }

qemu-img create -q -f qcow2 "$work/system.qcow2" 256M
qemu-img create -q -f raw "$work/scratch.raw" 64M
sed "s|@WORK@|$work|g" examples/demo/demo.xml > "$work/demo.xml"

step luavirt drivers
step cat "$work/demo.xml"
step luavirt define "$work/demo.xml"
step luavirt domblklist demo --details
step luavirt diskset list demo
step luavirt diskset add demo vda
step luavirt diskset add demo vda
step luavirt diskset add-all demo --set migrate
step luavirt diskset remove demo vdb --set migrate
step luavirt diskset list demo --set migrate --json
step luavirt start demo
step luavirt list
step luavirt domstate demo
step pgrep -af "qemu-system-x86_64 -name guest=demo"
step luavirt destroy demo
step luavirt list --all
step luavirt dumpxml demo
# A snapshot of the qcow2 + raw domain (libvirt 9.0 refuses this one), and a Lua script.
step luavirt snapshot-create-as demo before-upgrade --print-plan
step luavirt snapshot-create-as demo before-upgrade
step luavirt snapshot-list demo --parent
step luavirt run examples/lua/inventory.lua
