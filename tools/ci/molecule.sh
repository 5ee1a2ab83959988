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
start=$(date +%s)
set +e
molecule test -s "$scenario" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo "molecule $scenario: exit $rc after $(( $(date +%s) - start )) s (log: $log)"
[ "$rc" -eq 0 ] || exit "$rc"
secrets=$(sed -n 's/^redis_[a-z_]*_password: //p' molecule/shared/group_vars/redis/redis.yml)
leaks=0
for secret in $secrets; do
  if grep -qF -- "$secret" "$log"; then
    echo "SECRET LEAK: a test password appears in the $scenario output ($log)"; leaks=1
  fi
done
[ "$leaks" -eq 0 ] || exit 1
echo "molecule $scenario: no secret in the output ($(echo "$secrets" | wc -w) checked)"
