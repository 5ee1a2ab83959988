# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare what M(shardwise.redis.redis_host_state) read on a host with what a task would write, so the
roles run a task only where something differs (a converged host is re-checked in one module run per role,
and drift is still corrected). Every filter answers True ("run the task") whenever it cannot tell."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib


def _sha256(data):
    if not isinstance(data, bytes):
        data = str(data).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _mode(mode):
    if mode is None:
        return None
    return "%04o" % int(str(mode), 8)


DECLARED = ("kind", "owner", "group", "mode", "target")


def file_differs(state, path, src=None, content=None, owner=None, group=None, mode=None, kind=None, target=None,
                 same_as=None, src_remote=False):
    """True unless `path` on the host is a `kind` (file, directory, link; default file) with this owner, group
    and mode (each only when given), the content of controller file `src`, of the string `content` or of the host
    file `same_as` (read in the same state), or the link `target`. With `src_remote`, `src` is a host file (as
    `same_as`), as for a copy task with remote_src. `path` may be a role's declaration of a managed file (a dict
    with path and any of kind, owner, group, mode, target: the roles' `_redis*_managed` entries), which gives
    those arguments unless they are passed."""
    if isinstance(path, dict):
        given = dict(kind=kind, owner=owner, group=group, mode=mode, target=target)
        for key in DECLARED:
            if given[key] is None:
                given[key] = path.get(key)
        kind, owner, group, mode, target = (given[k] for k in DECLARED)
        path = path.get("path")
    kind = kind or "file"
    if src_remote and src is not None:
        src, same_as = None, src
    try:
        now = (state or {}).get("files", {}).get(path)
    except AttributeError:
        return True
    if not now or not now.get("exists") or now.get("type") != kind:
        return True
    for key, want in (("owner", owner), ("group", group), ("mode", _mode(mode))):
        if want is not None and str(now.get(key)) != str(want):
            return True
    if kind == "link" and target is not None and now.get("target") != target:
        return True
    if kind == "file":
        if src is not None:
            try:
                with open(src, "rb") as fh:
                    want = _sha256(fh.read())
            except (IOError, OSError):
                return True
            return now.get("sha256") != want
        if content is not None:
            return now.get("sha256") != _sha256(content)
        if same_as is not None:
            other = state.get("files", {}).get(same_as) or {}
            return not other.get("sha256") or now.get("sha256") != other.get("sha256")
    return False


def files_differ(state, items, **common):
    """True when any of `items` (dicts of file_differs' keyword arguments plus path) differs."""
    return any(file_differs(state, **dict(common, **item)) for item in items)


def unit_differs(state, unit, enabled=True, active=True):
    """True unless systemd `unit` is as wanted: enabled True means "enabled", a string names the state
    (for example "masked"), None does not care; active True means running, False stopped, None either."""
    now = (state or {}).get("units", {}).get(unit) or {}
    want = "enabled" if enabled is True else enabled
    if want and now.get("enabled") != want:
        return True
    if active is None:
        return False
    return (now.get("active") == "active") != bool(active)


def user_differs(state, name, group=None, home=None, shell=None):
    """True unless account `name` exists with this primary group, home and shell (each only when given)."""
    now = (state or {}).get("users", {}).get(name)
    if not now:
        return True
    return any(want is not None and now.get(key) != want for key, want in (("group", group), ("home", home), ("shell", shell)))


def group_missing(state, name):
    """True unless group `name` exists."""
    return not (state or {}).get("groups", {}).get(name)


def packages_missing(state, packages):
    """The packages of `packages` that are not installed (all of them when the state cannot tell)."""
    versions = (state or {}).get("packages", {})
    return [p for p in packages if not versions.get(p)]


class FilterModule(object):
    def filters(self):
        return {"file_differs": file_differs, "files_differ": files_differ, "unit_differs": unit_differs,
                "packages_missing": packages_missing, "user_differs": user_differs, "group_missing": group_missing}
