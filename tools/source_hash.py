"""The SHA-256 of what a build of ffn_ext is made from: setup.py, pyproject.toml, every file under
csrc/ and the package's Python files (not the generated ffn_ext/_build_config.py, the compiled
library or caches), by path and content. tools/build_gpu_wheel.sh records it beside the wheel it
builds, and tools/gpu_check.sh installs that wheel only where the tree it runs on hashes the same,
so that a wheel built from other sources is never measured as this tree's.

    python3 tools/source_hash.py [ROOT]      # prints the hash (ROOT: the repository, default ..)
"""

import hashlib
import sys
from pathlib import Path

GENERATED = {"ffn_ext/_build_config.py"}


def source_files(root):
    files = [root / "setup.py", root / "pyproject.toml"]
    files += [p for p in (root / "csrc").rglob("*") if p.is_file()]
    files += [p for p in (root / "ffn_ext").rglob("*.py") if p.is_file()]
    rel = sorted({p.relative_to(root).as_posix() for p in files})
    return [r for r in rel if r not in GENERATED and "__pycache__" not in r]


def source_hash(root):
    h = hashlib.sha256()
    for rel in source_files(root):
        data = (root / rel).read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    print(source_hash(root.resolve()))
