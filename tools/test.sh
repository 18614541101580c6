#!/usr/bin/env bash
# Runs every test: installs missing system packages (tools/setup.sh), builds the luavirt
# binary and all plugins, then runs the unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo build --workspace --locked
cargo test --workspace --locked "$@"
