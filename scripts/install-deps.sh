#!/usr/bin/env bash
# Installs everything Meridian needs on Debian 12, idempotently. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential make cmake pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libhnswlib-dev libsodium-dev libxxhash-dev libpq-dev zlib1g-dev
  googletest libgtest-dev
  libipc-run-perl libperl5.36   # PostgreSQL::Test::Cluster; syscall.ph for the TAP crash helper
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
