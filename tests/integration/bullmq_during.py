"""A real BullMQ producer and worker (PyPI bullmq over RedisCluster, api and worker users) on queues whose
slots a resharding runbook is about to move, running until a stop file appears.

  bullmq_during.py CONFIG_JSON STOP_FILE RESULT_JSON

CONFIG_JSON: {"pki": dir, "hosts": {name: ip}, "ranges": [[first, last], ...]}: one queue per slot range
(its name is a hash tag in that range). Every job gets a unique id and is added until Redis acknowledges
it; the worker counts what it processes. After the stop file: the producer stops, the worker drains (up
to 3 minutes), and RESULT_JSON gets {queues, acknowledged, processed, lost, duplicated, add_errors,
failure}. Exits 1 when an acknowledged job was never processed or the clients failed. Passwords come
from REDIS_API_PASSWORD and REDIS_WORKER_PASSWORD and are never printed.
"""
import json
import os
import sys
import threading
import time

from drill_clients import Jobs, tag_in


def main(argv):
    with open(argv[1]) as fh:
        config = json.load(fh)
    stop_file, result_file = argv[2], argv[3]
    queues = [tag_in(first, last, "reshard") for first, last in config["ranges"]]
    stop = threading.Event()
    jobs = Jobs(config, queues, stop, "r%d" % int(time.time()))
    jobs.start()
    while not os.path.exists(stop_file) and jobs.failure is None:
        time.sleep(0.5)
    stop.set()
    jobs.drained.wait(240)
    lost = sorted(j for j in list(jobs.acked) if j not in jobs.processed)
    duplicated = sorted(j for j, n in list(jobs.processed.items()) if n > 1)
    result = dict(queues=queues, acknowledged=len(jobs.acked), processed=len(jobs.processed), lost=len(lost),
                  lost_ids=lost[:20], duplicated=len(duplicated), add_errors=len(jobs.add_errors),
                  failure=jobs.failure)
    with open(result_file, "w") as fh:
        json.dump(result, fh)
    print(json.dumps(result))
    return 1 if lost or jobs.failure else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
