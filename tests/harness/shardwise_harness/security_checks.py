"""Security checks against running nodes: TLS only, mTLS, ACL users allowed/denied commands.

Usage: security_checks.py PKI_DIR HOST [HOST ...]
Passwords come from the environment (REDIS_<USER>_PASSWORD), never from argv. Prints one line per
check and exits 1 when any check fails. Secrets are never printed.
"""
import os
import socket
import ssl
import sys

import redis

PORT = 6379
PREFIX_KEY = "bull:{verify}:probe"
OTHER_KEY = "other:{verify}:probe"
WRITE_SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])"

# (user, command args, expected) — expected: "ok" (no permission error) or "noperm".
MATRIX = [
    ("admin", ["ACL", "WHOAMI"], "ok"),
    ("admin", ["CONFIG", "GET", "maxmemory"], "ok"),
    ("worker", ["EVAL", WRITE_SCRIPT, "1", PREFIX_KEY, "1"], "ok"),
    ("worker", ["SCRIPT", "LOAD", WRITE_SCRIPT], "ok"),
    ("worker", ["EVALSHA", "SHA_OF_WRITE_SCRIPT", "1", PREFIX_KEY, "1"], "ok"),
    ("worker", ["EVALSHA", "SHA_OF_WRITE_SCRIPT", "1", OTHER_KEY, "1"], "noperm"),
    ("worker", ["EVAL", WRITE_SCRIPT, "1", OTHER_KEY, "1"], "noperm"),
    ("worker", ["SET", OTHER_KEY, "1"], "noperm"),
    ("worker", ["BZPOPMIN", PREFIX_KEY + "z", "0.01"], "ok"),
    ("worker", ["CLIENT", "SETNAME", "verify-worker"], "ok"),
    ("worker", ["INFO", "server"], "ok"),
    ("worker", ["FLUSHALL"], "noperm"),
    ("worker", ["FLUSHDB"], "noperm"),
    ("worker", ["CONFIG", "SET", "maxmemory", "1"], "noperm"),
    ("worker", ["KEYS", "*"], "noperm"),
    ("worker", ["SCAN", "0"], "noperm"),
    ("worker", ["DEBUG", "SLEEP", "0"], "noperm"),
    ("worker", ["SHUTDOWN", "NOSAVE"], "noperm"),
    ("worker", ["ACL", "LIST"], "noperm"),
    ("worker", ["FUNCTION", "FLUSH"], "noperm"),
    ("worker", ["SCRIPT", "FLUSH"], "noperm"),
    ("worker", ["SCRIPT", "DEBUG", "NO"], "noperm"),
    ("api", ["SCRIPT", "DEBUG", "NO"], "noperm"),
    ("worker", ["CLIENT", "KILL", "ID", "1"], "noperm"),
    ("api", ["EVAL", WRITE_SCRIPT, "1", PREFIX_KEY, "1"], "ok"),
    ("api", ["XADD", "bull:{verify}:events", "MAXLEN", "~", "10", "*", "event", "probe"], "ok"),
    ("api", ["SET", OTHER_KEY, "1"], "noperm"),
    ("api", ["FLUSHALL"], "noperm"),
    ("api", ["CONFIG", "SET", "maxmemory", "1"], "noperm"),
    ("metrics", ["INFO", "all"], "ok"),
    ("metrics", ["CLUSTER", "INFO"], "ok"),
    ("metrics", ["CONFIG", "GET", "maxmemory"], "noperm"),  # CONFIG GET would show masterauth
    ("metrics", ["CONFIG", "GET", "masterauth"], "noperm"),
    ("metrics", ["SLOWLOG", "GET", "10"], "ok"),
    ("metrics", ["CLIENT", "LIST"], "ok"),
    ("metrics", ["LLEN", "bull:{verify}:wait"], "ok"),
    ("metrics", ["XREVRANGE", "bull:{verify}:events", "+", "-", "COUNT", "1"], "ok"),
    ("metrics", ["SET", PREFIX_KEY, "1"], "noperm"),
    ("metrics", ["XADD", "bull:{verify}:events", "*", "event", "x"], "noperm"),
    ("metrics", ["HSET", "bull:{verify}:1", "data", "x"], "noperm"),
    ("metrics", ["DEL", PREFIX_KEY], "noperm"),
    ("metrics", ["CONFIG", "SET", "maxmemory", "1"], "noperm"),
    ("metrics", ["FLUSHALL"], "noperm"),
    ("replication", ["GET", PREFIX_KEY], "noperm"),
    ("replication", ["PING"], "ok"),
]


class Checks:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok, what):
        print(("PASS " if ok else "FAIL ") + what)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def client(host, pki, user=None, password=None, cert=True):
    kwargs = dict(host=host, port=PORT, ssl=True, ssl_ca_certs=f"{pki}/ca.crt",
                  ssl_cert_reqs="required", socket_timeout=5, socket_connect_timeout=5,
                  protocol=2, retry=None)
    if cert:
        kwargs.update(ssl_certfile=f"{pki}/clients/{cert if isinstance(cert, str) else 'admin'}.crt",
                      ssl_keyfile=f"{pki}/clients/{cert if isinstance(cert, str) else 'admin'}.key")
    if user:
        kwargs.update(username=user, password=password)
    return redis.Redis(**kwargs)


def outcome(conn, args):
    try:
        conn.execute_command(*args)
        return "ok", ""
    except redis.exceptions.NoPermissionError as exc:
        return "noperm", str(exc)
    except redis.exceptions.ResponseError as exc:
        text = str(exc)
        if text.startswith("NOPERM") or "no permissions" in text or "command not allowed" in text:
            return "noperm", text
        return "ok", text  # MOVED, CLUSTERDOWN, NOSCRIPT...: past the ACL check


def main():
    pki, hosts = sys.argv[1], sys.argv[2:]
    passwords = {u: os.environ[f"REDIS_{u.upper()}_PASSWORD"]
                 for u in ("admin", "worker", "api", "metrics", "replication")}
    checks = Checks()
    for host in hosts:
        # Plaintext on the TLS port: no PONG, ever.
        try:
            with socket.create_connection((host, PORT), timeout=3) as sock:
                sock.sendall(b"PING\r\n")
                sock.settimeout(3)
                try:
                    data = sock.recv(64)
                except (socket.timeout, ConnectionResetError):
                    data = b""
            checks.check(b"PONG" not in data, f"{host}: plaintext PING gets no answer")
        except OSError:
            checks.check(True, f"{host}: plaintext connection refused")
        # A client certificate cannot talk to the cluster bus: this client is not a node, and only the
        # nodes' addresses reach the bus port (redis_firewall). That the bus speaks TLS is checked from a
        # node (molecule/default/verify.yml).
        ctx = ssl.create_default_context(cafile=f"{pki}/ca.crt")
        ctx.check_hostname = False
        ctx.load_cert_chain(f"{pki}/clients/admin.crt", f"{pki}/clients/admin.key")
        try:
            with socket.create_connection((host, PORT + 10000), timeout=3) as raw:
                with ctx.wrap_socket(raw) as tls:
                    checks.check(False, f"{host}: cluster bus unreachable for a client ({tls.version()} handshake done)")
        except (OSError, ssl.SSLError) as exc:
            checks.check(isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc),
                         f"{host}: cluster bus unreachable for a client ({exc})")
        # TLS without a client certificate: handshake refused.
        try:
            client(host, pki, "admin", passwords["admin"], cert=False).ping()
            checks.check(False, f"{host}: TLS without client certificate is refused")
        except (redis.exceptions.ConnectionError, ssl.SSLError, OSError):
            checks.check(True, f"{host}: TLS without client certificate is refused")
        # The default user is off.
        try:
            client(host, pki).ping()
            checks.check(False, f"{host}: default user cannot run commands")
        except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError):
            checks.check(True, f"{host}: default user cannot run commands")
        # A wrong password is refused.
        try:
            client(host, pki, "worker", "not-the-password").ping()
            checks.check(False, f"{host}: wrong password refused")
        except redis.exceptions.AuthenticationError:
            checks.check(True, f"{host}: wrong password refused")
        # Per-user matrix.
        conns = {u: client(host, pki, u, p, cert=u if u != "replication" else "admin")
                 for u, p in passwords.items()}
        sha = conns["admin"].script_load(WRITE_SCRIPT)
        for user, args, expected in MATRIX:
            args = [sha if a == "SHA_OF_WRITE_SCRIPT" else a for a in args]
            got, detail = outcome(conns[user], args)
            shown = " ".join(a if len(a) < 40 else a[:37] + "..." for a in args)
            checks.check(got == expected, f"{host}: {user} {shown} -> {got} (want {expected}) {detail[:60]}")
        for conn in conns.values():
            conn.close()
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
