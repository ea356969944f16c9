#!/usr/bin/env bash
# Build a Debian 12 (bookworm) arm64 Vagrant base box for VirtualBox 7.1 on Apple Silicon, from
# Debian packages only: a GPT disk with an EFI system partition (GRUB at the removable path
# EFI/BOOT/BOOTAA64.EFI) and an ext4 root, the system of boxes/debian-12, and box.ovf declaring
# VirtualBox 7.1's ARM platform. debootstrap's second stage runs through qemu-user-static.
#
# The build itself is boxes/lib/debian-12-uefi.sh, shared with boxes/debian-12-efi (amd64);
# this file names what is the arm64 box's own. This recipe's rootfs/ replaces the initramfs
# driver list.
#
# Usage: boxes/debian-12-arm64/build.sh OUTPUT.box [--gzip] [--deb-cache DIR]
#        boxes/debian-12-arm64/build.sh --check
# (environment: see boxes/lib/debian-12-uefi.sh and boxes/README.md)
set -euo pipefail

readonly ARCH=arm64
readonly BOX_NAME=debian-12-arm64
# The PL011 UART of qemu's virt machine (and of VirtualBox's ARMv8Virtual).
readonly SERIAL_CONSOLE=ttyAMA0
readonly INITRAMFS_MODULES='virtio_blk virtio_pci ahci nvme ext4'

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/debian-12-uefi.sh
source "$recipe_dir/../lib/debian-12-uefi.sh"
