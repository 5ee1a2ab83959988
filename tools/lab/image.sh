#!/usr/bin/env bash
# Build a lab/test host image (Debian minbase + systemd + sshd) once per Debian release:
#   image.sh [bookworm|trixie]   (default bookworm)
# bookworm (Debian 12) is tagged :latest, trixie (Debian 13) :trixie; the lab and the molecule hosts mix both.
# Each image is also tagged with a hash of this recipe, so it is rebuilt only when the recipe changes.
set -euo pipefail
suite=${1:-bookworm}
case "$suite" in
  bookworm) alias=latest ;;
  trixie) alias=trixie ;;
  *) echo "image.sh: unknown Debian release '$suite' (bookworm or trixie)" >&2; exit 2 ;;
esac
name=${LAB_IMAGE_NAME:-localhost/shardwise-redis-host}
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd,systemd-sysv,dbus,python3,openssh-server,iproute2,procps,ca-certificates,iputils-ping
recipe_hash=$(sha256sum < "$0" | cut -c1-12)
tag="$name:$suite-$recipe_hash"
[ "$suite" = bookworm ] && tag="$name:$recipe_hash"   # the tag earlier recipes gave the bookworm image

if podman image exists "$tag"; then
  echo "$tag"
  exit 0
fi

work=$(mktemp -d /var/tmp/shardwise-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
echo "image: debootstrap $suite into $root (about a minute)" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Host settings every lab node needs.
echo "deb $mirror $suite main" > "$root/etc/apt/sources.list"
chroot "$root" apt-get update -qq >&2   # keep the apt lists in the image
rm -f "$root"/etc/ssh/ssh_host_*         # regenerated per container at first boot
cat > "$root/etc/systemd/system/ssh-keygen-host.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable ssh-keygen-host.service ssh.service >&2
mkdir -p "$root/root/.ssh" && chmod 0700 "$root/root/.ssh"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
  > "$root/etc/ssh/sshd_config.d/lab.conf"
# Units that make no sense in a container.
for unit in systemd-networkd-wait-online.service getty@tty1.service console-getty.service \
            systemd-remount-fs.service sys-kernel-config.mount; do
  chroot "$root" systemctl mask "$unit" >&2 || true
done
echo 'lab' > "$root/etc/hostname"

tar -C "$root" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change 'ENV container=podman' \
  - "$tag" >&2
podman tag "$tag" "$name:$alias"
echo "$tag"
