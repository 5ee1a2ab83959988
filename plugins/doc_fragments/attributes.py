# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Every module of the collection plans before it acts: check mode is always full.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Check mode returns the plan (or the reading) without changing any node.
    support: full
"""

    # Modules that show the topology before and after.
    DIFF = r"""
attributes:
  diff_mode:
    description: Diff mode shows the cluster before and after.
    support: full
"""

    # Modules without a diff (read-only or reporting per node).
    NO_DIFF = r"""
attributes:
  diff_mode:
    description: No diff is returned.
    support: none
"""
