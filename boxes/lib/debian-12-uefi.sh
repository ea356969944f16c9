# shellcheck shell=bash
# The build of the Debian 12 (bookworm) UEFI base boxes, shared by the recipes
# boxes/debian-12-arm64 (arm64, VirtualBox 7.1 on Apple Silicon) and boxes/debian-12-efi
# (amd64): debootstrap a minimal system (in two stages; the second through qemu-user-static
# when the box's architecture is not the build machine's), make a GPT disk with an EFI system
# partition (GRUB at the removable path EFI/BOOT/BOOT<arch>.EFI, so no NVRAM entry is needed)
# and an ext4 root (libguestfs, no loop devices), convert it to a streamOptimized VMDK and pack
# it with the recipe's box.ovf, metadata.json (naming the architecture) and Vagrantfile, like
# `vagrant package` does.
#
# The system inside is the one boxes/debian-12 builds: its rootfs/ files, Vagrantfile.in, users,
# keys and sshd settings; a recipe's own rootfs/, when it has one, is copied over them.
#
# A recipe's build.sh sets these and then sources this file (its arguments are the build's):
#   ARCH               Debian architecture of the box: amd64 or arm64
#   BOX_NAME           the box's name (the OVF's @NAME@)
#   SERIAL_CONSOLE     the kernel's serial console (ttyS0, ttyAMA0)
#   INITRAMFS_MODULES  drivers that must be in the initramfs (or built into the kernel)
#   recipe_dir         the recipe's folder (box.ovf.in, optional rootfs/)
#
# Runs as root on Linux. Environment:
#   DEBIAN_MIRROR                 package mirror (default http://deb.debian.org/debian)
#   TMPDIR                        where the work directory goes (default /var/tmp)
#   LIBGUESTFS_BACKEND            default "direct"
#   LIBGUESTFS_BACKEND_SETTINGS   default "force_tcg" (software emulation, which works even
#                                 where nested KVM does not); set it empty to allow KVM.

readonly SUITE=bookworm
readonly GUEST_HOSTNAME=debian-12
readonly ROOT_LABEL=debian-12-root
readonly ESP_LABEL=EFI
readonly ESP_MIB=64
readonly FREE_MIB=360
readonly EFI_PARTITION_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
readonly LINUX_PARTITION_TYPE=0FC63DAF-8483-4772-8E79-3D69D8477DE4
readonly PACKAGES=systemd-sysv,udev,dbus,systemd-resolved,iproute2,linux-image-$ARCH,openssh-server,sudo
# GRUB's EFI modules come from the grub-efi-<arch>-bin .deb, unpacked on the build machine:
# nothing of GRUB is installed in the box.
readonly GRUB_PACKAGE=grub-efi-$ARCH-bin
readonly GRUB_MODULES='part_gpt fat ext2 search search_label normal configfile linux gzio echo test efi_gop'
# Per architecture: GRUB's platform, the removable-path file name UEFI looks for, the PE
# machine field of that file (bytes as stored, little-endian) and qemu-user's name for it.
case $ARCH in
  amd64) grub_platform=x86_64-efi efi_image=BOOTX64.EFI pe_machine=6486 qemu_user=qemu-x86_64 ;;
  arm64) grub_platform=arm64-efi efi_image=BOOTAA64.EFI pe_machine=64aa qemu_user=qemu-aarch64 ;;
  *) echo "build.sh: no UEFI recipe for the architecture $ARCH" >&2; exit 2 ;;
esac

lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$lib_dir/../.." && pwd)
# The BIOS recipe, whose system these boxes share.
base_dir=$repo_dir/boxes/debian-12
key_dir=$repo_dir/test/fixtures/vagrant-insecure
keys_file=$repo_dir/templates/vagrant-insecure-keys.pub
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS-force_tcg}
# The box's programs run emulated when the build machine has another architecture.
host_arch=$(dpkg --print-architecture 2>/dev/null || true)
foreign=false
[[ $host_arch == "$ARCH" ]] || foreign=true

usage() {
  cat <<EOF
Usage: $(basename "$0") OUTPUT.box [--gzip] [--deb-cache DIR]
       $(basename "$0") --check

Build the Debian 12 (bookworm) $ARCH UEFI Vagrant base box $BOX_NAME into OUTPUT.box.
  --gzip            compress the box (tar.gz) instead of a plain tar
  --deb-cache DIR   keep downloaded .deb files in DIR and reuse them next time
  --check           only check that this machine can build it: prints "needs-root" and
                    "missing-package NAME" lines on stdout, exits 2 if there are any
Must run as root on Linux; on a build machine of another architecture, with qemu-user-static
registered for $ARCH binaries (binfmt_misc).
See boxes/README.md.
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

export PATH=/usr/sbin:/sbin:$PATH
missing=()
need() { # need COMMAND-OR-FILE DEBIAN-PACKAGE
  if [[ $1 == /* ]]; then [[ -e $1 ]] || missing+=("$2"); else command -v "$1" >/dev/null || missing+=("$2"); fi
}
need debootstrap debootstrap
need wget wget
need guestfish libguestfs-tools
need qemu-img qemu-utils
need grub-mkimage grub-common
need ssh-keygen openssh-client
if $foreign; then
  need "/usr/bin/$qemu_user-static" qemu-user-static
  need update-binfmts binfmt-support
fi
need chroot coreutils
if ! compgen -G '/boot/vmlinuz-*' >/dev/null; then missing+=(linux-image-amd64); fi
if ((${#missing[@]})); then mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u); fi
if $check; then
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
  exit 2
fi
# On a build machine of another architecture, the box's programs in the tree (dpkg's maintainer
# scripts, update-initramfs) run through qemu-user-static, which the kernel starts only when
# binfmt_misc knows it.
if $foreign; then
  if [[ ! -e /proc/sys/fs/binfmt_misc/$qemu_user ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    update-binfmts --enable "$qemu_user" >/dev/null 2>&1 || true
  fi
  grep -qx enabled "/proc/sys/fs/binfmt_misc/$qemu_user" 2>/dev/null ||
    die "$ARCH programs cannot run here: binfmt_misc has no enabled $qemu_user entry. Run: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable $qemu_user"
fi
for k in rsa ed25519; do
  [[ -f $key_dir/vagrant.key.$k ]] || die "missing $key_dir/vagrant.key.$k (Vagrant's insecure key pair)"
done
[[ -d $base_dir/rootfs ]] || die "missing $base_dir/rootfs (the files this box shares with debian-12)"

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

in_root_cmd=(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C
  DEBIAN_FRONTEND=noninteractive)
in_root() { "${in_root_cmd[@]}" "$@"; }

step "building $BOX_NAME box into $output (work directory $workdir)"

# ---- 1. Minimal Debian tree ------------------------------------------------------------
# In two stages, so that the box's files are in the tree before its maintainer scripts run
# (slowly, when emulated): dpkg leaves documentation out, the kernel's initramfs is made
# once, with only the listed drivers, and openssh-server finds host keys and makes none. The
# second stage configures with --force-confold, so the files the box has in place of a
# package's configuration file (the initramfs driver list) stay; they are copied again after
# it all the same, since debootstrap writes its own sources.list.
put_box_files() {
  cp -r --no-preserve=mode,ownership "$base_dir/rootfs/." "$root/"
  if [[ -d $recipe_dir/rootfs ]]; then cp -r --no-preserve=mode,ownership "$recipe_dir/rootfs/." "$root/"; fi
  chmod 0440 "$root/etc/sudoers.d/vagrant"
}
step "debootstrap --foreign --arch=$ARCH --variant=minbase $SUITE from $mirror"
db_args=(--foreign "--arch=$ARCH" --variant=minbase "--include=$PACKAGES")
[[ -z $deb_cache ]] || db_args+=("--cache-dir=$deb_cache")
run_logged debootstrap debootstrap "${db_args[@]}" "$SUITE" "$root" "$mirror"
put_box_files
# The build machine's ssh-keygen (an emulated one takes a while for RSA).
mkdir -p "$root/etc/ssh"
for t in rsa ecdsa ed25519; do
  ssh-keygen -q -t "$t" -N '' -C "root@$GUEST_HOSTNAME" -f "$root/etc/ssh/ssh_host_${t}_key"
done
step "debootstrap --second-stage ($ARCH maintainer scripts$(if $foreign; then echo " through qemu-user-static"; fi))"
run_logged debootstrap-second-stage "${in_root_cmd[@]}" /debootstrap/debootstrap --second-stage
put_box_files
# The packages' own versions of the files kept above.
find "$root/etc" -name '*.dpkg-dist' -delete
kver=$(ls "$root/usr/lib/modules")
[[ $kver =~ ^[0-9][^[:space:]]*-$ARCH$ ]] || die "expected one $ARCH kernel in the tree, found: $kver"
step "debootstrap done (kernel $kver)"

# GRUB's EFI modules for $ARCH: the .deb the tree's package list names (debootstrap checked the
# list's signature), checked against the list's sha256, from the cache when it has it.
step "fetching $GRUB_PACKAGE for the EFI boot loader"
packages_list=$(compgen -G "$root/var/lib/apt/lists/*_dists_${SUITE}_main_binary-${ARCH}_Packages" | head -n 1) ||
  die "debootstrap left no package list in the tree"
read -r grub_path grub_sha256 < <(awk -v want="$GRUB_PACKAGE" '
  /^Package: / { name = $2 } /^Filename: / && name == want { file = $2 } /^SHA256: / && name == want { sum = $2 }
  /^$/ && file != "" { print file, sum; exit }' "$packages_list") || true
[[ -n ${grub_path:-} && ${grub_sha256:-} =~ ^[0-9a-f]{64}$ ]] || die "the mirror's package list has no $GRUB_PACKAGE"
grub_deb=$workdir/${grub_path##*/}
if [[ -n $deb_cache && -s $deb_cache/${grub_path##*/} ]]; then
  cp "$deb_cache/${grub_path##*/}" "$grub_deb"
else
  run_logged wget wget -q -O "$grub_deb" "$mirror/$grub_path"
fi
sha256sum --quiet -c <<<"$grub_sha256  $grub_deb" || die "$grub_path does not have the sha256 the package list gives"
[[ -z $deb_cache ]] || cp -n "$grub_deb" "$deb_cache/"

# ---- 2. Base box conventions -----------------------------------------------------------
step "configuring: network, users, sudo, ssh, boot"

echo "$GUEST_HOSTNAME" >"$root/etc/hostname"
cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$GUEST_HOSTNAME

::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
# The EFI system partition is mounted for whoever installs a boot loader later; nothing in
# the box needs it to boot (nofail), and there is no fsck.vfat in it (pass 0).
cat >"$root/etc/fstab" <<EOF
# <file system>	<mount point>	<type>	<options>	<dump>	<pass>
LABEL=$ROOT_LABEL	/	ext4	errors=remount-ro	0	1
LABEL=$ESP_LABEL	/boot/efi	vfat	umask=0077,nofail	0	0
EOF
mkdir -p "$root/boot/efi" "$root/boot/grub"
sed -e "s/@ROOT_LABEL@/$ROOT_LABEL/g" -e "s/@SERIAL_CONSOLE@/$SERIAL_CONSOLE/g" -e "s/@EFI_IMAGE@/$efi_image/g" \
  "$lib_dir/grub.cfg.in" >"$root/boot/grub/grub.cfg"
if grep -q '@[A-Z_]*@' "$root/boot/grub/grub.cfg"; then die "a placeholder was left unfilled in grub.cfg"; fi

in_root systemctl enable --quiet systemd-networkd.service systemd-resolved.service
[[ -L $root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service ]] ||
  die "systemd-networkd was not enabled"

[[ -s $root/etc/machine-id ]] || in_root systemd-machine-id-setup >/dev/null
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"

in_root useradd --create-home --uid 1000 --user-group --shell /bin/bash --comment vagrant vagrant
printf 'root:vagrant\nvagrant:vagrant\n' | in_root chpasswd

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

sed -i -E 's/^#?PasswordAuthentication .*/PasswordAuthentication yes/' "$root/etc/ssh/sshd_config"
grep -q '^PasswordAuthentication yes' "$root/etc/ssh/sshd_config" || echo 'PasswordAuthentication yes' >>"$root/etc/ssh/sshd_config"
[[ $(cat "$root"/etc/ssh/ssh_host_*_key.pub | grep -c " root@$GUEST_HOSTNAME\$") == 3 ]] ||
  die "the host keys are not the three made before the second stage"
mkdir -p "$root/run/sshd"
run_logged sshd-check "${in_root_cmd[@]}" /usr/sbin/sshd -t
rm -rf "$root/run/sshd"

# The initramfs the kernel's installation made: read on the build machine when it has
# lsinitramfs (the box's may run emulated).
if command -v lsinitramfs >/dev/null; then
  initrd_list=$(lsinitramfs "$root/boot/initrd.img-$kver")
else
  initrd_list=$(in_root lsinitramfs "/boot/initrd.img-$kver")
fi
for mod in $INITRAMFS_MODULES; do
  grep -q "/$mod\.ko" <<<"$initrd_list" || grep -q "/$mod\.ko" "$root/usr/lib/modules/$kver/modules.builtin" ||
    die "$mod is neither in the initramfs nor built into the kernel"
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
tree_mib=$(du -sm --one-file-system "$root" | cut -f1)
step "tree is ${tree_mib} MiB"

# ---- 4. Boot loader --------------------------------------------------------------------
step "grub-mkimage: $efi_image with the $ROOT_LABEL search built in"
mkdir -p "$workdir/grub"
dpkg-deb -x "$grub_deb" "$workdir/grub"
# Without its comments: GRUB runs the built-in configuration with a parser that has none, and
# would say "Unknown command `#'" on the console at every boot.
sed -e '/^[[:space:]]*#/d' -e "s/@ROOT_LABEL@/$ROOT_LABEL/g" "$lib_dir/grub-early.cfg.in" >"$workdir/grub-early.cfg"
# shellcheck disable=SC2086
grub-mkimage -O "$grub_platform" -d "$workdir/grub/usr/lib/grub/$grub_platform" -c "$workdir/grub-early.cfg" \
  -p /boot/grub -o "$workdir/$efi_image" $GRUB_MODULES
# An EFI application for the box's architecture: a PE file ("PE\0\0") with its machine field.
[[ $(od -An -tx1 -j "$(od -An -tu4 -j 60 -N 4 "$workdir/$efi_image" | tr -d ' ')" -N 6 "$workdir/$efi_image" | tr -d ' \n') == 50450000$pe_machine ]] ||
  die "grub-mkimage did not write an EFI application for $ARCH"

# ---- 5. Disk image ---------------------------------------------------------------------
step "tar of the tree"
tar --numeric-owner -C "$root" -cf "$workdir/rootfs.tar" .
unmount_below "$root"
rm -rf --one-file-system "$root"

# The root file system: the tree plus a tenth for ext4's own blocks and inodes, plus the free
# space. GPT needs 1 MiB in front of the first partition and 33 sectors after the last.
root_mib=$((tree_mib + tree_mib / 10 + 64 + FREE_MIB))
disk_mib=$((1 + ESP_MIB + root_mib + 1))
esp_first=2048
esp_last=$((esp_first + ESP_MIB * 2048 - 1))
step "guestfish: GPT disk of $disk_mib MiB, EFI system partition (FAT, $ESP_LABEL), ext4 root ($ROOT_LABEL)"
truncate -s "${disk_mib}M" "$workdir/disk.raw"
run_logged guestfish guestfish --rw --no-progress-bars <<EOF
add $workdir/disk.raw format:raw
run
part-init /dev/sda gpt
part-add /dev/sda p $esp_first $esp_last
part-add /dev/sda p $((esp_last + 1)) -34
part-set-gpt-type /dev/sda 1 $EFI_PARTITION_TYPE
part-set-gpt-type /dev/sda 2 $LINUX_PARTITION_TYPE
part-set-name /dev/sda 1 EFI
part-set-name /dev/sda 2 root
mkfs vfat /dev/sda1 label:$ESP_LABEL
mkfs ext4 /dev/sda2 label:$ROOT_LABEL
mount /dev/sda2 /
tar-in $workdir/rootfs.tar /
mount /dev/sda1 /boot/efi
mkdir-p /boot/efi/EFI/BOOT
upload $workdir/$efi_image /boot/efi/EFI/BOOT/$efi_image
echo free:
statvfs /
umount-all
EOF
rm -f "$workdir/rootfs.tar"
free_blocks=$(awk '/^bavail:/ {print $2}' "$workdir/log/guestfish.log")
block_size=$(awk '/^bsize:/ {print $2; exit}' "$workdir/log/guestfish.log")
[[ $free_blocks =~ ^[0-9]+$ && $block_size =~ ^[0-9]+$ ]] || die "could not read the root file system's free space"
step "root file system has $((free_blocks * block_size / 1048576)) MiB free"

# ---- 6. Box ----------------------------------------------------------------------------
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
sed -e "s/@MAC@/$mac/g" "$base_dir/Vagrantfile.in" >"$stage/Vagrantfile"
printf '{"provider":"virtualbox","architecture":"%s"}\n' "$ARCH" >"$stage/metadata.json"
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
