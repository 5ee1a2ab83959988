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
    fig, ax = plt.subplots(figsize=(7, 4))
    drills = result["drills"]
    names = ["drill %d\n%s" % (i + 1, d["killed"]) for i, d in enumerate(drills)]
    ax.bar(names, [d["write_gap_s"] for d in drills], color="#c0504d", label="write gap of the killed shard")
    timeout = result["node_timeout_ms"] / 1000.0
    ax.axhline(timeout, color="#4f81bd", linestyle="--", label="cluster-node-timeout (%.1f s)" % timeout)
    ax.set_ylabel("seconds without an acknowledged write")
    ax.set_ylim(0, max([d["write_gap_s"] for d in drills] + [timeout]) * 1.35)
    ax.set_title("kill -9 of a primary's host, per drill")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
