#!/usr/bin/env bash
# The main job, on one machine: sets up a local blade (sshd, libvirtd, storage, ie-virsh), builds
# the real Debian test box, and pushes it end to end as student e195701; then logs in to the VM
# with the student's own key. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

SLOT=${SLOT:-01}
bash scripts/deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
BOX=$(bash scripts/test-box.sh | tail -n 1)
bash scripts/local-blade.sh up
LAPTOP=/var/lib/shien-blade/laptop

echo "== shien push $BOX --host blade --slot $SLOT --replace (as the student's laptop, HOME=$LAPTOP)"
HOME=$LAPTOP XDG_CONFIG_HOME=$LAPTOP/.config SSH_AUTH_SOCK= \
  node bin/shien.js push "$BOX" --host blade --slot "$SLOT" --replace --name debian-12

PORT=$(HOME=$LAPTOP ssh -F "$LAPTOP/.ssh/config" blade sudo -n ie-virsh list --json \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const d=JSON.parse(s).domains.find(x=>x.slot===process.argv[1]);console.log(d?.sshPort??"")})' "$SLOT")
echo "== waiting for the VM's sshd on port $PORT (TCG: a minute or two)"
for _ in $(seq 60); do
  # The blade is this machine, so the forwarded port is reached directly (elsewhere: ssh -J blade ...).
  if ssh -i "$LAPTOP/.ssh/id_ed25519" -p "$PORT" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
      -o UserKnownHostsFile="$LAPTOP/.ssh/known_hosts.vms" -o ConnectTimeout=5 vagrant@127.0.0.1 \
      'echo "logged in as $(id -un) on $(hostname) with the student key"'; then
    exit 0
  fi
  sleep 5
done
echo "The VM did not answer on port $PORT; see: ssh -F $LAPTOP/.ssh/config blade sudo ie-virsh list" >&2
exit 1
