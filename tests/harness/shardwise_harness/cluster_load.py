"""Client load for the resharding scenario, with redis-py's RedisCluster over mutual TLS as the api user.

  cluster_load.py fill PKI_DIR COUNT HOST [HOST ...]
      write COUNT keys bull:load:<n> (spread over all slots) with values derived from n
  cluster_load.py run PKI_DIR STOP_FILE HOST [HOST ...]
      until STOP_FILE exists: read a fill key and check its value, write bull:live:<n>; then check
      every fill key and every live key. Prints one JSON line; exits 1 on any client error or lost key.

Redirects (MOVED/ASK) are followed by the client and are not errors; every exception that reaches
this program is one. The password comes from REDIS_API_PASSWORD and is never printed.
"""
import json
import os
import random
import sys
import time

from shardwise_harness.tls_client import sync_cluster

FILL_PREFIX = "bull:load:"
LIVE_PREFIX = "bull:live:"


def connect(pki, hosts):
    return sync_cluster(pki, hosts, "api", cluster_error_retry_attempts=3)


def value(n):
    return "value-%d-%s" % (n, "x" * (n % 64))


def count_file(pki):
    return os.path.join(pki, "load-count")


def fill(client, pki, count):
    for start in range(0, count, 1000):
        pipe = client.pipeline()
        for n in range(start, min(count, start + 1000)):
            pipe.set(FILL_PREFIX + str(n), value(n))
        pipe.execute()
    with open(count_file(pki), "w") as fh:
        fh.write(str(count))
    print(json.dumps(dict(filled=count)))
    return 0


def lost_keys(client, prefix, count, expected):
    lost = []
    for start in range(0, count, 1000):
        keys = [prefix + str(n) for n in range(start, min(count, start + 1000))]
        for n, got in zip(range(start, start + len(keys)), client.mget_nonatomic(keys)):
            if got != expected(n):
                lost.append(prefix + str(n))
    return lost


def run(client, pki, stop_file):
    count = int(open(count_file(pki)).read())
    ops, errors, samples, written, wrong = 0, 0, [], 0, 0
    started = time.time()
    while not os.path.exists(stop_file) and time.time() - started < 1800:
        n = random.randrange(count)
        try:
            if client.get(FILL_PREFIX + str(n)) != value(n):
                wrong += 1
            client.set(LIVE_PREFIX + str(written), value(written))
            written += 1
        except Exception as exc:  # every error that reaches the client counts; redirects never do
            errors += 1
            if len(samples) < 10:
                samples.append("%s: %s" % (type(exc).__name__, str(exc)[:200]))
            time.sleep(0.05)
        ops += 1
    lost = lost_keys(client, FILL_PREFIX, count, value) + lost_keys(client, LIVE_PREFIX, written, value)
    result = dict(seconds=round(time.time() - started, 1), ops=ops, errors=errors, wrong_values=wrong,
                  live_written=written, fill_keys=count, lost=len(lost), lost_sample=lost[:10],
                  error_samples=samples)
    print(json.dumps(result))
    return 1 if errors or wrong or lost else 0


def main(argv):
    if len(argv) < 4 or argv[0] not in ("fill", "run"):
        sys.exit(__doc__)
    client = connect(argv[1], argv[3:])
    try:
        if argv[0] == "fill":
            return fill(client, argv[1], int(argv[2]))
        return run(client, argv[1], argv[2])
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
