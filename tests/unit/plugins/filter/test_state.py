"""The host-state filters and module: a task is skipped only when the host already matches what it would
write (content, owner, group, mode, link target, unit state, package), and runs whenever it cannot tell."""
import hashlib
import os

from ansible_collections.shardwise.redis.plugins.filter.state import (
    file_differs, files_differ, packages_missing, unit_differs)
from ansible_collections.shardwise.redis.plugins.modules.redis_host_state import file_state


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


STATE = dict(
    files={"/etc/redis/redis.conf": dict(exists=True, type="file", owner="root", group="redis", mode="0640", sha256=sha("port 6379\n")),
           "/etc/redis/tls": dict(exists=True, type="directory", owner="root", group="redis", mode="0750"),
           "/usr/local/bin/redis-cli": dict(exists=True, type="link", owner="root", group="root", mode="0777",
                                            target="/opt/redis/bin/redis-cli"),
           "/etc/redis-exporter/tls/ca.crt": dict(exists=True, type="file", mode="0640", sha256=sha("CA")),
           "/etc/redis/tls/ca.crt": dict(exists=True, type="file", mode="0644", sha256=sha("CA")),
           "/missing": dict(exists=False)},
    units={"redis.service": dict(enabled="enabled", active="active"),
           "prometheus-redis-exporter.service": dict(enabled="masked", active="inactive")},
    packages={"nftables": "1.0.6", "gone": None})


def test_a_file_matching_content_owner_group_and_mode_needs_no_task():
    assert not file_differs(STATE, "/etc/redis/redis.conf", content="port 6379\n", owner="root", group="redis", mode="0640")
    assert not file_differs(STATE, "/etc/redis/redis.conf", content="port 6379\n", mode=640)  # 640 and "0640" alike


def test_any_difference_or_doubt_runs_the_task():
    conf = "/etc/redis/redis.conf"
    assert file_differs(STATE, conf, content="port 6380\n")
    assert file_differs(STATE, conf, content="port 6379\n", owner="redis")
    assert file_differs(STATE, conf, content="port 6379\n", mode="0600")
    assert file_differs(STATE, conf, content="port 6379\n", kind="directory")
    assert file_differs(STATE, "/missing", content="")
    assert file_differs(STATE, "/not/read", content="")
    assert file_differs({}, conf) and file_differs(None, conf)
    assert file_differs(STATE, conf, src="/no/such/controller/file")


def test_a_declaration_gives_path_kind_owner_group_and_mode():
    conf = dict(path="/etc/redis/redis.conf", owner="root", group="redis", mode="0640")
    assert not file_differs(STATE, conf, content="port 6379\n")
    assert file_differs(STATE, dict(conf, owner="redis"), content="port 6379\n")
    assert file_differs(STATE, dict(conf, mode="0600"), content="port 6379\n")
    assert file_differs(STATE, dict(conf, kind="directory"), content="port 6379\n")
    assert file_differs(STATE, conf, content="port 6379\n", owner="redis")  # an argument passed wins
    assert not file_differs(STATE, dict(conf, owner="redis"), content="port 6379\n", owner="root")
    assert file_differs(STATE, dict(path="/missing"), content="")


def test_controller_files_compare_by_content(tmp_path):
    src = tmp_path / "redis.conf"
    src.write_text("port 6379\n")
    assert not file_differs(STATE, "/etc/redis/redis.conf", src=str(src))
    src.write_text("port 6379")  # a missing newline is a difference
    assert file_differs(STATE, "/etc/redis/redis.conf", src=str(src))


def test_directories_links_and_copies_on_the_host():
    assert not file_differs(STATE, "/etc/redis/tls", kind="directory", owner="root", group="redis", mode="0750")
    assert file_differs(STATE, "/etc/redis/tls", kind="directory", mode="0755")
    assert not file_differs(STATE, "/usr/local/bin/redis-cli", kind="link", target="/opt/redis/bin/redis-cli")
    assert file_differs(STATE, "/usr/local/bin/redis-cli", kind="link", target="/opt/redis-new/bin/redis-cli")
    assert not file_differs(STATE, "/etc/redis-exporter/tls/ca.crt", same_as="/etc/redis/tls/ca.crt", mode="0640")
    assert file_differs(STATE, "/etc/redis-exporter/tls/ca.crt", same_as="/missing")
    assert files_differ(STATE, [dict(path="/etc/redis/tls", kind="directory"), dict(path="/missing")])
    assert not files_differ(STATE, [dict(path="/etc/redis/tls", kind="directory")])


def test_units_and_packages():
    assert not unit_differs(STATE, "redis.service")
    assert unit_differs(STATE, "redis.service", active=False)
    assert not unit_differs(STATE, "prometheus-redis-exporter.service", enabled="masked", active=False)
    assert unit_differs(STATE, "prometheus-redis-exporter.service")
    assert unit_differs(STATE, "unknown.service", enabled=True, active=None)
    assert not unit_differs(STATE, "redis.service", enabled=None, active=None)
    assert packages_missing(STATE, ["nftables", "gone", "unknown"]) == ["gone", "unknown"]
    assert packages_missing({}, ["nftables"]) == ["nftables"]


def test_the_module_reads_what_the_filters_compare(tmp_path):
    path = tmp_path / "f.conf"
    path.write_text("port 6379\n")
    os.chmod(str(path), 0o640)
    link = tmp_path / "l"
    os.symlink(str(path), str(link))
    state = dict(files={str(path): file_state(str(path)), str(link): file_state(str(link)),
                        str(tmp_path): file_state(str(tmp_path)), "/no/such": file_state("/no/such")})
    assert not file_differs(state, str(path), content="port 6379\n", mode="0640")
    assert not file_differs(state, str(link), kind="link", target=str(path))
    assert not file_differs(state, str(tmp_path), kind="directory")
    assert state["files"]["/no/such"] == dict(exists=False)


def test_accounts_groups_and_small_texts():
    from ansible_collections.shardwise.redis.plugins.filter.state import group_missing, user_differs
    from ansible_collections.shardwise.redis.plugins.modules.redis_host_state import group_exists, read_text, user_state
    state = dict(users={"redis": dict(group="redis", home="/var/lib/redis", shell="/usr/sbin/nologin"), "gone": None},
                 groups={"redis": True, "gone": False})
    assert not user_differs(state, "redis", group="redis", home="/var/lib/redis", shell="/usr/sbin/nologin")
    assert user_differs(state, "redis", home="/srv/redis") and user_differs(state, "gone") and user_differs({}, "redis")
    assert not group_missing(state, "redis") and group_missing(state, "gone") and group_missing(None, "redis")
    assert user_state("root")["home"] == "/root" and user_state("no-such-user-here") is None
    assert group_exists("root") and not group_exists("no-such-group-here")
    assert read_text("/no/such/file") is None


def test_process_start_time_comes_from_proc_and_files_carry_their_mtime(tmp_path):
    import os

    from ansible_collections.shardwise.redis.plugins.modules.redis_host_state import process_started

    (tmp_path / "42").mkdir()
    fields = ["S"] + ["0"] * 18 + ["250000"] + ["0"] * 10  # field 22 (starttime) is the 20th after the name
    (tmp_path / "42" / "stat").write_text("42 (redis-server (x)) " + " ".join(fields) + "\n")
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1796600000\nprocesses 9\n")
    ticks = os.sysconf("SC_CLK_TCK")
    assert process_started(42, proc=str(tmp_path)) == 1796600000 + 250000 / float(ticks)
    assert process_started(43, proc=str(tmp_path)) is None
    conf = tmp_path / "redis.conf"
    conf.write_text("port 6379\n")
    os.utime(str(conf), (1796600100, 1796600100))
    assert file_state(str(conf))["mtime"] == 1796600100
