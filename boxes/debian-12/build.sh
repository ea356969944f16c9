#!/usr/bin/env bash
# Build a Debian 12 (bookworm) Vagrant base box for the VirtualBox provider, from Debian
# packages only: debootstrap a minimal system, make an MBR disk with ext4 and EXTLINUX
# (libguestfs, no loop devices), convert it to a streamOptimized VMDK and pack it with
# box.ovf, metadata.json and Vagrantfile, like `vagrant package` does.
#
# Usage: boxes/debian-12/build.sh OUTPUT.box [--gzip] [--deb-cache DIR]
#        boxes/debian-12/build.sh --check
#
# Runs as root on Linux. Environment:
#   DEBIAN_MIRROR                 package mirror (default http://deb.debian.org/debian)
#   TMPDIR                        where the work directory goes (default /var/tmp)
#   LIBGUESTFS_BACKEND            default "direct"
#   LIBGUESTFS_BACKEND_SETTINGS   default "force_tcg" (software emulation, which works even
#                                 where nested KVM does not); set it empty to allow KVM.
set -euo pipefail

readonly SUITE=bookworm
readonly BOX_NAME=debian-12
readonly GUEST_HOSTNAME=debian-12
readonly ROOT_LABEL=debian-12-root
readonly FREE_SPACE=360M
readonly MBR_BIN=/usr/lib/EXTLINUX/mbr.bin
# systemd-networkd and systemd-resolved: DHCP on any wired interface. udev loads the NIC and
# disk drivers. dbus lets networkctl, hostnamectl and friends work.
readonly PACKAGES=systemd-sysv,udev,dbus,systemd-resolved,iproute2,linux-image-amd64,openssh-server,sudo

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$recipe_dir/../.." && pwd)
key_dir=$repo_dir/test/fixtures/vagrant-insecure
keys_file=$repo_dir/templates/vagrant-insecure-keys.pub
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS-force_tcg}

usage() {
  cat <<EOF
Usage: $(basename "$0") OUTPUT.box [--gzip] [--deb-cache DIR]
       $(basename "$0") --check

Build the Debian 12 (bookworm) Vagrant base box for VirtualBox into OUTPUT.box.
  --gzip            compress the box (tar.gz) instead of a plain tar
  --deb-cache DIR   keep downloaded .deb files in DIR and reuse them next time
  --check           only check that this machine can build it: prints "needs-root" and
                    "missing-package NAME" lines on stdout, exits 2 if there are any
Must run as root on Linux. See boxes/README.md.
EOF
}

die() { echo "build.sh: error: $*" >&2; exit 1; }
step() { printf '[%4ds] %s\n' "$SECONDS" "$*" >&2; }

output=''
check=false
gzip=false
deb_cache=''
while (($#)); do
  case $1 in
    --gzip) gzip=true ;;
    --check) check=true ;;
    --deb-cache) (($# >= 2)) || { usage >&2; exit 2; }; deb_cache=$2; shift ;;
    --deb-cache=*) deb_cache=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [[ -z $output ]] || { echo "build.sh: only one OUTPUT.box" >&2; usage >&2; exit 2; }; output=$1 ;;
  esac
  shift
done
[[ -n $output ]] || $check || { usage >&2; exit 2; }

# ---- Preconditions ---------------------------------------------------------------------
if [[ $(uname -s) != Linux ]]; then
  echo "build.sh: this recipe runs on Linux only (debootstrap, libguestfs)." >&2
  $check && echo needs-linux
  exit 2
fi

# debootstrap, chroot and friends live in sbin, which a root shell's PATH may lack.
export PATH=/usr/sbin:/sbin:$PATH
missing=()
need() { # need COMMAND-OR-FILE DEBIAN-PACKAGE
  if [[ $1 == /* ]]; then [[ -e $1 ]] || missing+=("$2"); else command -v "$1" >/dev/null || missing+=("$2"); fi
}
need debootstrap debootstrap
need guestfish libguestfs-tools
need virt-make-fs libguestfs-tools
need qemu-img qemu-utils
need "$MBR_BIN" extlinux
need ssh-keygen openssh-client
need chroot coreutils
if ! compgen -G '/boot/vmlinuz-*' >/dev/null; then missing+=(linux-image-amd64); fi
if ((${#missing[@]})); then mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u); fi
if $check; then
  # Everything at once, for a caller (shien box build) to report in one go.
  ((EUID == 0)) || echo needs-root
  for pkg in "${missing[@]}"; do echo "missing-package $pkg"; done
  if ((EUID != 0 || ${#missing[@]})); then exit 2; fi
  exit 0
fi
if ((EUID != 0)); then
  echo "build.sh: run as root (debootstrap and chroot need it), e.g. sudo $0 $output" >&2
  exit 2
fi
if ((${#missing[@]})); then
  echo "build.sh: missing tools. Install the Debian packages: apt-get install ${missing[*]}" >&2
  if [[ " ${missing[*]} " == *" linux-image-amd64 "* ]]; then
    echo "  (libguestfs needs a kernel in /boot for its appliance: linux-image-amd64)" >&2
  fi
  exit 2
fi
for k in rsa ed25519; do
  [[ -f $key_dir/vagrant.key.$k ]] || die "missing $key_dir/vagrant.key.$k (Vagrant's insecure key pair)"
done

case $output in /*) ;; *) output=$PWD/$output ;; esac
out_dir=$(dirname "$output")
[[ -d $out_dir && -w $out_dir ]] || die "output directory $out_dir does not exist or is not writable"
if [[ -n $deb_cache ]]; then
  mkdir -p "$deb_cache"
  deb_cache=$(cd "$deb_cache" && pwd)
fi

# ---- Work area and cleanup -------------------------------------------------------------
umask 022
workdir=''
partial="$output.partial.$$"

unmount_below() { # unmount every mount point under $1, deepest first
  local m
  awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}

stop_child() { # stop the running step's process group, waiting up to 20 s
  local i
  [[ -n ${child:-} ]] || return 0
  kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
  for ((i = 0; i < 40; i++)); do
    kill -0 -- "-$child" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$child" 2>/dev/null
  wait "$child" 2>/dev/null
  child=''
}

cleanup() {
  local rc=$?
  set +e
  stop_child
  if [[ -n $workdir && -d $workdir ]]; then
    unmount_below "$workdir"
    # --one-file-system: never descend into anything still mounted.
    rm -rf --one-file-system "$workdir"
  fi
  rm -f "$partial"
  if ((rc == 130 || rc == 143)); then
    echo "build.sh: interrupted after ${SECONDS}s; cleaned up, nothing was written to $output" >&2
  elif ((rc != 0)); then
    echo "build.sh: failed after ${SECONDS}s; cleaned up, nothing was written to $output" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

workdir=$(mktemp -d "${TMPDIR:-/var/tmp}/shien-box.XXXXXX")
root=$workdir/root
stage=$workdir/stage
mkdir -p "$stage" "$workdir/log"


# run_logged NAME CMD...: run with output in a log; on failure show its end. The command
# runs in its own process group, in the background, so that a signal interrupts the wait at
# once and cleanup can stop the whole group (debootstrap's dpkg, the libguestfs appliance).
child=''
run_logged() {
  local name=$1; shift
  local log=$workdir/log/$name.log rc=0
  setsid "$@" <&0 >"$log" 2>&1 &
  child=$!
  wait "$child" || rc=$?
  child=''
  if ((rc != 0)); then
    echo "build.sh: $name failed (exit $rc); last lines of its output:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

# A command in the tree, with a clean environment (also usable with run_logged).
in_root_cmd=(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C
  DEBIAN_FRONTEND=noninteractive)
in_root() { "${in_root_cmd[@]}" "$@"; }

step "building $BOX_NAME box into $output (work directory $workdir)"

# ---- 1. Minimal Debian tree ------------------------------------------------------------
step "debootstrap --variant=minbase $SUITE from $mirror"
db_args=(--variant=minbase "--include=$PACKAGES")
[[ -z $deb_cache ]] || db_args+=("--cache-dir=$deb_cache")
run_logged debootstrap debootstrap "${db_args[@]}" "$SUITE" "$root" "$mirror"
kver=$(ls "$root/usr/lib/modules")
[[ $kver =~ ^[0-9][^[:space:]]*$ ]] || die "expected one kernel in the tree, found: $kver"
step "debootstrap done (kernel $kver)"

# ---- 2. Base box conventions -----------------------------------------------------------
step "configuring: network, users, sudo, ssh, boot"
cp -r --no-preserve=mode,ownership "$recipe_dir/rootfs/." "$root/"
chmod 0440 "$root/etc/sudoers.d/vagrant"

echo "$GUEST_HOSTNAME" >"$root/etc/hostname"
cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$GUEST_HOSTNAME

::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
cat >"$root/etc/fstab" <<EOF
# <file system>	<mount point>	<type>	<options>	<dump>	<pass>
LABEL=$ROOT_LABEL	/	ext4	errors=remount-ro	0	1
EOF
mkdir -p "$root/boot/extlinux"
sed "s/@ROOT_LABEL@/$ROOT_LABEL/g" "$recipe_dir/extlinux.conf.in" >"$root/boot/extlinux/extlinux.conf"

# Networking: systemd-networkd (80-dhcp.network) with systemd-resolved.
in_root systemctl enable --quiet systemd-networkd.service systemd-resolved.service
[[ -L $root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service ]] ||
  die "systemd-networkd was not enabled"

# Identity: a machine-id, as an installed system has one (dbus reads the same file).
[[ -s $root/etc/machine-id ]] || in_root systemd-machine-id-setup >/dev/null
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"

# Users: root and vagrant, both with password "vagrant"; vagrant is uid 1000.
in_root useradd --create-home --uid 1000 --user-group --shell /bin/bash --comment vagrant vagrant
printf 'root:vagrant\nvagrant:vagrant\n' | in_root chpasswd

# Both Vagrant insecure public keys, derived from the private halves in the repository.
keyfile=$workdir/key
: >"$workdir/authorized_keys"
for k in rsa ed25519; do
  install -m 0600 "$key_dir/vagrant.key.$k" "$keyfile"
  read -r ktype kblob _ < <(ssh-keygen -y -f "$keyfile")
  rm -f "$keyfile"
  [[ -n ${kblob:-} ]] || die "could not read the public half of $key_dir/vagrant.key.$k"
  if [[ -f $keys_file ]] && ! awk -v blob="$kblob" '!/^#/ && $2 == blob {found = 1} END {exit !found}' "$keys_file"; then
    die "the $k key in $key_dir is not one of the keys in $keys_file"
  fi
  echo "$ktype $kblob vagrant insecure public key" >>"$workdir/authorized_keys"
done
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$workdir/authorized_keys" "$root/home/vagrant/.ssh/authorized_keys"

# sshd: password login on in the main file too (50-vagrant.conf says so first), host keys
# generated now and shipped in the box.
sed -i -E 's/^#?PasswordAuthentication .*/PasswordAuthentication yes/' "$root/etc/ssh/sshd_config"
grep -q '^PasswordAuthentication yes' "$root/etc/ssh/sshd_config" || echo 'PasswordAuthentication yes' >>"$root/etc/ssh/sshd_config"
# (The keys openssh-server's postinst made carry the build machine's name: make new ones.)
rm -f "$root"/etc/ssh/ssh_host_*_key "$root"/etc/ssh/ssh_host_*_key.pub
for t in rsa ecdsa ed25519; do
  in_root ssh-keygen -q -t "$t" -N '' -C "root@$GUEST_HOSTNAME" -f "/etc/ssh/ssh_host_${t}_key"
done
mkdir -p "$root/run/sshd"
run_logged sshd-check "${in_root_cmd[@]}" /usr/sbin/sshd -t
rm -rf "$root/run/sshd"

# initramfs with the drivers for virtio, AHCI and IDE disks (conf.d/virt.conf, modules).
step "update-initramfs (MODULES=list)"
run_logged update-initramfs "${in_root_cmd[@]}" update-initramfs -u -k "$kver"
initrd_list=$(in_root lsinitramfs "/boot/initrd.img-$kver")
for mod in virtio_blk virtio_net virtio_pci ahci ext4; do
  grep -q "/$mod\.ko" <<<"$initrd_list" || die "$mod.ko is missing from the initramfs"
done
[[ -e $root/vmlinuz && -e $root/initrd.img ]] || die "/vmlinuz or /initrd.img link missing in the tree"

# ---- 3. Make it small ------------------------------------------------------------------
step "cleaning: apt caches, lists, documentation, logs"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root/var/log/bootstrap.log"
find "$root/var/log" -type f -exec truncate -s 0 {} +
rm -rf "$root"/tmp/* "$root"/var/tmp/*
step "tree is $(du -sh --one-file-system "$root" | cut -f1)"

# ---- 4. Disk image ---------------------------------------------------------------------
step "tar of the tree"
# Numeric owners: the libguestfs appliance has its own user database.
tar --numeric-owner -C "$root" -cf "$workdir/rootfs.tar" .
unmount_below "$root"
rm -rf --one-file-system "$root"

step "virt-make-fs: MBR disk, ext4 labelled $ROOT_LABEL, $FREE_SPACE free"
run_logged virt-make-fs virt-make-fs --partition=mbr --type=ext4 "--label=$ROOT_LABEL" \
  "--size=+$FREE_SPACE" --format=raw "$workdir/rootfs.tar" "$workdir/disk.raw"
rm -f "$workdir/rootfs.tar"

step "guestfish: extlinux in /boot/extlinux, bootable flag, MBR boot code"
run_logged guestfish guestfish --rw --no-progress-bars <<EOF
add $workdir/disk.raw format:raw
run
mount /dev/sda1 /
extlinux /boot/extlinux
part-set-bootable /dev/sda 1 true
upload-offset $MBR_BIN /dev/sda 0
umount-all
EOF
cmp -s -n 440 "$MBR_BIN" "$workdir/disk.raw" || die "the MBR boot code was not written"

# ---- 5. Box ----------------------------------------------------------------------------
step "qemu-img convert to streamOptimized VMDK"
run_logged qemu-img qemu-img convert -f raw -O vmdk -o subformat=streamOptimized \
  "$workdir/disk.raw" "$stage/box-disk001.vmdk"
rm -f "$workdir/disk.raw"
capacity=$(qemu-img info -f vmdk --output=json "$stage/box-disk001.vmdk" |
  sed -n 's/^ *"virtual-size": *\([0-9][0-9]*\).*/\1/p' | head -n 1)
[[ $capacity =~ ^[0-9]+$ ]] || die "could not read the VMDK's virtual size"

step "box.ovf, metadata.json, Vagrantfile"
disk_uuid=$(cat /proc/sys/kernel/random/uuid)
machine_uuid=$(cat /proc/sys/kernel/random/uuid)
# shellcheck disable=SC2046
mac=$(printf '080027%02X%02X%02X' $(od -An -N3 -tu1 /dev/urandom))
sed -e "s/@CAPACITY@/$capacity/g" -e "s/@DISK_UUID@/$disk_uuid/g" \
  -e "s/@MACHINE_UUID@/$machine_uuid/g" -e "s/@MAC@/$mac/g" -e "s/@NAME@/$BOX_NAME/g" \
  -e "s/@DATE@/$(date -u +%Y-%m-%dT%H:%M:%SZ)/g" "$recipe_dir/box.ovf.in" >"$stage/box.ovf"
sed -e "s/@MAC@/$mac/g" "$recipe_dir/Vagrantfile.in" >"$stage/Vagrantfile"
printf '{"provider":"virtualbox"}\n' >"$stage/metadata.json"
if grep -q '@[A-Z_]*@' "$stage/box.ovf" "$stage/Vagrantfile"; then die "a template placeholder was left unfilled"; fi
if command -v xmllint >/dev/null; then
  xmllint --noout "$stage/box.ovf" || die "box.ovf is not well-formed XML"
fi

step "packing $(if $gzip; then echo tar.gz; else echo tar; fi)"
tar_args=(--format=ustar --owner=0 --group=0 --numeric-owner -C "$stage")
if $gzip; then tar_args+=(-z); fi
tar "${tar_args[@]}" -cf "$partial" box.ovf box-disk001.vmdk metadata.json Vagrantfile
mv -f "$partial" "$output"

step "done: $output ($(du -h "$output" | cut -f1), disk capacity $capacity bytes, MAC $mac)"
