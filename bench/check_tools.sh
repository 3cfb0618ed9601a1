#!/usr/bin/env bash
# wrk drives the throughput figures. Without it a Python thread pool does, and that pool caps the hello-world floor
# long before the instance is busy, which flatters every ratio taken against it: installed when missing and we are root.
set -euo pipefail

if ! command -v wrk >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing wrk (Debian package wrk) for the throughput benchmarks"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "!! wrk is missing (Debian package wrk): throughput will be driven by a Python thread pool" >&2
  fi
fi
