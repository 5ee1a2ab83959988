"""Slot arithmetic: ranges, the even split of a new cluster, the slot of a key."""
import binascii

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.slots import count, even_split, render, slot_of, to_ranges, to_set


def test_ranges_round_trip():
    slots = {0, 1, 2, 5, 7, 8, 16383}
    assert to_ranges(slots) == [(0, 2), (5, 5), (7, 8), (16383, 16383)]
    assert to_set(to_ranges(slots)) == slots
    assert count(to_ranges(slots)) == 7
    assert render([(0, 2), (5, 5)]) == ["0-2", "5-5"]


def test_even_split_matches_redis_cli():
    assert even_split(3) == [(0, 5460), (5461, 10922), (10923, 16383)]
    assert even_split(4) == [(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]
    ranges = even_split(7)
    assert ranges[0][0] == 0 and ranges[-1][1] == 16383
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))
    with pytest.raises(ValueError):
        even_split(0)


def crc16(data):
    """An independent CRC16-XMODEM (binascii's CRC-CCITT with initial value 0), as the spec defines."""
    return binascii.crc_hqx(data.encode("utf-8"), 0) % 16384


def test_slot_of_follows_the_cluster_spec():
    assert slot_of("123456789") == 12739  # the CRC16 check value from the cluster spec
    # Hash tags: only the first {...} with content counts; an empty tag hashes the whole key.
    assert slot_of("bull:{critical}:critical:wait") == slot_of("critical") == crc16("critical") == 8090
    assert slot_of("{user1000}.following") == slot_of("{user1000}.followers")
    assert slot_of("foo{}{bar}") == crc16("foo{}{bar}")
    assert slot_of("foo{{bar}}zap") == crc16("{bar")
    for key in ("a", "queue:42", "bull:jobs:1", "\u00e9t\u00e9"):
        assert slot_of(key) == crc16(key)


def test_parse_reads_numbers_and_ranges_and_names_a_bad_item():
    from ansible_collections.shardwise.redis.plugins.module_utils.slots import parse
    assert parse(["0-3", 7, "2"]) == [0, 1, 2, 3, 7]
    for bad in ("x", "5-2", "16384", "1-"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse([bad])
