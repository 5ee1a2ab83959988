# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the ACL users' passwords before any host changes. The results name the variable and the
fix, never the password."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MIN_LENGTH = 16
# Passwords end up unquoted in redis.conf (masterauth) and in a systemd EnvironmentFile (the exporter):
# whitespace, quotes, backslashes and control or non-ASCII characters would be cut or rewritten there.
SAFE = re.compile(r"^[!#-&(-\[\]-~]+$")
PLACEHOLDER = re.compile(r"change.?me|changeit|placeholder|^(password|secret|redis)\d*$", re.IGNORECASE)


def acl_password_problems(users):
    """users: [{name, password, var}] (var: the variable that sets it). One line per problem."""
    problems, seen = [], {}
    for user in users:
        name, password, var = user.get("name"), user.get("password"), user.get("var") or "the password"
        if not name or name == "default":
            problems.append("%s: an ACL user needs a name other than 'default' (the default user stays off)" % var)
        if not isinstance(password, str) or len(password) < MIN_LENGTH:
            problems.append("%s (user %s) is empty or shorter than %d characters: set it from ansible-vault"
                            % (var, name, MIN_LENGTH))
            continue
        if not SAFE.match(password):
            problems.append("%s (user %s) contains a space, a quote, a backslash or a non-printable or non-ASCII "
                            "character, which redis.conf and systemd would alter: use letters, digits and "
                            "punctuation such as - _ . : ! (openssl rand -hex 24)" % (var, name))
        if PLACEHOLDER.search(password):
            problems.append("%s (user %s) is still the example placeholder: generate a real one "
                            "(openssl rand -hex 24)" % (var, name))
        if password in seen and seen[password] != name:
            problems.append("%s (user %s) is the same as the password of user %s: every ACL user needs its own"
                            % (var, name, seen[password]))
        seen.setdefault(password, name)
    names = [u.get("name") for u in users]
    for dup in sorted(set(n for n in names if n and names.count(n) > 1)):
        problems.append("ACL user %s is defined twice: rename the extra user in redis_acl_extra_users" % dup)
    return problems


class FilterModule(object):
    def filters(self):
        return {"acl_password_problems": acl_password_problems}
