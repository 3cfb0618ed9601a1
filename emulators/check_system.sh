#!/usr/bin/env bash
# The system packages the local stack needs: PostgreSQL server binaries and Chromium (installed when missing and we
# are root) and, optionally, the Google Cloud CLI's Firestore and Pub/Sub emulators (cannot be installed everywhere).
set -euo pipefail

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && ! command -v postgres >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL server binaries (Debian package postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries are missing: install Debian's postgresql package" >&2
    exit 1
  fi
fi
# Chromium (Debian's package) for the browser test of CORS and the /_kit/ page; playwright-core drives it headless.
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing Chromium (Debian package chromium) for the browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-liberation >/dev/null; } || echo "!! Chromium could not be installed: the browser test will be skipped" >&2
  else
    echo "!! Chromium is missing (Debian: apt-get install chromium): the browser test will be skipped" >&2
  fi
fi
if ! command -v java >/dev/null; then
  echo "!! java is missing: the Firestore and Pub/Sub emulators cannot run and the Dart client cannot be generated;" \
    "their tests will be skipped" >&2
elif ! command -v gcloud >/dev/null; then
  echo "!! the Google Cloud CLI is missing: Firestore and Pub/Sub emulator tests will be skipped" >&2
fi
