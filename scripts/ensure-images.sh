#!/usr/bin/env bash
# What `npm run test:images` needs beyond scripts/ensure-system.sh: buildah and podman (with runc) to build
# and run the images without a Docker engine, debootstrap for the local base image, and that base image
# (scripts/build-base-image.sh; no registry is pulled from). Only the images test runs this, so `npm start`
# and `npm test` never install a container tool chain.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in buildah podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-images: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman runc debootstrap >/dev/null
  else
    echo "ensure-images: missing ${missing[*]}: install them (Debian: sudo apt-get install buildah podman runc debootstrap)" >&2
    exit 1
  fi
fi

bash scripts/build-base-image.sh
