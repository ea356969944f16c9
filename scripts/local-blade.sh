#!/usr/bin/env bash
# Turns this machine into a "local blade" for shien's demo and integration tests:
# Debian packages, the package installed as the blade's server side in /opt/shien, two student
# accounts, per-user storage, /etc/shien/config.json, an sshd on 127.0.0.1:2222, "laptop" homes
# with the students' keys, libvirtd, libguestfs usable by students, and the sudo rule for ie-virsh.
#
#   scripts/local-blade.sh up       set everything up (as root; idempotent, a second run is fast)
#   scripts/local-blade.sh down     stop the blade's sshd (libvirtd and virtlogd keep running)
#   scripts/local-blade.sh status   show what is running
#   scripts/local-blade.sh class N  after up: N more students (e195801 ...), each with a laptop home,
#                                    for tests and benches of a class pushing at once
#
# At the end of `up`, /var/lib/shien-blade/blade.json describes the blade for tests and the demo.
set -euo pipefail
umask 022

# Debian packages the blade needs.
PACKAGES=(openssh-server openssh-client qemu-utils qemu-system-x86 libguestfs-tools linux-image-amd64
  libvirt-daemon-system libvirt-clients sudo acl podman runc)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# What of the repository is installed on the blade (oclif.manifest.json too, when built).
PAYLOAD=(package.json package-lock.json bin dist templates node_modules)
INSTALL_DIR=/opt/shien
BIN_DIR=/usr/local/bin

STORAGE_ROOT=/gfs2/shien
CONFIG_FILE=/etc/shien/config.json
SUDOERS_FILE=/etc/sudoers.d/shien
USERS_GROUP=shien-users
ADMIN_GROUP=shien-admin
QEMU_USER=libvirt-qemu
LIBVIRT_URI=qemu:///system
STUDENT=e195701
OTHER_STUDENT=e195702

SSH_HOST=127.0.0.1
SSH_PORT=2222
HOST_ALIAS=blade
STATE_DIR=/var/lib/shien-blade
SSHD=/usr/sbin/sshd
SSHD_CONFIG=$STATE_DIR/sshd_config
HOST_KEY=$STATE_DIR/ssh_host_ed25519_key
SSHD_PID=$STATE_DIR/sshd.pid
SSHD_LOG=$STATE_DIR/sshd.log
# sha256 of the sshd config and host key the running sshd was started with.
SSHD_STAMP=$STATE_DIR/sshd.started
GUESTFS_STAMP=$STATE_DIR/guestfs.checked
# The fixed libguestfs appliance every push's harden boots (push.appliance).
APPLIANCE_DIR=$STATE_DIR/appliance
LIBVIRT_LOG=$STATE_DIR/libvirt-start.log
LAPTOP_HOME=$STATE_DIR/laptop
OTHER_LAPTOP_HOME=$STATE_DIR/laptop2
BLADE_JSON=$STATE_DIR/blade.json
LOCK_FILE=$STATE_DIR/.lock

CHANGES=0
TMP_PATHS=()

say() { printf '[local-blade] %s\n' "$*"; }
changed() { CHANGES=$((CHANGES + 1)); say "$*"; }
die() { printf '[local-blade] error: %s\n' "$*" >&2; exit 1; }
cleanup() { local p; for p in "${TMP_PATHS[@]}"; do rm -rf -- "$p"; done; }
trap cleanup EXIT

usage() {
  cat >&2 <<'EOF'
usage: scripts/local-blade.sh up|down|status|class N
  up      set this machine up as a local shien blade (as root; safe to run again)
  down    stop the blade's sshd (libvirtd and virtlogd are left running)
  status  show what is running
  class N after up: N more students e195801..., with laptop homes (described in class.json)
EOF
  exit 2
}

# --- small idempotent helpers ------------------------------------------------------------

# ensure_owner_mode PATH OWNER:GROUP MODE: fixes owner and mode when they differ.
ensure_owner_mode() {
  local path=$1 owner=$2 mode=$3 want
  want=$(printf '%o' "$((8#$mode))")
  if [[ $(stat -c '%U:%G' "$path") != "$owner" ]]; then
    chown "$owner" "$path"
    changed "owner of $path set to $owner"
  fi
  if [[ $(stat -c '%a' "$path") != "$want" ]]; then
    chmod "$mode" "$path"
    changed "mode of $path set to $mode"
  fi
}

# ensure_dir PATH OWNER:GROUP MODE
ensure_dir() {
  local path=$1 owner=$2 mode=$3
  if [[ -L $path || (-e $path && ! -d $path) ]]; then
    die "$path exists and is not a directory"
  fi
  if [[ ! -d $path ]]; then
    mkdir -m "$mode" -- "$path"
    chown "$owner" "$path"
    changed "created $path"
  fi
  ensure_owner_mode "$path" "$owner" "$mode"
}

# write_file PATH OWNER:GROUP MODE < content: replaces PATH (atomically) only when the content
# differs. Sets FILE_CHANGED to 1 or 0.
write_file() {
  local path=$1 owner=$2 mode=$3 tmp
  tmp=$(mktemp "$(dirname "$path")/.$(basename "$path").XXXXXX")
  TMP_PATHS+=("$tmp")
  cat >"$tmp"
  if [[ -f $path && ! -L $path ]] && cmp -s "$tmp" "$path"; then
    rm -f -- "$tmp"
    FILE_CHANGED=0
  else
    chown "$owner" "$tmp"
    chmod "$mode" "$tmp"
    mv -f -- "$tmp" "$path"
    FILE_CHANGED=1
    changed "wrote $path"
  fi
  ensure_owner_mode "$path" "$owner" "$mode"
}


in_group() { id -nG "$1" | tr ' ' '\n' | grep -qx -- "$2"; }

# --- 1. Debian packages --------------------------------------------------------------------
install_packages() {
  local p missing=()
  for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != 'install ok installed' ]]; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    say "packages: all ${#PACKAGES[@]} installed"
    return
  fi
  say "packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confnew "${missing[@]}"
  changed "installed ${missing[*]}"
}

# --- 2. the package, installed as the blade's server side ------------------------------------

# One line per file: path, type, size, mtime, link target (directories: path and type only).
# cp -a keeps mtimes, so a source tree and its installed copy list the same.
tree_listing() {
  find "$@" \( -type d -printf '%p|d\n' \) -o -printf '%p|%y|%s|%T@|%l\n' | LC_ALL=C sort
}

install_package() {
  local items=("${PAYLOAD[@]}") src_sum dst_sum stage old bad
  [[ -f $REPO_ROOT/oclif.manifest.json ]] && items+=(oclif.manifest.json)
  src_sum=$(cd "$REPO_ROOT" && tree_listing "${items[@]}" | sha256sum)
  dst_sum=missing
  if [[ -d $INSTALL_DIR ]]; then
    dst_sum=$(cd "$INSTALL_DIR" && tree_listing $(ls -A) | sha256sum)
  fi
  if [[ $src_sum != "$dst_sum" ]]; then
    # Copy into a fresh directory next to the old one, then swap by rename.
    rm -rf /opt/.shien.new.* /opt/.shien.old.*
    stage=$(mktemp -d /opt/.shien.new.XXXXXX)
    TMP_PATHS+=("$stage")
    (cd "$REPO_ROOT" && cp -a -- "${items[@]}" "$stage/")
    chown -R root:root "$stage"
    chmod -R go-w,a+rX "$stage"
    chmod 0755 "$stage"
    if [[ -e $INSTALL_DIR ]]; then
      old=/opt/.shien.old.$$
      mv -T -- "$INSTALL_DIR" "$old"
      TMP_PATHS+=("$old")
    fi
    mv -T -- "$stage" "$INSTALL_DIR"
    [[ -z ${old:-} ]] || rm -rf -- "$old"
    changed "installed the package from $REPO_ROOT into $INSTALL_DIR"
  fi
  # ie-virsh runs as root from here: nothing in it may be writable by anyone but root.
  bad=$(find "$INSTALL_DIR" ! -type l \( ! -user root -o ! -group root -o -perm /022 -o ! -perm -444 \) -print -quit)
  if [[ -n $bad ]]; then
    chown -R root:root "$INSTALL_DIR"
    chmod -R go-w,a+rX "$INSTALL_DIR"
    changed "made $INSTALL_DIR root-owned and read-only for others (e.g. $bad)"
  fi
  say "package: $INSTALL_DIR is current"

  # Wrappers rather than symlinks: they pin the node binary (students' PATH cannot choose which
  # node runs the root-side ie-virsh; sudo's secure_path finds /usr/local/bin either way), and
  # the sudo rule names a plain root-owned file rather than a link.
  write_file "$BIN_DIR/shien" root:root 0755 <<EOF
#!/bin/sh
# shien (blade side), installed by scripts/local-blade.sh; the package is in $INSTALL_DIR.
exec $NODE_BIN $INSTALL_DIR/bin/shien.js "\$@"
EOF
  write_file "$BIN_DIR/ie-virsh" root:root 0755 <<EOF
#!/bin/sh
# ie-virsh, run as root through sudo (/etc/sudoers.d/shien); installed by scripts/local-blade.sh.
exec $NODE_BIN $INSTALL_DIR/bin/ie-virsh.js "\$@"
EOF
  write_file "$BIN_DIR/ie-docker" root:root 0755 <<EOF
#!/bin/sh
# ie-docker, run as root through sudo (/etc/sudoers.d/shien); installed by scripts/local-blade.sh.
exec $NODE_BIN $INSTALL_DIR/bin/ie-docker.js "\$@"
EOF
}

# --- 3. accounts ---------------------------------------------------------------------------
ensure_group() {
  if ! getent group "$1" >/dev/null; then
    groupadd "$1"
    changed "created group $1"
  fi
}

ensure_student() {
  local account=$1 home=/home/$1 entry pw
  if ! getent passwd "$account" >/dev/null; then
    useradd --create-home --home-dir "$home" --shell /bin/bash --groups "$USERS_GROUP" "$account"
    changed "created account $account"
  fi
  entry=$(getent passwd "$account")
  [[ $(cut -d: -f6 <<<"$entry") == "$home" ]] || die "account $account exists with home $(cut -d: -f6 <<<"$entry"), expected $home"
  if [[ $(cut -d: -f7 <<<"$entry") != /bin/bash ]]; then
    usermod --shell /bin/bash "$account"
    changed "shell of $account set to /bin/bash"
  fi
  if ! in_group "$account" "$USERS_GROUP"; then
    usermod --append --groups "$USERS_GROUP" "$account"
    changed "added $account to $USERS_GROUP"
  fi
  # sshd runs with UsePAM no and refuses locked accounts ("!" password): "*" is no password,
  # not locked.
  pw=$(getent shadow "$account" | cut -d: -f2)
  if [[ -z $pw || $pw == '!'* ]]; then
    usermod -p '*' "$account"
    changed "unlocked $account (password field *)"
  fi
  if [[ ! -d $home ]]; then
    mkdir -p "$home"
    cp -a /etc/skel/. "$home/"
    chown -R "$account:$(id -gn "$account")" "$home"
    changed "created $home"
  fi
  ensure_owner_mode "$home" "$account:$(id -gn "$account")" 0700
}

# --- 4. storage ----------------------------------------------------------------------------
ensure_storage() {
  ensure_dir "$(dirname "$STORAGE_ROOT")" root:root 0755
  ensure_dir "$STORAGE_ROOT" root:root 0755
  ensure_dir "$STORAGE_ROOT/users" root:root 0755
  ensure_dir "$STORAGE_ROOT/boxes" root:root 0755
  # The students' folders as an admin makes them: 0700 for the account, admins may read.
  local report
  report=$("$NODE_BIN" "$INSTALL_DIR/bin/shien.js" admin provision --group "$USERS_GROUP" --json) ||
    die "shien admin provision failed: $report"
  if "$NODE_BIN" -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(r.created.length + r.fixed.length > 0 ? 0 : 1)' <<<"$report"; then
    changed "provisioned the storage of $USERS_GROUP"
  fi
  say "storage: $STORAGE_ROOT ready"
}

# --- 5. blade configuration ----------------------------------------------------------------
write_config() {
  ensure_dir "$(dirname "$CONFIG_FILE")" root:root 0755
  write_file "$CONFIG_FILE" root:root 0644 <<EOF
{
  "storageRoot": "$STORAGE_ROOT",
  "domainType": "qemu",
  "libvirtUri": "$LIBVIRT_URI",
  "sshPortPool": {"from": 22000, "to": 22099},
  "listenAddress": "127.0.0.1",
  "limits": {"default": {"vms": 4, "vcpus": 2, "memoryMiB": 2048}, "groups": {"$USERS_GROUP": {"debug": true}}},
  "qemuUser": "$QEMU_USER",
  "adminGroup": "$ADMIN_GROUP",
  "bladeCommand": "shien",
  "push": {"concurrent": 2, "appliance": "$APPLIANCE_DIR"},
  "docker": {
    "engine": "podman",
    "engineArgs": ["--runtime", "runc"],
    "runArgs": ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"],
    "buildArgs": ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"],
    "portPool": {"from": 24000, "to": 24099},
    "images": ["localhost/shien-test-busybox:latest"],
    "proxy": {"domain": "containers.localhost", "includeFile": "$STATE_DIR/nginx/containers.conf"}
  }
}
EOF
}

# --- 6. sshd -------------------------------------------------------------------------------

# Prints the pid of the blade's running sshd, or fails.
sshd_pid() {
  local pid
  [[ -f $SSHD_PID ]] || return 1
  pid=$(<"$SSHD_PID")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null || true) == "$SSHD" ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$SSHD_CONFIG" || return 1
  printf '%s\n' "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$SSH_HOST/$SSH_PORT") 2>/dev/null; }

stop_sshd() {
  local pid i
  pid=$(sshd_pid) || return 0
  kill -TERM "$pid"
  for ((i = 0; i < 50; i++)); do
    [[ -d /proc/$pid ]] || break
    sleep 0.1
  done
  [[ ! -d /proc/$pid ]] || die "sshd (pid $pid) did not stop"
  rm -f -- "$SSHD_PID" "$SSHD_STAMP"
  say "sshd: stopped (pid $pid)"
}

ensure_sshd() {
  local tmp stamp pid i
  if [[ ! -f $HOST_KEY ]]; then
    ssh-keygen -q -t ed25519 -N '' -C "shien-local-blade" -f "$HOST_KEY"
    changed "generated the host key $HOST_KEY"
  fi
  if [[ ! -f $HOST_KEY.pub ]]; then
    ssh-keygen -y -f "$HOST_KEY" >"$HOST_KEY.pub"
    changed "wrote $HOST_KEY.pub"
  fi
  ensure_owner_mode "$HOST_KEY" root:root 0600
  ensure_owner_mode "$HOST_KEY.pub" root:root 0644
  # sshd's privilege separation directory (normally made by the init system).
  [[ -d /run/sshd ]] || mkdir -m 0755 /run/sshd

  tmp=$(mktemp "$STATE_DIR/.sshd_config.XXXXXX")
  TMP_PATHS+=("$tmp")
  cat >"$tmp" <<EOF
# sshd of the local shien blade; written by scripts/local-blade.sh (edits are overwritten).
Port $SSH_PORT
ListenAddress $SSH_HOST
HostKey $HOST_KEY
PidFile $SSHD_PID
UsePAM no
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
X11Forwarding no
PrintMotd no
MaxSessions 20
MaxStartups 50
Subsystem sftp internal-sftp
EOF
  "$SSHD" -t -f "$tmp" || die "sshd rejected its configuration (see above)"
  write_file "$SSHD_CONFIG" root:root 0644 <"$tmp"

  stamp=$(cat "$SSHD_CONFIG" "$HOST_KEY" | sha256sum | cut -d' ' -f1)
  if pid=$(sshd_pid); then
    if [[ -f $SSHD_STAMP && $(<"$SSHD_STAMP") == "$stamp" ]]; then
      say "sshd: running on $SSH_HOST:$SSH_PORT (pid $pid)"
      return
    fi
    say "sshd: configuration changed, restarting"
    stop_sshd
  fi
  if port_open; then
    die "$SSH_HOST:$SSH_PORT is already in use by another program; the blade's sshd cannot start"
  fi
  # sshd binds, then detaches; its log goes to $SSHD_LOG.
  "$SSHD" -f "$SSHD_CONFIG" -E "$SSHD_LOG" </dev/null >/dev/null 2>&1 9>&- ||
    die "sshd did not start: $(tail -n 5 "$SSHD_LOG" 2>/dev/null)"
  for ((i = 0; i < 100; i++)); do
    if pid=$(sshd_pid) && port_open; then break; fi
    sleep 0.1
  done
  pid=$(sshd_pid) && port_open || die "sshd is not answering on $SSH_HOST:$SSH_PORT: $(tail -n 5 "$SSHD_LOG" 2>/dev/null)"
  printf '%s\n' "$stamp" >"$SSHD_STAMP"
  changed "sshd: started on $SSH_HOST:$SSH_PORT (pid $pid, log $SSHD_LOG)"
}

# --- 7. the laptops ------------------------------------------------------------------------

# setup_laptop LAPTOP_HOME ACCOUNT: a key for ACCOUNT, authorized on the blade, known_hosts and
# an ssh config with `Host blade`.
setup_laptop() {
  local laptop=$1 account=$2 key blob home=/home/$2 owner auth host_line others
  local begin='# BEGIN shien local blade (managed by scripts/local-blade.sh)' end='# END shien local blade'
  key=$laptop/.ssh/id_ed25519
  ensure_dir "$laptop" root:root 0700
  ensure_dir "$laptop/.ssh" root:root 0700
  if [[ ! -f $key ]]; then
    ssh-keygen -q -t ed25519 -N '' -C "$account@shien-laptop" -f "$key"
    changed "generated $key"
  fi
  if [[ ! -f $key.pub ]]; then
    ssh-keygen -y -f "$key" >"$key.pub"
    changed "wrote $key.pub"
  fi
  ensure_owner_mode "$key" root:root 0600
  ensure_owner_mode "$key.pub" root:root 0644

  # Authorize the key for the account on the blade.
  owner=$account:$(id -gn "$account")
  ensure_dir "$home/.ssh" "$owner" 0700
  auth=$home/.ssh/authorized_keys
  blob=$(cut -d' ' -f2 "$key.pub")
  if [[ ! -f $auth ]] || ! grep -qF -- "$blob" "$auth"; then
    cat "$key.pub" >>"$auth"
    changed "authorized $key.pub for $account"
  fi
  ensure_owner_mode "$auth" "$owner" 0600

  # known_hosts: the blade's host key; other entries (VMs, other hosts) are kept.
  host_line="[$SSH_HOST]:$SSH_PORT $(cut -d' ' -f1,2 "$HOST_KEY.pub")"
  others=""
  if [[ -f $laptop/.ssh/known_hosts ]]; then
    others=$(awk -v h="[$SSH_HOST]:$SSH_PORT" '{ split($1, names, ","); for (i in names) if (names[i] == h) next; print }' \
      "$laptop/.ssh/known_hosts")
  fi
  write_file "$laptop/.ssh/known_hosts" root:root 0644 < <(
    printf '%s\n' "$host_line"
    [[ -z $others ]] || printf '%s\n' "$others"
  )

  # ssh config: our block first (ssh takes the first match), anything else after it.
  others=""
  if [[ -f $laptop/.ssh/config ]]; then
    others=$(awk -v b="$begin" -v e="$end" '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' \
      "$laptop/.ssh/config")
  fi
  write_file "$laptop/.ssh/config" root:root 0600 < <(
    cat <<EOF
$begin
Host $HOST_ALIAS
  HostName $SSH_HOST
  Port $SSH_PORT
  User $account
  IdentityFile $key
  IdentitiesOnly yes
  UserKnownHostsFile $laptop/.ssh/known_hosts
  StrictHostKeyChecking yes
$end
EOF
    [[ -z $others ]] || printf '%s\n' "$others"
  )
}

# --- 8. libvirt ----------------------------------------------------------------------------
libvirt_answers() { virsh -c "$LIBVIRT_URI" version >/dev/null 2>&1; }

ensure_libvirt() {
  local i
  if libvirt_answers; then
    say "libvirt: $LIBVIRT_URI answers"
    return
  fi
  : >"$LIBVIRT_LOG"
  # No init system here: start the daemons by hand. They detach; their output goes to a log so
  # that callers reading this script's output are not held open, and they do not get the lock's
  # descriptor (9): a daemon holding it would make every later run wait for the lock forever.
  if ! pidof virtlogd >/dev/null; then
    virtlogd -d </dev/null >>"$LIBVIRT_LOG" 2>&1 9>&- || die "virtlogd did not start: $(tail -n 5 "$LIBVIRT_LOG")"
  fi
  if ! pidof libvirtd >/dev/null; then
    libvirtd -d </dev/null >>"$LIBVIRT_LOG" 2>&1 9>&- || die "libvirtd did not start: $(tail -n 5 "$LIBVIRT_LOG")"
  fi
  for ((i = 0; i < 60; i++)); do
    libvirt_answers && break
    sleep 0.5
  done
  libvirt_answers || die "libvirtd does not answer on $LIBVIRT_URI after 30 s: $(virsh -c "$LIBVIRT_URI" version 2>&1 | tail -n 3)"
  changed "libvirt: started virtlogd and libvirtd ($LIBVIRT_URI answers)"
}

# --- 9. libguestfs for students --------------------------------------------------------------
# One appliance for every student (libguestfs-make-fixed-appliance), rebuilt when libguestfs,
# supermin or the kernel changes; without it each student's first push builds ~700 MB of its own.
ensure_appliance() {
  local want
  want="$(dpkg-query -W -f '${Package}=${Version} ' libguestfs0 supermin linux-image-amd64) $(uname -r)"
  if [[ -f $APPLIANCE_DIR/stamp && $(<"$APPLIANCE_DIR/stamp") == "$want" ]]; then
    say "libguestfs appliance: $APPLIANCE_DIR"
    return
  fi
  rm -rf "$APPLIANCE_DIR.new"
  libguestfs-make-fixed-appliance "$APPLIANCE_DIR.new" || die "libguestfs-make-fixed-appliance failed"
  chown -R root:root "$APPLIANCE_DIR.new"
  chmod -R go-w "$APPLIANCE_DIR.new"
  printf '%s\n' "$want" >"$APPLIANCE_DIR.new/stamp"
  rm -rf "$APPLIANCE_DIR"
  mv "$APPLIANCE_DIR.new" "$APPLIANCE_DIR"
  changed "built the fixed libguestfs appliance in $APPLIANCE_DIR"
}

ensure_guestfs() {
  local k stamp out
  # Debian installs kernels mode 0600; libguestfs builds its appliance from the host kernel.
  for k in /boot/vmlinuz-*; do
    [[ -e $k ]] || die "no kernel in /boot (linux-image-amd64 is needed by libguestfs)"
    if [[ $(stat -c '%a' "$k") != 644 ]]; then
      chmod 0644 "$k"
      changed "made $k readable (libguestfs as a normal user)"
    fi
  done
  # One launch of the fixed appliance as the student, once per kernel, libguestfs and appliance (~20-60 s).
  stamp=$(ls -l /boot/vmlinuz-* "$APPLIANCE_DIR/stamp" | sha256sum | cut -d' ' -f1)-$(dpkg-query -W -f='${Version}' libguestfs0 2>/dev/null || true)
  if [[ -f $GUESTFS_STAMP && $(<"$GUESTFS_STAMP") == "$stamp" ]]; then
    say "libguestfs: checked before for $STUDENT"
    return
  fi
  say "libguestfs: launching an appliance as $STUDENT to check it works (about a minute)..."
  if ! out=$(cd / && timeout 600 runuser -u "$STUDENT" -- env -i PATH=/usr/bin:/bin HOME="/home/$STUDENT" \
    LIBGUESTFS_PATH="$APPLIANCE_DIR" LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish -a /dev/null run 2>&1); then
    printf '%s\n' "$out" | tail -n 20 >&2
    die "libguestfs does not work for $STUDENT (see above)"
  fi
  printf '%s\n' "$stamp" >"$GUESTFS_STAMP"
  changed "libguestfs: works for $STUDENT"
}

# --- 10. sudo rule -------------------------------------------------------------------------
ensure_sudoers() {
  local tmp
  tmp=$(mktemp "$STATE_DIR/.sudoers.XXXXXX")
  TMP_PATHS+=("$tmp")
  # The rule the README and docs/ie-virsh.md quote, with this blade's group and folder.
  sed -e "s|%shien-users |%$USERS_GROUP |" -e "s|/usr/local/bin/|$BIN_DIR/|g" "$REPO_ROOT/templates/sudoers-shien" >"$tmp"
  visudo -c -q -f "$tmp" || die "visudo rejected the sudo rule"
  write_file "$SUDOERS_FILE" root:root 0440 <"$tmp"
}

# --- 11. blade.json ------------------------------------------------------------------------
write_blade_json() {
  FINGERPRINT=$(ssh-keygen -l -f "$HOST_KEY.pub" | cut -d' ' -f2)
  write_file "$BLADE_JSON" root:root 0644 <<EOF
{
  "host": "$SSH_HOST",
  "port": $SSH_PORT,
  "hostAlias": "$HOST_ALIAS",
  "account": "$STUDENT",
  "otherAccount": "$OTHER_STUDENT",
  "laptopHome": "$LAPTOP_HOME",
  "otherLaptopHome": "$OTHER_LAPTOP_HOME",
  "identityFile": "$LAPTOP_HOME/.ssh/id_ed25519",
  "knownHosts": "$LAPTOP_HOME/.ssh/known_hosts",
  "sshConfig": "$LAPTOP_HOME/.ssh/config",
  "otherIdentityFile": "$OTHER_LAPTOP_HOME/.ssh/id_ed25519",
  "otherKnownHosts": "$OTHER_LAPTOP_HOME/.ssh/known_hosts",
  "otherSshConfig": "$OTHER_LAPTOP_HOME/.ssh/config",
  "storageRoot": "$STORAGE_ROOT",
  "hostKeyFingerprint": "$FINGERPRINT",
  "configFile": "$CONFIG_FILE",
  "installDir": "$INSTALL_DIR",
  "usersGroup": "$USERS_GROUP",
  "adminGroup": "$ADMIN_GROUP",
  "libvirtUri": "$LIBVIRT_URI",
  "stateDir": "$STATE_DIR"
}
EOF
}

# --- commands ------------------------------------------------------------------------------
cmd_up() {
  [[ -d $REPO_ROOT/dist ]] || { printf '[local-blade] error: %s/dist is missing: run npm run build first\n' "$REPO_ROOT" >&2; exit 2; }
  NODE_BIN=$(command -v node) || die "node is not installed"
  NODE_BIN=$(readlink -f "$NODE_BIN")
  [[ $(stat -c '%U' "$NODE_BIN") == root && $(( 8#$(stat -c '%a' "$NODE_BIN") & 8#022 )) -eq 0 ]] ||
    die "$NODE_BIN must be root-owned and not writable by others (ie-virsh runs it as root)"
  [[ $(stat -c '%U' /opt) == root && $(( 8#$(stat -c '%a' /opt) & 8#022 )) -eq 0 ]] ||
    die "/opt must be root-owned and not writable by others"

  install_packages
  install_package
  ensure_group "$USERS_GROUP"
  ensure_group "$ADMIN_GROUP"
  ensure_student "$STUDENT"
  ensure_student "$OTHER_STUDENT"
  say "accounts: $STUDENT and $OTHER_STUDENT in $USERS_GROUP; admin group $ADMIN_GROUP"
  write_config
  ensure_storage
  ensure_sshd
  setup_laptop "$LAPTOP_HOME" "$STUDENT"
  setup_laptop "$OTHER_LAPTOP_HOME" "$OTHER_STUDENT"
  say "laptops: $LAPTOP_HOME ($STUDENT), $OTHER_LAPTOP_HOME ($OTHER_STUDENT)"
  ensure_libvirt
  ensure_appliance
  ensure_guestfs
  ensure_sudoers
  write_blade_json

  cat <<EOF
[local-blade] ready in ${SECONDS}s ($( ((CHANGES)) && printf '%d changes' "$CHANGES" || printf 'nothing to change'))
  blade     ssh -F $LAPTOP_HOME/.ssh/config $HOST_ALIAS   ($STUDENT@$SSH_HOST:$SSH_PORT, host key $FINGERPRINT)
  other     ssh -F $OTHER_LAPTOP_HOME/.ssh/config $HOST_ALIAS   ($OTHER_STUDENT)
  storage   $STORAGE_ROOT      config $CONFIG_FILE
  package   $INSTALL_DIR       commands $BIN_DIR/shien, $BIN_DIR/ie-virsh (sudo rule $SUDOERS_FILE)
  libvirt   $LIBVIRT_URI (domain type qemu, TCG)
  described $BLADE_JSON
EOF
}

# N students of a class (e195801, e195802, ...): accounts, storage, laptops; class.json lists them.
cmd_class() {
  local n=$1 i account laptop entries=()
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 60 ]] || die "class takes a number of students from 1 to 60, not '$n'"
  [[ -f $BLADE_JSON ]] || die "run 'up' first ($BLADE_JSON is missing)"
  NODE_BIN=$(readlink -f "$(command -v node)")
  for ((i = 1; i <= n; i++)); do
    account=$(printf 'e1958%02d' "$i")
    ensure_student "$account"
  done
  ensure_storage
  for ((i = 1; i <= n; i++)); do
    account=$(printf 'e1958%02d' "$i")
    laptop=$STATE_DIR/class/$account
    ensure_dir "$STATE_DIR/class" root:root 0755
    setup_laptop "$laptop" "$account"
    entries+=("{\"account\": \"$account\", \"laptopHome\": \"$laptop\"}")
  done
  write_file "$STATE_DIR/class.json" root:root 0644 < <(
    local sep='' entry
    printf '['
    for entry in "${entries[@]}"; do printf '%s\n  %s' "$sep" "$entry"; sep=,; done
    printf '\n]\n'
  )
  say "class: $n students ($(printf 'e1958%02d' 1) to $account), laptops in $STATE_DIR/class, listed in $STATE_DIR/class.json"
}

cmd_down() {
  stop_sshd
  say "down: the blade's sshd is stopped; libvirtd and virtlogd are left running (VMs may use them)."
  say "      Accounts, storage, /opt/shien and the sudo rule are kept; 'up' brings sshd back."
}

cmd_status() {
  local pid
  if pid=$(sshd_pid); then say "sshd: running on $SSH_HOST:$SSH_PORT (pid $pid)"; else say "sshd: not running"; fi
  if libvirt_answers; then say "libvirt: $LIBVIRT_URI answers"; else say "libvirt: $LIBVIRT_URI does not answer"; fi
  if [[ -f $BLADE_JSON ]]; then say "described in $BLADE_JSON"; else say "not set up ($BLADE_JSON missing)"; fi
}

# The processes that have the lock file open (pid and command line), for the error message.
lock_holders() {
  local fd pid
  for fd in /proc/[0-9]*/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == "$LOCK_FILE" ]] || continue
    pid=${fd#/proc/}
    pid=${pid%%/*}
    [[ $pid == "$$" ]] && continue
    printf '%s (%s) ' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done
}

main() {
  case $# in
  1) case $1 in up | down | status) ;; *) usage ;; esac ;;
  2) [[ $1 == class ]] || usage ;;
  *) usage ;;
  esac
  [[ $EUID -eq 0 ]] || die "run as root (sudo bash scripts/local-blade.sh $1)"
  mkdir -p -m 0755 "$STATE_DIR"
  # One run at a time: test processes may call `up` concurrently.
  exec 9>"$LOCK_FILE"
  if ! flock -n 9; then
    say "waiting for another run of local-blade.sh to finish..."
    flock -w 300 9 || die "$LOCK_FILE has been held for 5 minutes, by: $(lock_holders)"
    SECONDS=0
  fi
  case $1 in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  class) cmd_class "$2" ;;
  esac
}

main "$@"
