"""redis_cluster and redis_cluster_info modules with a mocked redis-cli (no real server)."""
import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.shardwise.redis.plugins.module_utils import cli
from ansible_collections.shardwise.redis.plugins.modules import redis_cluster, redis_cluster_info

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
ADDR = {"redis-a1": "10.89.20.11", "redis-a2": "10.89.20.12", "redis-b1": "10.89.20.21",
        "redis-b2": "10.89.20.22", "redis-c1": "10.89.20.31", "redis-c2": "10.89.20.32"}
NODES = [dict(name=n, host=h, zone="zone-" + n[6]) for n, h in ADDR.items()]
SECRET = "unit-test-Secret-42"
MUTATING = ("MEET", "ADDSLOTSRANGE", "REPLICATE", "ADDSLOTS", "FAILOVER", "FORGET", "RESET", "SETSLOT")


class Exit(Exception):
    pass


@pytest.fixture(autouse=True)
def scripted_redis_cli(monkeypatch):
    """These tests script redis-cli: RedisCli.pipe feeds its stdin instead of opening TLS connections."""
    monkeypatch.setattr(cli, "NATIVE_PIPE", False)


def run_module(module, args, answer, check_mode=False, diff=False, env_log=None):
    calls = []

    def run_command(self, argv, environ_update=None, data=None, **kwargs):
        calls.append((argv, environ_update))
        if env_log is not None:
            env_log.append(environ_update)
        if data is None:
            return answer(argv)
        # RedisCli.pipe: one command per stdin line, one JSON reply per line (redis-cli --json)
        base = [a for a in argv if a != "--json"]
        replies = []
        for line in data.split("\n"):
            rc, out, err = answer(base + json.loads("[" + line.replace('" "', '", "') + "]"))
            if rc:
                return rc, out, err
            out = out.strip()
            if out.startswith("[") or out.startswith("error:"):  # a JSON array (GETKEYSINSLOT and the like), an error
                replies.append(out)
            else:
                replies.append(json.dumps(int(out) if out.lstrip("-").isdigit() else out))
        return 0, "\n".join(replies) + "\n", ""

    def exit_json(self, **kw):
        raise Exit(dict(kw, failed=False))

    def fail_json(self, **kw):
        raise Exit(dict(kw, failed=True))

    params = dict(args, login_password=SECRET, cli_path="/usr/local/bin/redis-cli",
                  _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(params):
        orig = (basic.AnsibleModule.run_command, basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json)
        basic.AnsibleModule.run_command, basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = \
            run_command, exit_json, fail_json
        try:
            with pytest.raises(Exit) as result:
                module.main()
        finally:
            basic.AnsibleModule.run_command, basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = orig
    return result.value.args[0], calls


def command_of(argv):
    return argv[argv.index("--no-auth-warning") + 1:]


def fresh_answer(argv):
    host = argv[argv.index("-h") + 1]
    cmd = command_of(argv)
    if cmd == ["CLUSTER", "NODES"]:
        node_id = "%040x" % (list(ADDR.values()).index(host) + 1)
        return 0, "%s %s:6379@16379 myself,master - 0 0 0 connected\n" % (node_id, host), ""
    if cmd == ["CLUSTER", "INFO"]:
        return 0, "cluster_state:fail\r\ncluster_slots_assigned:0\r\n", ""
    return 0, "OK\n", ""


def healthy_answer(argv):
    host = argv[argv.index("-h") + 1]
    cmd = command_of(argv)
    if cmd == ["CLUSTER", "NODES"]:
        with open(os.path.join(FIX, "nodes-healthy-%s.txt" % host.split(".")[-1])) as fh:
            return 0, fh.read(), ""
    if cmd == ["CLUSTER", "INFO"]:
        with open(os.path.join(FIX, "cluster-info-ok.txt")) as fh:
            return 0, fh.read(), ""
    if cmd[0] in ("LLEN", "ZCARD"):
        return 0, "2\n" if cmd[1].endswith(":wait") else "0\n", ""
    if cmd[:2] == ["CLUSTER", "COUNTKEYSINSLOT"]:
        return 0, "40\n", ""
    if cmd[:2] == ["CLUSTER", "GETKEYSINSLOT"]:
        return 0, '["k1", "k2"]\n', ""
    if cmd[:2] == ["MEMORY", "USAGE"]:
        return 0, "100\n" if cmd[2] == "k1" else "300\n", ""
    if cmd == ["INFO"]:
        return 0, info_of(host), ""
    raise AssertionError("unexpected command %s" % cmd)


# The healthy lab's replication: a1 -> b2, b1 -> c2, c1 -> a2 (what INFO says on each node).
REPLICA_OF = {"10.89.20.11": "10.89.20.22", "10.89.20.21": "10.89.20.32", "10.89.20.31": "10.89.20.12"}


def info_of(host):
    if host in REPLICA_OF:
        return ("role:master\r\nconnected_slaves:1\r\nslave0:ip=%s,port=6379,state=online,offset=140,lag=0\r\n"
                "used_memory:1000000\r\nmaxmemory:1000000000\r\nmaxmemory_policy:noeviction\r\n" % REPLICA_OF[host])
    return "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:140\r\n"


def test_check_mode_returns_the_plan_and_sends_no_mutating_command():
    result, calls = run_module(redis_cluster, dict(nodes=NODES), fresh_answer, check_mode=True, diff=True)
    assert result["changed"] is True and not result["failed"]
    assert len(result["plan"]) == 11 and result["plan"][5] == "CLUSTER ADDSLOTSRANGE 0 5460 on redis-a1"
    assert not [c for c, _unused in calls if any(m in command_of(c) for m in MUTATING)]
    assert result["diff"]["after"]["nodes"]["redis-b2"]["primary"] == "redis-a1"
    assert result["diff"]["before"]["nodes"]["redis-b2"]["role"] == "primary"


def test_healthy_cluster_changes_nothing():
    result, calls = run_module(redis_cluster, dict(nodes=NODES), healthy_answer)
    assert result["changed"] is False and result["plan"] == []
    assert result["topology"]["slots_covered"] == 16384


def test_secret_never_on_argv_nor_in_results():
    result, calls = run_module(redis_cluster, dict(nodes=NODES), fresh_answer, check_mode=True, diff=True)
    assert all(SECRET not in " ".join(argv) for argv, _unused in calls)
    assert all(env == {"REDISCLI_AUTH": SECRET} for _unused, env in calls)
    assert SECRET not in json.dumps(result)


def test_bad_layout_fails_before_any_change():
    nodes = [dict(n, zone="zone-a") for n in NODES]
    result, calls = run_module(redis_cluster, dict(nodes=nodes), fresh_answer)
    assert result["failed"] and "all 6 nodes are in zone zone-a" in result["msg"]
    assert not [c for c, _unused in calls if any(m in command_of(c) for m in MUTATING)]


def test_duplicate_names_are_refused():
    result, _unused = run_module(redis_cluster, dict(nodes=NODES + NODES[:1]), fresh_answer)
    assert result["failed"] and "unique" in result["msg"]


def test_info_reports_health_and_queue_depths():
    result, calls = run_module(redis_cluster_info, dict(nodes=NODES, bullmq_queues=["critical", "low"]),
                               healthy_answer)
    assert result["healthy"] is True and result["problems"] == []
    assert result["queues"]["critical"]["wait"] == 2 and result["queues"]["low"]["failed"] == 0
    where = result["queue_placement"]["critical"]
    assert (where["slot"], where["primary"], where["zone"], where["keys_in_slot"]) == (8090, "redis-b1", "zone-b", 40)
    assert where["memory_bytes"] == 8000 and where["memory_sampled_keys"] == 2  # (100 + 300) / 2 x 40 keys
    assert [r["zone"] for r in where["replicas"]] != ["zone-b"]
    assert len(result["cluster"]["shards"]) == 3


def test_info_flags_an_unreachable_node():
    def answer(argv):
        if argv[argv.index("-h") + 1] == "10.89.20.32":
            return 1, "", "Could not connect to Redis at 10.89.20.32:6379: Connection refused"
        return healthy_answer(argv)
    result, _unused = run_module(redis_cluster_info, dict(nodes=NODES), answer)
    assert result["healthy"] is False
    assert any("redis-c2 unreachable" in p and "Connection refused" in p for p in result["problems"])


A1 = "aab0dd1e148ef9b556cb581b0e42ed4ea6d914cf"


def a1_host_down(rewrite, info):
    """The lab with redis-a1's host not answering: every CLUSTER NODES is rewrite(text), INFO is info(host)."""
    def answer(argv):
        host = argv[argv.index("-h") + 1]
        cmd = command_of(argv)
        if host == "10.89.20.11":
            return 124, "", ""
        if cmd == ["CLUSTER", "NODES"]:
            return 0, rewrite(healthy_answer(argv)[1]), ""
        if cmd == ["INFO"] and info(host) is not None:
            return 0, info(host), ""
        return healthy_answer(argv)
    return answer


def test_recover_check_mode_plans_a_forced_failover_without_mutating():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_recover

    def a1_failed(text):
        return "".join(line.replace(" master ", " master,fail ", 1) if line.startswith(A1) else line
                       for line in text.splitlines(True))
    # the replicas' link to a1 went down 3 s ago, when a1 was last heard of: their copies are complete
    view = healthy_answer(["-h", "10.89.20.12", "--no-auth-warning", "CLUSTER", "NODES"])[1]
    last_pong_ms = max(int(line.split()[5]) for line in view.splitlines() if line.startswith(A1))
    replica_info = "role:slave\r\nslave_repl_offset:42\r\nmaster_link_down_since_seconds:3\r\nserver_time_usec:%d\r\n" % (
        (last_pong_ms + 3000) * 1000)
    answer = a1_host_down(a1_failed, lambda host: replica_info)
    result, calls = run_module(redis_cluster_recover, dict(nodes=NODES), answer, check_mode=True)
    assert result["changed"] is True and not result["failed"], result
    assert result["plan"] == ["CLUSTER FAILOVER FORCE on redis-b2 (replaces failed primary redis-a1)"]
    assert not [c for c, _unused in calls if any(m in command_of(c) for m in MUTATING)]
    assert "redis-a1" in result["before"]["unreachable"]


def test_recover_healthy_cluster_changes_nothing():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_recover

    result, calls = run_module(redis_cluster_recover, dict(nodes=NODES), healthy_answer)
    assert result["changed"] is False and result["plan"] == [] and result["notes"] == []
    assert result["problems"] == []


def test_recover_reports_a_promoted_primary_without_replica_as_a_problem():
    """b2 took over from a1, whose host is down: nothing to do, but the cluster is exposed."""
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_recover

    def b2_promoted(text):
        b2_id = [line.split()[0] for line in text.splitlines() if "10.89.20.22:6379" in line][0]
        lines = []
        for line in text.splitlines():
            parts = line.split()
            if parts[0] == A1:
                parts = parts[:2] + ["master,fail"] + parts[3:8]
            elif parts[0] == b2_id:
                parts = parts[:2] + [parts[2].replace("slave", "master"), "-"] + parts[4:8] + ["0-5460"]
            lines.append(" ".join(parts))
        return "\n".join(lines) + "\n"
    answer = a1_host_down(b2_promoted, lambda host: "role:master\r\nconnected_slaves:0\r\n" if host == "10.89.20.22" else None)
    result, calls = run_module(redis_cluster_recover, dict(nodes=NODES), answer)
    assert result["plan"] == [] and not result["failed"], result
    assert "primary redis-b2 (zone zone-b) has no connected replica: losing its host stops writes to slots 0-5460" \
        in result["problems"]
    assert "zone zone-b holds 2 of 3 primaries: losing it leaves no majority to elect replacements" in result["problems"]


# ---------------------------------------------------------------- resharding and memory modules

NEW_NODES = [dict(name="redis-a3", host="10.89.20.13", zone="zone-a"), dict(name="redis-b3", host="10.89.20.23", zone="zone-b")]


def spare_answer(argv):
    host = argv[argv.index("-h") + 1]
    cmd = command_of(argv)
    if host in ("10.89.20.13", "10.89.20.23"):
        if cmd == ["CLUSTER", "NODES"]:
            return 0, "%s %s:6379@16379 myself,master - 0 0 0 connected\n" % (host[-2:] * 20, host), ""
        if cmd == ["CLUSTER", "INFO"]:
            return 0, "cluster_state:fail\r\n", ""
    if cmd == ["INFO", "memory"]:
        return 0, "used_memory:1000000\r\nused_memory_dataset:500000\r\nmaxmemory:1000000000\r\n", ""
    if cmd[:2] == ["CLUSTER", "COUNTKEYSINSLOT"]:
        return 0, "5\n", ""
    return healthy_answer(argv)


def busy_queue_answer(argv):
    """Slot 4100 (moving from redis-a1) holds 20000 keys of BullMQ queue critical."""
    cmd = command_of(argv)
    if cmd[:2] == ["CLUSTER", "COUNTKEYSINSLOT"]:
        return 0, "20000\n" if cmd[2] == "4100" else "5\n", ""
    if cmd[:2] == ["CLUSTER", "GETKEYSINSLOT"]:
        return 0, json.dumps(["bull:{critical}:critical:%d" % i for i in range(int(cmd[3]))]), ""
    return spare_answer(argv)


def test_reshard_check_mode_plans_the_new_shard_without_mutating():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_reshard
    result, calls = run_module(redis_cluster_reshard, dict(nodes=NODES + NEW_NODES, allow_zone_majority=True), spare_answer,
                               check_mode=True)
    assert result["changed"] and not result["failed"]
    assert "NEW SHARD primary redis-a3@zone-a replicas redis-b3@zone-b" in result["plan"]
    assert result["targets"] == {"redis-a1": 4096, "redis-b1": 4096, "redis-c1": 4096, "redis-a3": 4096}
    assert result["memory"][0]["node"] == "redis-a3"
    assert not [c for c, _unused in calls if any(m in command_of(c) for m in MUTATING + ("MIGRATE",))]
    assert SECRET not in json.dumps(result)


def test_reshard_refuses_to_move_a_big_bullmq_slot_in_pieces():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_reshard
    args = dict(nodes=NODES + NEW_NODES, allow_zone_majority=True)
    result, calls = run_module(redis_cluster_reshard, args, busy_queue_answer, check_mode=True)
    assert result["failed"] and "slot 4100 (20000 keys, queue critical, on redis-a1)" in result["msg"]
    assert "redis_reshard_atomic_slot_keys" in result["msg"]
    result, _unused = run_module(redis_cluster_reshard, dict(args, atomic_slot_keys=20000), busy_queue_answer, check_mode=True)
    assert not result["failed"] and result["changed"]


def test_reshard_refuses_bad_parameters_before_touching_a_node():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_reshard
    result, calls = run_module(redis_cluster_reshard, dict(nodes=NODES, batch_size=0), spare_answer)
    assert result["failed"] and "batch_size must be a whole number in [1, 10000], got 0" in result["msg"] and not calls
    result, calls = run_module(redis_cluster_reshard, dict(nodes=NODES, mode="remove", remove=["redis-a1"]),
                               spare_answer)
    assert result["failed"] and "its replicas redis-b2 are not being removed" in result["msg"]
    assert not [c for c, _unused in calls if any(m in command_of(c) for m in MUTATING)]


def test_reshard_on_a_balanced_cluster_changes_nothing():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_reshard
    result, _unused = run_module(redis_cluster_reshard, dict(nodes=NODES), spare_answer)
    assert result["changed"] is False and result["plan"] == []


def test_cleanup_refuses_bad_parameters_before_touching_a_node():
    from ansible_collections.shardwise.redis.plugins.modules import redis_bullmq_cleanup
    result, calls = run_module(redis_bullmq_cleanup, dict(nodes=NODES, threshold=0, queues={"q": {"maxage": 1}}),
                               spare_answer)
    assert result["failed"] and not calls
    assert "threshold must be a number in (0, 100], got 0" in result["msg"] and "queues.q may only set" in result["msg"]


def test_info_lists_spare_nodes_and_allows_them_when_asked():
    result, _unused = run_module(redis_cluster_info, dict(nodes=NODES + NEW_NODES), spare_answer)
    assert result["spare_nodes"] == ["redis-a3", "redis-b3"] and not result["healthy"]
    result, _unused = run_module(redis_cluster_info, dict(nodes=NODES + NEW_NODES, allow_spare=True), spare_answer)
    assert result["healthy"], result["problems"]


def test_handover_check_mode_plans_the_primarys_handover_without_mutating():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_handover

    result, calls = run_module(redis_cluster_handover, dict(nodes=NODES, node="redis-a1"), healthy_answer, check_mode=True)
    assert result["changed"] is True and not result.get("failed"), result
    assert result["plan"] == ["CLUSTER FAILOVER on redis-b2 (takes over from redis-a1 before it restarts; "
                              "no acknowledged write lost)"]
    assert result["handover_to"] == "redis-b2" and result["problems"] == []
    assert not [c for c, _unused in calls if any(m in command_of(c) for m in MUTATING)]
    replica, _unused = run_module(redis_cluster_handover, dict(nodes=NODES, node="redis-b2"), healthy_answer)
    assert replica["changed"] is False and replica["plan"] == [] and replica["role"] == "replica"


def test_handover_refuses_a_bad_wait_and_an_unknown_node_before_touching_a_node():
    from ansible_collections.shardwise.redis.plugins.modules import redis_cluster_handover

    result, calls = run_module(redis_cluster_handover, dict(nodes=NODES, node="redis-a1", wait_timeout=0), healthy_answer)
    assert result["failed"] and "wait_timeout must be a whole number in [1, 86400], got 0" in result["msg"] and calls == []
    result, calls = run_module(redis_cluster_handover, dict(nodes=NODES, node="redis-x9"), healthy_answer)
    assert result["failed"] and "node redis-x9 is not in nodes (redis-a1, " in result["msg"] and calls == []
