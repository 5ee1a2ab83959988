#!/usr/bin/env bash
# Print how to connect to the lab and the state of every node (read-only). LAB_INVENTORY: the lab's inventory
# folder (inventories/lab, or inventories/lab-durable).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
archive=.cache/redis-7.2.4-linux-x86_64.tar.gz
cli=.cache/redis-7.2.4-linux-x86_64/bin/redis-cli
[ -x "$cli" ] || tar -C .cache -xzf "$archive"
pki=.cache/lab/pki
tls=(--tls --cacert "$pki/ca.crt" --cert "$pki/clients/admin.crt" --key "$pki/clients/admin.key")
export REDISCLI_AUTH
REDISCLI_AUTH=$(cat .cache/lab/secrets/admin)

echo
echo "Connect (TLS, mutual auth, ACL user admin; the password is read from a file, never shown):"
echo "  REDISCLI_AUTH=\$(cat .cache/lab/secrets/admin) $cli -c ${tls[*]} --user admin -h 10.89.20.11 -p 6379"
echo "WARNING: the lab runs Redis 7.2.4, without the Lua CVE fixes of 7.2.6-7.2.11 (redis_allow_unpatched_version:"
echo "  true in inventories/lab): fine for a local lab, never for production."
echo "BullMQ users: worker, api (passwords in .cache/lab/secrets/, client certs in $pki/clients/)."
echo
printf '%-10s %-13s %-7s %-8s %-9s %-13s %s\n' NODE ADDRESS ZONE VERSION ROLE SLOTS CLUSTER
while read -r name addr zone; do
  info=$("$cli" "${tls[@]}" --user admin --no-auth-warning -h "$addr" -p 6379 INFO ALL 2>&1 | tr -d '\r') || true
  if ! grep -q '^redis_version:' <<<"$info"; then
    printf '%-10s %-13s %-7s %s\n' "$name" "$addr" "$zone" "DOWN: $(head -c 80 <<<"$info")"
    continue
  fi
  version=$(sed -n 's/^redis_version://p' <<<"$info")
  role=$(sed -n 's/^role://p' <<<"$info")
  cinfo=$("$cli" "${tls[@]}" --user admin --no-auth-warning -h "$addr" -p 6379 CLUSTER INFO | tr -d '\r')
  state=$(sed -n 's/^cluster_state://p' <<<"$cinfo")
  slots=$("$cli" "${tls[@]}" --user admin --no-auth-warning -h "$addr" -p 6379 CLUSTER NODES \
          | awk '/myself/ {s=""; for (i = 9; i <= NF; i++) s = s (s ? "," : "") $i; print (s ? s : "-")}')
  printf '%-10s %-13s %-7s %-8s %-9s %-13s %s\n' "$name" "$addr" "$zone" "$version" "$role" "$slots" "$state"
done < <(sed -n 's/^ *\(redis-[a-z0-9]*\): {ansible_host: \([0-9.]*\), redis_zone: \([a-z-]*\)}.*/\1 \2 \3/p' "${LAB_INVENTORY:-inventories/lab}/hosts.yml")
