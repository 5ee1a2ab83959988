# shellcheck shell=bash
# bash: have Redis itself read a candidate redis.conf (on stdin) before it replaces the live one (roles/server/tasks/configure.yml).
# redis-server parses the candidate and stops at a sentinel directive appended after it, so it never starts, binds or
# touches data; the logfile line is left out (Redis opens that file while parsing). Prints the directive Redis
# refuses and its reason, never a value (redis_config_extra may carry a secret). SERVER: the redis-server binary.
# Exit 0: Redis accepts the file.
set -uo pipefail
check=$(mktemp)
trap 'rm -f "$check"' EXIT
sed '/^logfile /d' > "$check"
out=$("$SERVER" "$check" --shardwise-config-check yes 2>&1)
case "$out" in *"'shardwise-config-check"*) exit 0 ;; esac
name=$(printf '%s\n' "$out" | sed -n "s/^>>> '\([^ ']*\).*/\1/p" | head -n 1)
why=$(printf '%s\n' "$out" | grep -v '^\*\*\*\|^Reading the configuration\|^>>>' | tail -n 1)
echo "Redis refuses the new redis.conf at its ${name:-?} directive: $why"
exit 1
