"""Fresh connections, to see which passwords and which certificates a node accepts right now.

  auth_probe.py PKI_DIR HOST USER:ENV_VAR [USER:ENV_VAR ...]
  auth_probe.py --tls HOST[,HOST ...] LABEL=DIR [LABEL=DIR ...]

Each USER:ENV_VAR opens a new mutual-TLS connection to HOST:6379 as USER (client certificate <pki>/clients/<user>)
with the password in ENV_VAR and sends PING. With --tls, each LABEL=DIR connects as the api user (password in
REDIS_API_PASSWORD) trusting <DIR>/ca.crt and presenting <DIR>/clients/api.crt: the material an application holds.
Prints one JSON object (with --tls: one line per host) {"USER:ENV_VAR" or LABEL: "ok" | "refused" (password) |
"untrusted" (this side does not trust the node's certificate) | "rejected" (the node did not accept the client
certificate) | "error: ..."}.
Passwords are never printed. The caller judges the answers.
"""
import json
import os
import sys

import redis


def attempt(pki, host, user, password):
    client = redis.Redis(host=host, port=6379, username=user, password=password, ssl=True, socket_timeout=5,
                         socket_connect_timeout=5, ssl_ca_certs=os.path.join(pki, "ca.crt"),
                         ssl_certfile=os.path.join(pki, "clients", user + ".crt"),
                         ssl_keyfile=os.path.join(pki, "clients", user + ".key"))
    try:
        return "ok" if client.ping() else "no PONG"
    except redis.exceptions.AuthenticationError:
        return "refused"
    except redis.exceptions.RedisError as exc:
        text = str(exc).lower()
        if "certificate verify failed" in text:
            return "untrusted"
        # TLS 1.3: the node judges the client certificate after the client's handshake, and answers with an
        # alert (unknown ca, bad certificate) or closes the connection at the first read
        if any(word in text for word in ("unknown ca", "bad certificate", "certificate unknown", "eof occurred", "closed", "reset")):
            return "rejected"
        return "error: %s" % type(exc).__name__
    finally:
        client.close()


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    if argv[0] == "--tls":
        for host in argv[1].split(","):
            answers = {}
            for pair in argv[2:]:
                label, _sep, folder = pair.partition("=")
                answers[label] = attempt(folder, host, "api", os.environ["REDIS_API_PASSWORD"])
            print(json.dumps(answers, sort_keys=True))
        return 0
    answers = {}
    pki, host = argv[0], argv[1]
    for pair in argv[2:]:
        user, _sep, var = pair.partition(":")
        answers[pair] = attempt(pki, host, user, os.environ[var])
    print(json.dumps(answers, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
