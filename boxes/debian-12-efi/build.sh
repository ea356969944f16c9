#!/usr/bin/env bash
# Build a Debian 12 (bookworm) amd64 Vagrant base box that boots by UEFI only, from Debian
# packages only: a GPT disk with an EFI system partition (GRUB at the removable path
# EFI/BOOT/BOOTX64.EFI, no BIOS boot code) and an ext4 root, the system of boxes/debian-12,
# and box.ovf declaring EFI firmware as VirtualBox writes it (<Firmware type="EFI"/>).
#
# The build itself is boxes/lib/debian-12-uefi.sh, shared with boxes/debian-12-arm64; this
# file names what is the amd64 box's own. It has no rootfs/ of its own: debian-12's initramfs
# driver list (virtio, AHCI, PIIX IDE) is this box's too.
#
# Usage: boxes/debian-12-efi/build.sh OUTPUT.box [--gzip] [--deb-cache DIR]
#        boxes/debian-12-efi/build.sh --check
# (environment: see boxes/lib/debian-12-uefi.sh and boxes/README.md)
set -euo pipefail

readonly ARCH=amd64
readonly BOX_NAME=debian-12-efi
readonly SERIAL_CONSOLE=ttyS0
readonly INITRAMFS_MODULES='virtio_blk virtio_net virtio_pci ahci ext4'

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/debian-12-uefi.sh
source "$recipe_dir/../lib/debian-12-uefi.sh"
