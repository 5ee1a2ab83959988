#!/usr/bin/env bash
# The collection artifact must build and carry no tests, molecule, venv or caches.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out" . >/dev/null
artifact=$(ls "$out"/shardwise-redis-*.tar.gz)
bad=$(tar -tzf "$artifact" | grep -E '^(tests|molecule|\.venv|\.cache|\.ci|tools|bench|inventories/lab)/|__pycache__|/pki/' || true)
if [ -n "$bad" ]; then
  echo "collection artifact carries files it must not:"; echo "$bad" | head -20
  exit 1
fi
echo "build: $(basename "$artifact") $(tar -tzf "$artifact" | wc -l) files, clean"
