"""Run a command and report its own resource usage: `python _rusage.py FD -- ARGV...`.

Linux gives a child exec'd from a large process the parent's memory high-water mark as its
`ru_maxrss` (the exec records the borrowed address space's peak). Benchmarks that import
pullwatch and run rounds in-process are large, so they start measured commands through this
small process: the command's peak RSS is then its own. The usage goes to file descriptor FD as
JSON; the command's stdin, stdout and stderr are this process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> int:
    fd = int(sys.argv[1])
    argv = sys.argv[3:]
    started = time.perf_counter()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    report = {
        "wall": time.perf_counter() - started,
        "returncode": os.waitstatus_to_exitcode(status),
        "max_rss": usage.ru_maxrss * 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    with os.fdopen(fd, "w") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
