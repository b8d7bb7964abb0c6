"""How much kernel time a bundle's folders and files cost, folder by folder.

A 200-host bundle is about 1,200 folders and 2,000 small files. On a healthy file system their
creation costs about 0.03 s of kernel time; on the ext4 VM the benchmarks ran on it cost 0.03 to
0.6 s in folders of the same disk: more under /tmp, and more wherever large trees had just been
deleted (this script's own cleanup included). A build time means little without this figure:
    python benchmarks/bench_fs.py [FOLDER ...]      (default: ./build and the temp folder)
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def kernel_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def bundle_shaped_tree(root: Path, hosts: int = 200) -> tuple[float, float]:
    """Create a host folder with five subfolders of two 3 KB files each, `hosts` times;
    (kernel seconds, wall seconds)."""
    data = b"x" * 3000
    kernel, start = kernel_seconds(), time.perf_counter()
    for host in range(hosts):
        for sub in range(5):
            folder = root / f"H{host:05d}" / f"s{sub}"
            folder.mkdir(parents=True)
            for name in ("a", "b"):
                fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                os.write(fd, data)
                os.close(fd)
    return kernel_seconds() - kernel, time.perf_counter() - start


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:]] or [Path("build"), Path(tempfile.gettempdir())]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="bench-fs-", dir=folder))
        try:
            kernel, wall = bundle_shaped_tree(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"{folder.resolve()!s:30s} 1,200 folders + 2,000 files: kernel {kernel:.3f} s, "
              f"wall {wall:.3f} s")


if __name__ == "__main__":
    main()
