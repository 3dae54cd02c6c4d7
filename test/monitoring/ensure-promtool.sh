#!/usr/bin/env bash
# Makes sure promtool (from Debian's prometheus package) is installed and prints its path on the
# last line. A fresh CI machine lacks it; CI and the sessions run as root, so apt-get can install it.
# Concurrent callers serialise on a lock file so that two jest workers never run apt-get at once.
set -euo pipefail

if command -v promtool >/dev/null; then
  command -v promtool
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-promtool.sh: promtool is missing; install Debian's prometheus package (needs root)" >&2
  exit 1
fi

lock_dir="${XDG_CACHE_HOME:-$HOME/.cache}/dynamokv"
mkdir -p "$lock_dir"
exec 9>"$lock_dir/promtool-install.lock"
flock 9
if ! command -v promtool >/dev/null; then
  echo "ensure-promtool.sh: installing Debian's prometheus package for promtool" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A machine whose package lists were never fetched has no candidate; fetch them once and retry.
  if ! apt-get install -y --no-install-recommends prometheus >&2; then
    apt-get update >&2
    apt-get install -y --no-install-recommends prometheus >&2
  fi
  # The package starts a prometheus service where an init system runs; tests need only promtool.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus >&2 || true
  fi
fi
command -v promtool
