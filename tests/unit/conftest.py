"""Link this checkout as `ansible_collections.shardwise.redis` when `make venv` has not (pytest.ini puts
.cache/collections on the path)."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINK = os.path.join(ROOT, ".cache", "collections", "ansible_collections", "shardwise", "redis")
if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    try:
        os.symlink(os.path.relpath(ROOT, os.path.dirname(LINK)), LINK)
    except FileExistsError:  # another pytest-xdist worker made it first
        pass
