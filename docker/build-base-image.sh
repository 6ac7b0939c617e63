#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's default base image (node:20-bookworm-slim) where no image registry
# is reachable: `debootstrap --variant=minbase bookworm` + this machine's own Node installation (node, npm, corepack),
# a `node` user with uid/gid 1000 as in the official image, imported with `docker import` and tagged.
#
#   docker/build-base-image.sh [--force] [tag]        (default tag: node:20-bookworm-slim)
#
# The root file system tarball is cached (keyed by the Node version) in
# ${SBS_DOCKER_BASE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sparse-bert-serve/docker-base}, so only the first run pays for
# debootstrap (a few minutes); later runs, or a fresh Docker engine, only `docker import` the tarball (seconds).
# Needs root (debootstrap, chroot) and the `debootstrap` package. DEBIAN_MIRROR overrides the Debian mirror.
# The machine's CA bundle is copied too, and NODE_EXTRA_CA_CERTS points at it, so npm inside `docker build` trusts
# what the machine trusts (e.g. a TLS-inspecting egress proxy).
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
tag="${1:-node:20-bookworm-slim}"
docker="${DOCKER:-docker}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${SBS_DOCKER_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparse-bert-serve/docker-base}"
log() { echo "build-base-image: $*" >&2; }

# Revision 2 added Node's C headers (the engine addon builds against them, as on the official image).
revision=2
if [[ $force == 0 ]] && [[ "$("$docker" image inspect --format '{{ index .Config.Labels "sparse-bert-serve.base-revision" }}' "$tag" 2> /dev/null)" == "$revision" ]]; then
  log "$tag is already in the engine; nothing to do (--force rebuilds)"
  exit 0
fi

node_bin="$(readlink -f "$(command -v node)")"
node_version="$(node -p process.version)"
arch="$(node -p process.arch)"
prefix="$(dirname "$(dirname "$node_bin")")"
tarball="$cache/bookworm-minbase-node-${node_version}-${arch}-r${revision}.tar"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

mkdir -p "$cache"
# One builder at a time (several test runs may start together); the others wait and then reuse the tarball.
exec 9> "$cache/.lock"
flock 9

if [[ $force == 1 || ! -s "$tarball" ]]; then
  if [[ $EUID -ne 0 ]]; then log "debootstrap needs root"; exit 1; fi
  command -v debootstrap > /dev/null || { log "debootstrap is not installed (apt-get install -y debootstrap)"; exit 1; }
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap --variant=minbase bookworm from $mirror (first run only, a few minutes)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; log "debootstrap failed (log: $cache/debootstrap.log)"; exit 1; }

  log "adding this machine's Node $node_version ($node_bin) under /usr/local"
  install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  for pkg in npm corepack; do
    if [[ -d "$prefix/lib/node_modules/$pkg" ]]; then cp -a "$prefix/lib/node_modules/$pkg" "$rootfs/usr/local/lib/node_modules/"; fi
  done
  # Node's C headers, where the official image has them: native addons (the sparse engine) build against them.
  if [[ -f "$prefix/include/node/node_api.h" ]]; then
    mkdir -p "$rootfs/usr/local/include"
    cp -a "$prefix/include/node" "$rootfs/usr/local/include/"
  else
    log "warning: no Node headers at $prefix/include/node; the engine addon will not build in the image"
  fi
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  if [[ -d "$rootfs/usr/local/lib/node_modules/corepack" ]]; then
    ln -sf ../lib/node_modules/corepack/dist/corepack.js "$rootfs/usr/local/bin/corepack"
  fi
  # A Node linked against shared libraries the minimal system lacks (e.g. Debian's libnode) brings them along.
  while read -r lib; do
    if [[ -n "$lib" && ! -e "$rootfs$lib" ]]; then install -D "$(readlink -f "$lib")" "$rootfs$lib"; fi
  done < <(ldd "$node_bin" | awk '/=> \//{print $3} /^\s*\/[^ ]+ \(/{print $1}')
  if [[ -s "$ca_bundle" ]]; then install -D -m 0644 "$ca_bundle" "$rootfs$ca_bundle"; fi
  env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)' ||
    { log "node does not run inside the new root file system"; exit 1; }

  # The official image's unprivileged user.
  grep -q '^node:' "$rootfs/etc/group" || echo 'node:x:1000:' >> "$rootfs/etc/group"
  grep -q '^node:' "$rootfs/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$rootfs/etc/passwd"
  grep -q '^node:' "$rootfs/etc/shadow" 2> /dev/null || echo 'node:*:19000:0:99999:7:::' >> "$rootfs/etc/shadow"
  install -d -m 0755 -o 1000 -g 1000 "$rootfs/home/node"

  # Slim it the way the -slim images are: no package lists, caches, docs, man pages or locales.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

  tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$rootfs"
  trap - EXIT
  log "cached $tarball ($(du -h "$tarball" | cut -f1))"
fi

changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change "ENV NODE_VERSION=${node_version#v}"
  --change 'LABEL org.opencontainers.image.description="local stand-in for node:20-bookworm-slim (debootstrap + the build machine Node)"'
  --change 'LABEL sparse-bert-serve.local-base-image=true'
  --change "LABEL sparse-bert-serve.base-revision=$revision"
  --change 'CMD ["node"]'
)
if [[ -s "$ca_bundle" ]]; then changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$ca_bundle"); fi
"$docker" import "${changes[@]}" "$tarball" "$tag" > /dev/null
log "imported $tag from $tarball"
