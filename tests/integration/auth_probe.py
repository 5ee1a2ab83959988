"""Fresh connections as ACL users, one per password, to see which passwords a node accepts right now.

  auth_probe.py PKI_DIR HOST USER:ENV_VAR [USER:ENV_VAR ...]

Each USER:ENV_VAR opens a new mutual-TLS connection to HOST:6379 as USER (client certificate <pki>/clients/<user>)
with the password in ENV_VAR and sends PING. Prints one JSON object {"USER:ENV_VAR": "ok" | "refused" | "error: ..."}.
Passwords are never printed. The caller judges the answers.
"""
import json
import os
import sys

import redis


def attempt(pki, host, user, password):
    client = redis.Redis(host=host, port=6379, username=user, password=password, ssl=True, socket_timeout=5,
                         ssl_ca_certs=os.path.join(pki, "ca.crt"), ssl_certfile=os.path.join(pki, "clients", user + ".crt"),
                         ssl_keyfile=os.path.join(pki, "clients", user + ".key"))
    try:
        return "ok" if client.ping() else "no PONG"
    except redis.exceptions.AuthenticationError:
        return "refused"
    except redis.exceptions.RedisError as exc:
        return "error: %s" % type(exc).__name__
    finally:
        client.close()


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    pki, host = argv[0], argv[1]
    answers = {}
    for pair in argv[2:]:
        user, _sep, var = pair.partition(":")
        answers[pair] = attempt(pki, host, user, os.environ[var])
    print(json.dumps(answers, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
