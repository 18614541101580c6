#!/usr/bin/env bash
# Installs luavirt under PREFIX (default /usr/local), where it finds everything by itself:
#   PREFIX/bin/luavirt                      the command
#   PREFIX/lib/luavirt/drivers/*.so          the QEMU, VMware and Xen drivers (the binary looks
#                                            in ../lib/luavirt/drivers from where it is)
#   PREFIX/share/luavirt/scripts/            the shipped Lua scripts, policies and type file
#   PREFIX/share/man/man1/                   man pages: luavirt.1, luavirt-VERB.1
#   PREFIX/share/bash-completion/completions/luavirt, PREFIX/share/zsh/site-functions/_luavirt,
#   PREFIX/share/fish/vendor_completions.d/luavirt.fish
# Usage: [PREFIX=DIR] [DESTDIR=STAGING] tools/install.sh [--from BUILD_DIR]
# Without --from it builds a release (cargo build --release) and installs target/release;
# --from installs the luavirt and libluavirt_*.so already built in BUILD_DIR (target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${PREFIX:-/usr/local}
root="${DESTDIR:-}$prefix"
from=
case "${1:-}" in
  --from) from=${2:?--from needs the folder holding the built luavirt and drivers} ;;
  "") ;;
  *) echo "install: unknown argument '$1'; usage: [PREFIX=DIR] tools/install.sh [--from BUILD_DIR]" >&2; exit 2 ;;
esac
if [ -z "$from" ]; then
  cargo build --release --locked -p luavirt-core -p luavirt-qemu -p luavirt-vmx -p luavirt-libxl
  from=target/release
fi
drivers=(libluavirt_qemu.so libluavirt_vmx.so libluavirt_libxl.so)
for f in luavirt "${drivers[@]}"; do
  [ -f "$from/$f" ] || { echo "install: $from/$f is missing; build first (cargo build --workspace)" >&2; exit 1; }
done

# Folders everyone may read and only the installer may write: luavirt loads drivers only
# from such folders, whatever the umask.
umask 022
install -d -m 0755 "$root/bin" "$root/lib/luavirt/drivers" "$root/share/luavirt" "$root/share/man/man1" \
  "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
install -m 0755 "$from/luavirt" "$root/bin/luavirt"
for f in "${drivers[@]}"; do
  install -m 0755 "$from/$f" "$root/lib/luavirt/drivers/$f"
done
rm -rf "$root/share/luavirt/scripts"
cp -R scripts "$root/share/luavirt/scripts"
chmod -R u=rwX,go=rX "$root/share/luavirt/scripts"

# Completions and man pages come from the installed binary's own definition of its verbs.
lv="$root/bin/luavirt"
"$lv" completions bash >"$root/share/bash-completion/completions/luavirt"
"$lv" completions zsh >"$root/share/zsh/site-functions/_luavirt"
"$lv" completions fish >"$root/share/fish/vendor_completions.d/luavirt.fish"
"$lv" man "$root/share/man/man1" >/dev/null
"$lv" drivers >/dev/null || { echo "install: the installed luavirt loads no driver" >&2; exit 1; }
echo "Installed luavirt into $root (drivers in $root/lib/luavirt/drivers); try: luavirt drivers"
