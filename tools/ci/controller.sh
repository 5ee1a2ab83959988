#!/usr/bin/env bash
# Run ansible-playbook with the newest claimed ansible-core (requirements/controller-newest.txt) from a
# Debian 13 controller container: Python 3.13, which ansible-core 2.20 and later need (the main venv is
# Python 3.11 and so ansible-core 2.19).
#   controller.sh build                 build the image once (tagged with a hash of this script and the pins)
#   controller.sh NETWORK ARGS...       ansible-playbook ARGS on NETWORK, this checkout mounted at its own path;
#                                       the first line on stderr is `ansible --version`'s
# MOLECULE_* variables pass through (the scenarios' group_vars read them); ANSIBLE_* ones do not (molecule's
# point at its own plugin folders in the main venv): the project's ansible.cfg applies (inject_facts_as_vars
# off), host keys are not checked (test hosts get new keys at every start).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
pins="$top/requirements/controller-newest.txt"
base=localhost/shardwise-redis-host:trixie
hash=$(cat "$0" "$pins" | sha256sum | cut -c1-12)
image="localhost/shardwise-controller:$hash"
# The host's CA bundle: pip inside the build container must trust what this machine trusts.
ca=/etc/ssl/certs/ca-certificates.crt

build() {
  podman image exists "$image" && return 0
  podman image exists "$base" || "$top/tools/lab/image.sh" trixie >/dev/null
  echo "controller: building $image (Debian 13, $(grep -v '^#' "$pins" | tr '\n' ' '))" >&2
  local name="shardwise-controller-build-$$" log
  log=$(mktemp)
  podman run --name "$name" --network podman -v "$ca:/run/host-ca.crt:ro" -v "$pins:/run/pins.txt:ro" \
    -e PIP_CERT=/run/host-ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 "$base" bash -euc '
      apt-get install -y -qq --no-install-recommends python3-venv openssh-client >/dev/null
      python3 -m venv /opt/ansible
      /opt/ansible/bin/pip install -q -r /run/pins.txt
      apt-get clean' >"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; rm -f "$log"; podman rm -f "$name" >/dev/null; exit 1; }
  rm -f "$log"
  podman commit -q --change 'CMD ["/opt/ansible/bin/ansible-playbook", "--version"]' \
    --change 'LABEL shardwise.controller=1' "$name" "$image" >/dev/null
  podman rm -f "$name" >/dev/null
  # Older pin sets' images (make clean removes them all by the label).
  podman images --filter label=shardwise.controller --format '{{.Repository}}:{{.Tag}}' \
    | grep -vxF "$image" | xargs -r podman rmi -f >/dev/null || true
}

case "${1:-}" in
  build) build; echo "$image"; exit 0 ;;
  ""|-*) echo "usage: controller.sh build | controller.sh NETWORK ansible-playbook-args..." >&2; exit 2 ;;
esac
network=$1; shift
build
envs=()
while IFS='=' read -r k _; do
  case "$k" in MOLECULE_*) envs+=(-e "$k") ;; esac
done < <(env)
# Read-only but for .cache (the lab's generated passwords take a lock file there), and no bytecode: Python 3.13 would
# write __pycache__/*.cpython-313.pyc into plugins/, which changes the hash of the converged snapshot
# (tools/ci/molecule.sh) and makes every later scenario converge again.
mkdir -p "$top/.cache"
mounts=(-v "$top:$top:ro" -v "$top/.cache:$top/.cache")
[ -n "${MOLECULE_EPHEMERAL_DIRECTORY:-}" ] && mounts+=(-v "$MOLECULE_EPHEMERAL_DIRECTORY:$MOLECULE_EPHEMERAL_DIRECTORY")
exec podman run --rm --network "$network" "${mounts[@]}" -w "$PWD" "${envs[@]}" \
  -e ANSIBLE_CONFIG="$top/ansible.cfg" -e ANSIBLE_HOST_KEY_CHECKING=False -e ANSIBLE_NOCOLOR=1 -e PYTHONDONTWRITEBYTECODE=1 \
  -e ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR" \
  "$image" bash -c '/opt/ansible/bin/ansible --version | head -n 1 >&2; exec /opt/ansible/bin/ansible-playbook "$@"' \
  ansible-playbook "$@"
