"""PNG plots of a bench run: reshard progress over time (the collection's own progress lines, against the
total time of each redis-cli setting) and the write gap of each failover drill against cluster-node-timeout."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def reshard(result, path):
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in result["runs"]:
        label = "%s %s->%s" % (run["label"], run["source"], run["target"])
        if run.get("progress"):
            points = [(0.0, 0)] + [(p["t"], p["keys_moved"]) for p in run["progress"]]
            ax.plot([t for t, _unused1 in points], [k for _unused2, k in points], marker="o", label=label)
        else:
            ax.plot([0, run["seconds"]], [0, run["keys"]], linestyle="--", label=label + " (start/end only)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("keys moved")
    ax.set_title("Moving %d slots (%d keys, %d-byte values) under client load" % (
        result["slots"], result["keys"], result["value_bytes"]))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def failover(result, path):
    fig, ax = plt.subplots(figsize=(9, 4))
    drills = result["drills"]
    names = ["%d\n%s" % (i + 1, d["killed"]) for i, d in enumerate(drills)]
    x = range(len(drills))
    series = [("write gap of the killed shard (server)", [d["write_gap_s"] for d in drills], "#c0504d"),
              ("Node.js BullMQ (docs/connect.md): no job processed", [(d.get("node") or {}).get("processed", 0) for d in drills],
               "#9bbb59"),
              ("Python bullmq (docs/connect.md): no job processed", [(d.get("python") or {}).get("processed", 0) for d in drills],
               "#8064a2")]
    width = 0.8 / len(series)
    for i, (label, values, color) in enumerate(series):
        ax.bar([n + (i - 1) * width for n in x], values, width=width, color=color, label=label)
    timeout = result["node_timeout_ms"] / 1000.0
    ax.axhline(timeout, color="#4f81bd", linestyle="--", label="cluster-node-timeout (%.1f s)" % timeout)
    ax.axhline(timeout + 3, color="#4f81bd", linestyle=":", label="client limit: node timeout + 3 s")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, fontsize=7)
    ax.set_ylabel("seconds")
    ax.set_ylim(0, max([v for _l, values, _c in series for v in values] + [timeout + 3]) * 1.35)
    ax.set_title("kill -9 of a primary's host: the server's write gap and the clients' stall")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# make bench-scale: the series of each plot (key of a row, label); ours and redis-cli's formation on one plot.
SCALE_FORMATION = [("collection_form_s", "formation by the collection (cluster role)"),
                   ("redis_cli_create_s", "redis-cli --cluster create")]
SCALE_RUNBOOKS = [("cluster_info_s", "redis_cluster_info"),
                  ("failover_recovery_healthy_s", "failover_recovery, healthy"),
                  ("failover_recovery_zone_down_s", "failover_recovery, a zone killed"),
                  ("failover_recovery_zone_back_s", "failover_recovery, the zone back")]


def fit(xs, ys):
    """(seconds per node, seconds at 0, exponent k of ys ~ xs**k): a straight line and the log-log slope."""
    import numpy  # pylint: disable=import-outside-toplevel

    slope, intercept = numpy.polyfit(xs, ys, 1)
    exponent = numpy.polyfit(numpy.log(xs), numpy.log(ys), 1)[0] if min(ys) > 0 else float("nan")
    return float(slope), float(intercept), float(exponent)


def scaling(rows, series, title, path):
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [r["nodes"] for r in rows]
    for key, label in series:
        points = [(r["nodes"], r[key]) for r in rows if r.get(key) is not None]
        if not points:
            continue
        ax.plot([x for x, _unused1 in points], [y for _unused2, y in points], marker="o", label=label)
    ax.set_xlabel("Redis nodes (primaries + replicas)")
    ax.set_ylabel("seconds, end to end")
    ax.set_xticks(xs)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
