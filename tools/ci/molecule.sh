#!/usr/bin/env bash
# Run one molecule scenario: make its network (fixed subnet) and the SSH key the hosts trust, run `molecule test`,
# and fail if any test secret appears in the output (secrets must never be printed).
set -euo pipefail
scenario=${1:?usage: molecule.sh SCENARIO}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
network=shardwise-test
podman network exists "$network" \
  || podman network create --subnet 10.89.30.0/24 --label shardwise=test "$network" >/dev/null
key=.cache/lab/id_ed25519
[ -f "$key" ] || { mkdir -p "$(dirname "$key")"; ssh-keygen -q -t ed25519 -N '' -C shardwise-lab -f "$key"; }
mkdir -p .cache/logs
log=".cache/logs/molecule-$scenario.log"

# Share the converge: the default scenario builds the six hosts with site.yml (and proves it idempotent),
# then molecule/shared/snapshot.yml commits each host as localhost/shardwise-converged:<host>, labelled with
# the hash of everything that shapes a converged host (not molecule/shared/tasks and molecule/shared/plays: the
# scenarios' client tasks and plays). Another scenario starts its six hosts from those images (molecule/shared/restored.yml waits for
# the cluster) only if the label matches this checkout; otherwise it converges with site.yml as before.
# Saves a four-minute converge per scenario.
snapshot_hosts="t-a1 t-a2 t-b1 t-b2 t-c1 t-c2"
SHARDWISE_SNAPSHOT_HASH=$( {
  find roles playbooks plugins meta molecule/shared .config/molecule galaxy.yml ansible.cfg requirements tools/lab \
    \( -path molecule/shared/tasks -o -path molecule/shared/plays -o -name __pycache__ \) -prune -o -type f -print0 \
    | sort -z | xargs -0 sha256sum
  podman image inspect --format '{{.Id}}' localhost/shardwise-redis-host:latest localhost/shardwise-redis-host:trixie
  cat .cache/redis-*.tar.gz.sha256 2>/dev/null
} | sha256sum | cut -c1-16)
export SHARDWISE_SNAPSHOT_HASH
unset SHARDWISE_CONVERGE
if [ "$scenario" != default ] && [ "${SHARDWISE_SNAPSHOT:-1}" = 1 ]; then
  usable=1
  [ "$(cat .cache/snapshot/hash 2>/dev/null)" = "$SHARDWISE_SNAPSHOT_HASH" ] || usable=0
  for h in $snapshot_hosts; do
    image="localhost/shardwise-converged:$h"
    if podman image exists "$image"; then
      [ "$(podman image inspect --format '{{index .Labels "shardwise.converged"}}' "$image")" = "$SHARDWISE_SNAPSHOT_HASH" ] || usable=0
    else
      usable=0
    fi
  done
  if [ "$usable" = 1 ]; then
    for h in $snapshot_hosts; do
      var=SHARDWISE_IMAGE_$(echo "$h" | tr 'a-z-' 'A-Z_')
      export "$var=localhost/shardwise-converged:$h"
    done
    export SHARDWISE_CONVERGE=../shared/restored.yml
    echo "molecule $scenario: hosts start from the converged snapshot $SHARDWISE_SNAPSHOT_HASH (SHARDWISE_SNAPSHOT=0 converges instead)"
  else
    echo "molecule $scenario: no converged snapshot of this checkout; converging with site.yml"
  fi
fi
start=$(date +%s)
set +e
molecule test -s "$scenario" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo "molecule $scenario: exit $rc after $(( $(date +%s) - start )) s (log: $log)"
secrets=$(sed -n 's/^redis_[a-z_]*_password: //p' molecule/shared/group_vars/redis/redis.yml)
if [ "$rc" -ne 0 ]; then
  # CI shows only the end of the output: repeat each failed task and the telling part of its result last
  # (tools/ci/failed_task.py), test passwords masked.
  echo "molecule $scenario failed at:"
  python3 tools/ci/failed_task.py "$log" \
    | while IFS= read -r line; do
        for secret in $secrets; do line=${line//"$secret"/********}; done
        printf '  %s\n' "$line"
      done | tail -n 60
  exit "$rc"
fi
leaks=0
for secret in $secrets; do
  if grep -qF -- "$secret" "$log"; then
    echo "SECRET LEAK: a test password appears in the $scenario output ($log)"; leaks=1
  fi
done
[ "$leaks" -eq 0 ] || exit 1
echo "molecule $scenario: no secret in the output ($(echo "$secrets" | wc -w) checked)"
