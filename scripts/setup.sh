#!/usr/bin/env bash
# Installs what building and testing Corral needs on a Debian 12 machine: host tools
# from Debian's packages and Rust's musl target. Idempotent and quick when all is there;
# `make run`, `make dist` and `make test` call it first.
set -euo pipefail

PACKAGES=(
  # boot and inspect images
  qemu-system-x86 qemu-utils ovmf
  # ISO and FAT; the bootloaders here serve the iso and disk crates' own tests (the
  # build takes its bootloaders from the image's suite, docs/building.md)
  xorriso isolinux syslinux-common grub-common grub-pc-bin grub-efi-amd64-bin mtools dosfstools
  # root image and initrd
  squashfs-tools zstd xz-utils cpio kmod e2fsprogs fdisk
  # C in Rust crates built for the musl target (ring, for the user engine's TLS)
  musl-tools
  # integration tests run a real dockerd on a private socket, with crun as Corral's
  # engines have it
  docker.io crun
  # a registry on 127.0.0.1 for the manager's test of a service image it pulls
  docker-registry
  # the end-to-end tests reach guests over ssh
  openssh-client
  # make bench's Debian 13 baseline image
  mmdebstrap
)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then echo sudo; else
      echo "setup: run as root or install sudo" >&2; exit 1; fi
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=$(need_root)
# corral-build resolves packages with apt, so the package lists must exist and be fresh.
lists_age_days() {
  local newest
  newest=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -printf '%T@\n' 2>/dev/null | sort -n | tail -1)
  if [ -z "$newest" ]; then echo 9999; else echo $(( ( $(date +%s) - ${newest%.*} ) / 86400 )); fi
}
if [ "${#missing[@]}" -gt 0 ] || [ "$(lists_age_days)" -ge 1 ]; then
  echo "setup: apt-get update"
  $SUDO apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    echo "setup: rustup target add x86_64-unknown-linux-musl"
    rustup target add x86_64-unknown-linux-musl
  fi
  for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
  done
fi
# make e2e runs two guests at once with nextest (.config/nextest.toml).
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi
echo "setup: ok"
