"""Print why a molecule run failed: each failed task's name and the telling part of its result.

  python3 failed_task.py LOG

CI shows only the end of a run's output, and Ansible's YAML callback prints a failed command's argv and both
its output streams twice (as text and as lists). This keeps, per failed (not ignored) task: the TASK line, the
result's scalar keys (msg, rc, assertion, ...) and the last lines of stderr and stdout, where the harness
programs print their verdicts. Colours and molecule's box drawing are removed; lines are cut at 300 characters.
"""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BLOCK_END = re.compile(r"^(TASK \[|PLAY |RUNNING HANDLER|PLAY RECAP|\.\.\.ignoring|ok: \[|changed: \[|skipping: \[)")
KEY = re.compile(r"^    ([a-z_]+):(.*)$")
HEAD = {"msg": 24}  # a verdict's message starts with its summary
TAIL = {"stderr": 8, "stdout": 14}  # a program prints its verdict last
DROP = {"cmd", "stderr_lines", "stdout_lines", "invocation", "start", "end", "delta"}


def blocks(lines):
    task, block = None, None
    for line in lines:
        if block is not None:
            if BLOCK_END.match(line) or not line.strip():
                yield task, block
                block = None
            else:
                block.append(line)
                continue
        if line.startswith("TASK ["):
            task = line.rstrip(" *")
        elif re.match(r"^(fatal|failed): \[", line) and "...ignoring" not in line:
            block = [line]
    if block is not None:
        yield task, block


def summarize(task, block):
    out = [task or "TASK [?]", block[0]]
    sections, current = [], None
    for line in block[1:]:
        match = KEY.match(line)
        if match:
            current = [match.group(1), [line]]
            sections.append(current)
        elif current is not None:
            current[1].append(line)
    for key, body in sections:
        if key in DROP:
            continue
        if key in HEAD and len(body) > HEAD[key]:
            body = body[:HEAD[key]] + ["      [... %d lines ...]" % (len(body) - HEAD[key])]
        elif len(body) > TAIL.get(key, 4):
            limit = TAIL.get(key, 4)
            body = [body[0], "      [... %d lines ...]" % (len(body) - limit + 1)] + body[-(limit - 1):]
        out.extend(body)
    return out


def main(path):
    with open(path, errors="replace") as fh:
        lines = [re.sub(r"^ *│ ?", "", ANSI.sub("", line.rstrip("\n"))) for line in fh]
    for task, block in blocks(lines):
        for line in summarize(task, block):
            print(line[:300])


if __name__ == "__main__":
    main(sys.argv[1])
