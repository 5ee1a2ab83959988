#!/usr/bin/env bash
# The collection as a Galaxy user gets it: build the artifact (no tests, molecule, venv, caches or
# developer-only files in it), install it alone into an empty collections path, then, outside this
# checkout (no ansible.cfg): the FQCN playbooks pass syntax-check, every module, filter and role renders
# in ansible-doc, and site.yml against an inventory whose group is not named redis fails loudly before
# contacting any host.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out" . >/dev/null
artifact=$(ls "$out"/shardwise-redis-*.tar.gz)
tar -tzf "$artifact" > "$out/files.txt"
bad=$(grep -E '^(tests|molecule|\.venv|\.cache|\.ci|\.config|\.github|tools|bench|requirements|inventories/lab)/|^(DEVELOPERS\.md|Makefile|ansible\.cfg)$|__pycache__|/pki/' "$out/files.txt" || true)
if [ -n "$bad" ]; then
  echo "collection artifact carries files it must not:"; echo "$bad" | head -20
  exit 1
fi
for must in LICENSE README.md meta/runtime.yml docs/connect.md; do
  grep -qx "$must" "$out/files.txt" || { echo "collection artifact lacks $must"; exit 1; }
done

# Shipped docs link only to what ships: a relative Markdown link to a file the artifact lacks (DEVELOPERS.md, bench
# PNGs, tools/) is broken for every Galaxy user. The repository's files are linked by their address instead.
tar -xzf "$artifact" -C "$out" --one-top-level=unpacked
broken=$(cd "$out/unpacked" && find . -name '*.md' -print0 | xargs -0 grep -oHE '\]\([^)#: ]+(#[^)]*)?\)' \
  | while IFS= read -r hit; do
      file=${hit%%:*}; target=${hit#*](}; target=${target%)}; target=${target%%#*}
      [ -e "$(dirname "$file")/$target" ] || echo "${file#./} links to $target"
    done)
if [ -n "$broken" ]; then
  echo "shipped docs link to files the artifact lacks (link the repository's address, or ship the file):"
  echo "$broken" | head -20; exit 1
fi
if grep -rlE '^\s*(\$ )?make (lab|test|bench)' "$out/unpacked/docs" "$out/unpacked/roles" 2>/dev/null | head -1 | grep -q .; then
  echo "shipped docs tell Galaxy users to run make (only a clone of the repository has the Makefile):"
  grep -rnE '^\s*(\$ )?make (lab|test|bench)' "$out/unpacked/docs" "$out/unpacked/roles" | head; exit 1
fi
version=$(sed -n 's/^version: *//p' galaxy.yml)
grep -q "^v$version\$" CHANGELOG.rst || { echo "CHANGELOG.rst has no release v$version (galaxy.yml's version)"; exit 1; }
grep -q "shardwise.redis:==$version" README.md || { echo "README.md's install line does not pin $version"; exit 1; }

# Install the artifact alone (its dependencies come from the ansible package) and use it from elsewhere.
unset ANSIBLE_CONFIG
export ANSIBLE_COLLECTIONS_PATH="$out/collections" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
# --force: without it, install finds this checkout on the venv's Python path (make venv's .pth) and installs nothing.
ansible-galaxy collection install --force --offline --no-deps -p "$out/collections" "$artifact" >/dev/null
cd "$out"
mapfile -t playbooks < <(sed -n 's#^playbooks/\([a-z_]*\)\.yml$#\1#p' "$out/files.txt")
for playbook in "${playbooks[@]}"; do
  # (the plays' group shardwise_redis_cluster only exists once cluster_hosts.yml ran: warnings here)
  ansible-playbook --syntax-check -i localhost, "shardwise.redis.$playbook" >"$out/syntax.log" 2>&1 \
    || { echo "shardwise.redis.$playbook: syntax-check failed from the installed artifact"; cat "$out/syntax.log"; exit 1; }
done
plugins=0
for type in module filter; do
  mapfile -t names < <(sed -n "s#^plugins/${type}s\{0,1\}/\([a-z_]*\)\.\(py\|yml\)\$#\1#p" "$out/files.txt" | sort -u)
  for name in "${names[@]}"; do
    [ "$type" = filter ] && [ ! -e "$out/collections/ansible_collections/shardwise/redis/plugins/filter/$name.yml" ] && continue
    ansible-doc -t "$type" "shardwise.redis.$name" >/dev/null 2>"$out/doc.err" \
      || { echo "ansible-doc -t $type shardwise.redis.$name failed:"; cat "$out/doc.err"; exit 1; }
    plugins=$((plugins + 1))
  done
done
mapfile -t roles < <(sed -n 's#^roles/\([a-z]*\)/meta/argument_specs.yml$#\1#p' "$out/files.txt")
for role in "${roles[@]}"; do
  ansible-doc -t role "shardwise.redis.$role" >/dev/null || { echo "ansible-doc -t role shardwise.redis.$role failed"; exit 1; }
  plugins=$((plugins + 1))
done
mkdir -p inv
printf 'cache:\n  hosts:\n    node-1: {ansible_host: 192.0.2.1}\n    node-2: {ansible_host: 192.0.2.2}\n' > inv/hosts.yml
set +e
ansible-playbook -i inv shardwise.redis.site > run.log 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ] || ! tr -s ' \n' ' ' < run.log | grep -q "No host of this run is in the inventory group 'redis'" \
   || grep -q "Gathering Facts" run.log; then
  echo "shardwise.redis.site on an inventory without group redis: exit $rc, expected a loud failure before any host:"
  tail -20 run.log; exit 1
fi
installed=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' \
  "$out/collections/ansible_collections/shardwise/redis/MANIFEST.json")
[ "$installed" = "$version" ] || { echo "the installed artifact says version '$installed', galaxy.yml $version"; exit 1; }
echo "build: $(basename "$artifact") $(wc -l < "$out/files.txt") files, clean, docs' links resolve, version $installed" \
     "(CHANGELOG, README pin); installed alone: playbooks pass" \
     "syntax-check, $plugins modules/filters/roles render in ansible-doc, a group not named redis fails loudly (exit $rc)"
