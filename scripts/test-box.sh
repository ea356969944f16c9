#!/usr/bin/env bash
# Print the path of a real Vagrant base box the tests use, $SHIEN_CACHE/boxes/<name>-<recipe
# hash>.box (SHIEN_CACHE defaults to /var/cache/shien, outside the clone, so every clone on this
# machine shares it), building it first with shien itself (`shien box build boxes/<name>`, as
# root; needs `npm run build`) when there is no box for the recipe as it is now, or with
# --rebuild. The amd64 BIOS box is boxes/debian-12, the amd64 UEFI box boxes/debian-12-efi and
# the arm64 (UEFI) one boxes/debian-12-arm64.
#
# Usage: scripts/test-box.sh [--arch amd64|arm64] [--firmware bios|efi] [--rebuild]
#   --firmware defaults to bios for amd64 and efi for arm64 (which has no BIOS box).
#   stdout: the box's absolute path, and nothing else; build progress goes to stderr.
#
# The recipe hash is the sha256 of every file the recipe reads (for the UEFI recipes, also the
# shared build in boxes/lib/ and the rootfs/ and Vagrantfile.in they take from debian-12), the
# insecure key pair the box authorizes
# and the list of Vagrant's insecure public keys it is checked against, so a changed recipe gets
# a new box and an unchanged one is never rebuilt.
# A build goes to a temporary name and is renamed into place only when complete; a lock file
# keeps two callers from building at once; boxes of older recipes are removed after a build.
# Downloaded .deb files are kept in $SHIEN_CACHE/debs. What `shien box build` reported (time,
# size, sha256) is kept in <box>.built.
set -euo pipefail

usage='usage: scripts/test-box.sh [--arch amd64|arm64] [--firmware bios|efi] [--rebuild]'
rebuild=false
arch=amd64
firmware=''
while (($#)); do
  case $1 in
    --rebuild) rebuild=true ;;
    --arch) (($# >= 2)) || { echo "test-box.sh: --arch needs amd64 or arm64 ($usage)" >&2; exit 2; }; arch=$2; shift ;;
    --arch=*) arch=${1#*=} ;;
    --firmware) (($# >= 2)) || { echo "test-box.sh: --firmware needs bios or efi ($usage)" >&2; exit 2; }; firmware=$2; shift ;;
    --firmware=*) firmware=${1#*=} ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test-box.sh: unknown argument $1 ($usage)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The UEFI recipes source boxes/lib/ and take the system's files from debian-12.
uefi_shared=(boxes/lib boxes/debian-12/rootfs boxes/debian-12/Vagrantfile.in)
case $arch/${firmware:-default} in
  amd64/default | amd64/bios) name=debian-12; recipe_files=(boxes/debian-12) ;;
  amd64/efi) name=debian-12-efi; recipe_files=(boxes/debian-12-efi "${uefi_shared[@]}") ;;
  arm64/default | arm64/efi) name=debian-12-arm64; recipe_files=(boxes/debian-12-arm64 "${uefi_shared[@]}") ;;
  arm64/bios) echo "test-box.sh: there is no BIOS box for arm64 (arm64 boots by UEFI only): use --firmware efi or leave it out" >&2; exit 2 ;;
  amd64/* | arm64/*) echo "test-box.sh: no firmware $firmware; use bios or efi ($usage)" >&2; exit 2 ;;
  *) echo "test-box.sh: no test box for the architecture $arch ($usage)" >&2; exit 2 ;;
esac
recipe=boxes/$name
cache_root=${SHIEN_CACHE:-/var/cache/shien}
cache=$cache_root/boxes
shien=$repo/bin/shien.js

recipe_sum() {
  (
    cd "$repo"
    {
      find "${recipe_files[@]}" -type f -print0
      find test/fixtures/vagrant-insecure templates -type f \( -name 'vagrant.key.*' -o -name 'vagrant-insecure-keys.pub' \) -print0
    } | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
  )
}

is_current() {
  [[ -s $box && -s $built_file ]]
}

mkdir -p "$cache"
want=$(recipe_sum)
box=$cache/$name-${want:0:16}.box
built_file=$box.built
if ! $rebuild && is_current; then
  echo "$box"
  exit 0
fi

# One builder at a time; whoever waited rechecks, since the other may have built it.
exec 9>"$cache/$name.lock"
if ! flock -n 9; then
  echo "test-box.sh: another build of $name is running; waiting for it" >&2
  flock -w 1800 9 || { echo "test-box.sh: $cache/$name.lock has been held for 30 minutes" >&2; exit 1; }
  if ! $rebuild && is_current; then
    echo "$box"
    exit 0
  fi
fi

tmp=$cache/$name.box.tmp.$$
builder=''
cleanup() {
  local rc=$?
  set +e
  if [[ -n $builder ]]; then
    # SIGINT is what shien turns into a clean stop (it stops the recipe, which cleans up).
    kill -INT "$builder" 2>/dev/null
    wait "$builder" 2>/dev/null
  fi
  rm -f "$tmp" "$built_file.tmp.$$"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

if [[ -e $box ]]; then
  echo "test-box.sh: rebuilding $box (recipe changed or --rebuild)" >&2
else
  echo "test-box.sh: building $box" >&2
fi
if [[ ! -f $repo/dist/commands/box/build.js ]]; then
  echo "test-box.sh: shien is not built; run npm run build first" >&2
  exit 2
fi
# In the background, so that a signal reaches the trap (and the build) at once. Progress goes
# to stderr; shien's own report (stdout) is kept with the box.
# It does not get the lock's descriptor (9): nothing it leaves running may hold the lock.
node "$shien" box build "$repo/$recipe" --output "$tmp" --deb-cache "$cache_root/debs" >"$built_file.tmp.$$" 9>&- &
builder=$!
rc=0
wait "$builder" || rc=$?
builder=''
if ((rc != 0)); then
  echo "test-box.sh: building $name failed (exit $rc)" >&2
  exit "$rc"
fi

# Box first, then its report, which is what marks it complete: an interruption in between only
# causes a rebuild.
cat "$built_file.tmp.$$" >&2
rm -f "$built_file"
mv -f "$tmp" "$box"
mv -f "$built_file.tmp.$$" "$built_file"
# Only this recipe's boxes: debian-12-arm64-<hash>.box and debian-12-efi-<hash>.box are not old
# debian-12 boxes (the pattern wants the 16 hex digits right after the name).
for old in "$cache/$name"-*.box; do
  if [[ ${old##*/} =~ ^$name-[0-9a-f]{16}\.box$ && $old != "$box" ]]; then rm -f -- "$old" "$old.built"; fi
done
echo "$box"
