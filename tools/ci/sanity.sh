#!/usr/bin/env bash
# ansible-test sanity on what the collection ships: a copy of the git-tracked (and new, not ignored)
# files under <tmp>/ansible_collections/shardwise/redis, tests from tests/sanity/ignore-<core>.txt.
# ansible-test bootstraps pip in its test venvs with a get-pip script from ci-files.testing.ansible.com,
# which may be out of reach: its cache is seeded with a small script that installs the same pip release
# from the package index pip is configured with.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/.venv/bin"
pyver=$("$bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
at_dir=$("$bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(grep -oP "pip='\K[0-9.]+" "$at_dir/_internal/python_requirements.py")
seed="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
wheels="$top/.cache/wheels"
ls "$wheels"/pip-"$pip_version"-*.whl >/dev/null 2>&1 \
  || "$bin/pip" download -q --disable-pip-version-check --no-deps -d "$wheels" "pip==$pip_version"
wheel=$(ls "$wheels"/pip-"$pip_version"-*.whl)
mkdir -p "$(dirname "$seed")"
cat > "$seed.tmp" <<PY
# Seeded by shardwise.redis tools/ci/sanity.sh in place of get-pip-$pip_version.py: runs pip from its
# wheel to install pip (and what else ansible-test asks for) into the calling Python.
import sys
sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main  # noqa: E402
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--quiet", "--find-links", "$wheels"] + args))
PY
mv "$seed.tmp" "$seed"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/shardwise/redis"
mkdir -p "$dest"
cd "$top"
git ls-files -co --exclude-standard -z | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
  | tar --null -cf - -T - | tar -xf - -C "$dest"
cd "$dest"
git init -q && git add -A >/dev/null  # ansible-test lists a collection's files through git
# ansible-test's own requirement installs are verbose: keep its report, drop pip's chatter.
"$bin/ansible-test" sanity --python "$pyver" --color no "$@" 2>&1 \
  | grep -vE '^(WARNING: Location|Looking in|Collecting|Downloading|Processing|Installing collected|Successfully installed|Requirement already)|━'
exit "${PIPESTATUS[0]}"
