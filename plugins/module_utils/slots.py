# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash slot arithmetic: the 16384 slots, ranges and sets of slots, the even split used when a
cluster is formed, and the slot of a key. Pure functions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CLUSTER_SLOTS = 16384


def to_ranges(slots):
    """Slot numbers (any order) -> compact sorted [(first, last)] ranges."""
    ranges = []
    for slot in sorted(slots):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return ranges


def to_set(ranges):
    """[(first, last)] ranges -> set of slot numbers."""
    covered = set()
    for first, last in ranges:
        covered.update(range(first, last + 1))
    return covered


def count(ranges):
    """Number of slots in [(first, last)] ranges."""
    return sum(last - first + 1 for first, last in ranges)


def render(ranges):
    """[(first, last)] -> ["first-last", ...], the form reports and plans use."""
    return ["%d-%d" % (first, last) for first, last in ranges]


def even_split(primaries, total=CLUSTER_SLOTS):
    """Split the slots evenly over `primaries` primaries, as redis-cli --cluster create does."""
    if primaries < 1:
        raise ValueError("cannot split slots over %d primaries" % primaries)
    per = total / primaries
    ranges, first, cursor = [], 0, 0.0
    for i in range(primaries):
        last = int(round(cursor + per - 1))
        if last > total - 1 or i == primaries - 1:
            last = total - 1
        ranges.append((first, last))
        first = last + 1
        cursor += per
    return ranges


def slot_of(key):
    """Cluster hash slot of a key (CRC16 XMODEM of the hash tag, as Redis computes it)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    crc = 0
    for byte in bytearray(key.encode("utf-8")):
        crc ^= byte << 8
        for _unused in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % CLUSTER_SLOTS


def parse(specs):
    """["0-999", "5", 7] -> sorted slot numbers; ValueError naming the bad item."""
    slots = set()
    for spec in specs:
        text = str(spec).strip()
        first, sep, last = text.partition("-")
        try:
            first, last = int(first), int(last if sep else first)
        except ValueError:
            raise ValueError("%r is not a slot or a range of slots (write 5 or 0-999)" % (spec,))
        if not 0 <= first <= last < CLUSTER_SLOTS:
            raise ValueError("%r is outside 0-%d or its range is reversed" % (spec, CLUSTER_SLOTS - 1))
        slots.update(range(first, last + 1))
    return sorted(slots)
