#!/usr/bin/env bash
# Installs the Debian packages shien's blade side, its tests and its demo use (idempotent).
set -euo pipefail

# One list per feature in scripts/deps.d/*.list: a package a line, # comments.
mapfile -t PACKAGES < <(cat "$(dirname "$0")"/deps.d/*.list | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "shien: these Debian packages are missing: ${missing[*]}; run this script as root to install them." >&2
  exit 2
fi
echo "Installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q -o Dpkg::Options::=--force-confnew "${missing[@]}"
