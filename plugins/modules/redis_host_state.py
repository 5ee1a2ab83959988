#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_host_state
short_description: Read the state of many files, units and packages of a host in one step
version_added: 0.3.0
description:
  - Reads, in one module run, what the roles manage on a host - each path's type, owner, group, mode,
    SHA-256 (files) or target (links), the text of a few small files, each system account and group,
    each systemd unit's enabled and active state, and each Debian package's installed version.
  - The roles compare it with what they would write (filters P(shardwise.redis.file_differs#filter) and friends)
    and run a task only where something differs. A re-run of C(site.yml) on converged hosts then costs one
    module run per role instead of one per file, unit and package, and a host that drifted is still
    corrected, since the comparison is made on every run.
  - Only reads; safe in check mode.
extends_documentation_fragment:
  - shardwise.redis.attributes
options:
  paths:
    description: Paths to read (missing ones are reported as such).
    type: list
    elements: path
    default: []
  read:
    description: Small files whose text is returned (at most 64 KiB each; never name a file holding a secret).
    type: list
    elements: path
    default: []
  users:
    description: Accounts to read (primary group, home, shell).
    type: list
    elements: str
    default: []
  groups:
    description: Groups to read.
    type: list
    elements: str
    default: []
  binaries:
    description: Programs whose C(--version) line and linked libraries (ldd) are read.
    type: list
    elements: path
    default: []
  units:
    description: systemd units to read.
    type: list
    elements: str
    default: []
  packages:
    description: Debian packages to read (dpkg-query); other systems report them as unknown.
    type: list
    elements: str
    default: []
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Read the managed files and units
  shardwise.redis.redis_host_state:
    paths: [/etc/redis/redis.conf, /etc/redis/tls]
    units: [redis.service]
    packages: [nftables]
  register: __redis_state
"""

RETURN = r"""
files:
  description: Per path - exists, type (file, directory, link, other), owner, group, mode (4 octal digits), sha256 and mtime
    (files; mtime is the modification time in epoch seconds), target (links).
  returned: always
  type: dict
  sample: {/etc/redis/redis.conf: {exists: true, type: file, owner: redis, group: redis, mode: "0640", sha256: "9f86d0..."}}
texts:
  description: Per path of O(read) - its text, or null when it cannot be read.
  returned: always
  type: dict
  sample: {/sys/kernel/mm/transparent_hugepage/enabled: "always madvise [never]\n"}
users:
  description: Per account - null when missing, else its primary group, home and shell.
  returned: always
  type: dict
  sample: {redis: {group: redis, home: /var/lib/redis, shell: /usr/sbin/nologin}}
groups:
  description: Per group - whether it exists.
  returned: always
  type: dict
  sample: {redis: true}
binaries:
  description: Per program of O(binaries) - null when missing, else its version line, the libraries it links and the
    file it resolves to (symbolic links followed).
  returned: always
  type: dict
  sample: {/usr/local/bin/redis-server: {version: "Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0", linked: [libssl.so.1.1],
           realpath: /opt/redis/redis-7.2.4-linux-x86_64/bin/redis-server}}
units:
  description: Per unit - enabled (output of systemctl is-enabled), active (systemctl is-active), exe, the program
    its main process runs (null when not running; ending in C( (deleted)) when the file was replaced since it started),
    and started, when that process started (epoch seconds; null when not running).
  returned: always
  type: dict
  sample: {redis.service: {enabled: enabled, active: active, exe: /opt/redis/redis-7.2.4-linux-x86_64/bin/redis-server,
                           started: 1796632800.52}}
packages:
  description: Per package - the installed version, or null when not installed (or not a Debian system).
  returned: always
  type: dict
  sample: {nftables: "1.0.6-2+deb12u2"}
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def file_state(path):
    try:
        st = os.lstat(path)
    except OSError:
        return dict(exists=False)
    out = dict(exists=True, owner=_name(pwd.getpwuid, st.st_uid), group=_name(grp.getgrgid, st.st_gid),
               mode="%04o" % stat.S_IMODE(st.st_mode))
    if stat.S_ISLNK(st.st_mode):
        out.update(type="link", target=os.readlink(path))
    elif stat.S_ISDIR(st.st_mode):
        out["type"] = "directory"
    elif stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(65536), b""):
                digest.update(block)
        out.update(type="file", sha256=digest.hexdigest(), mtime=st.st_mtime)
    else:
        out["type"] = "other"
    return out


def read_text(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(65536).decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def user_state(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return dict(group=_name(grp.getgrgid, entry.pw_gid), home=entry.pw_dir, shell=entry.pw_shell)


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def binary_state(module, path):
    if not os.access(path, os.X_OK):
        return None
    rc, out, err = module.run_command([path, "--version"])
    linked = []
    ldd = module.get_bin_path("ldd")
    if ldd:
        rc_ldd, libs, err_ldd = module.run_command([ldd, path])
        linked = [line.split()[0] for line in libs.splitlines() if line.strip() and "=>" in line]
    return dict(version=(out.strip().splitlines() or [""])[0] if rc == 0 else None, linked=linked,
                realpath=os.path.realpath(path))


def process_started(pid, proc="/proc"):
    """When process `pid` started (epoch seconds), from its /proc stat (clock ticks after boot) and the boot time;
    None when unreadable."""
    try:
        with open(os.path.join(proc, str(pid), "stat")) as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime; fields after ")" start at 3
        with open(os.path.join(proc, "stat")) as fh:
            boot = int(next(line.split()[1] for line in fh if line.startswith("btime ")))
    except (IOError, OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / float(os.sysconf("SC_CLK_TCK"))


def unit_states(module, units):
    if not units:
        return {}
    systemctl = module.get_bin_path("systemctl")
    states = dict((u, dict(enabled="unknown", active="unknown")) for u in units)
    if not systemctl:
        return states
    for key, verb in (("enabled", "is-enabled"), ("active", "is-active")):
        for unit in units:  # one call per unit: is-enabled stops printing at the first unknown unit
            rc, out, err = module.run_command([systemctl, verb, unit])
            states[unit][key] = (out.strip().splitlines() or ["unknown"])[0]
    for unit in units:
        rc, out, err = module.run_command([systemctl, "show", "-p", "MainPID", "--value", unit])
        pid = out.strip()
        states[unit]["exe"] = states[unit]["started"] = None
        if rc == 0 and pid.isdigit() and int(pid) > 0:
            try:  # " (deleted)" ends the path when the file was replaced under the running process
                states[unit]["exe"] = os.readlink("/proc/%s/exe" % pid)
            except OSError:
                pass
            states[unit]["started"] = process_started(pid)
    return states


def package_versions(module, packages):
    versions = dict((p, None) for p in packages)
    dpkg = module.get_bin_path("dpkg-query") if packages else None
    if not dpkg:
        return versions
    rc, out, err = module.run_command([dpkg, "-W", "-f", "${Package}\t${db:Status-Status}\t${Version}\n"] + list(packages))
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == "installed" and parts[0] in versions:
            versions[parts[0]] = parts[2]
    return versions


def main():
    module = AnsibleModule(argument_spec=dict(paths=dict(type="list", elements="path", default=[]),
                                              read=dict(type="list", elements="path", default=[]),
                                              users=dict(type="list", elements="str", default=[]),
                                              groups=dict(type="list", elements="str", default=[]),
                                              binaries=dict(type="list", elements="path", default=[]),
                                              units=dict(type="list", elements="str", default=[]),
                                              packages=dict(type="list", elements="str", default=[])),
                           supports_check_mode=True)
    p = module.params
    module.exit_json(changed=False, files=dict((path, file_state(path)) for path in p["paths"]),
                     texts=dict((path, read_text(path)) for path in p["read"]),
                     users=dict((u, user_state(u)) for u in p["users"]), groups=dict((g, group_exists(g)) for g in p["groups"]),
                     binaries=dict((b, binary_state(module, b)) for b in p["binaries"]),
                     units=unit_states(module, p["units"]), packages=package_versions(module, p["packages"]))


if __name__ == "__main__":
    main()
