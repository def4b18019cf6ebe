"""Keyring reads against a real Secret Service: one `get` per label against one `get_many`.

Starts its own Secret Service - gnome-keyring-daemon in `dbus-run-session` (`_secretservice.py`:
the test suite's recipe; HOME and the XDG directories in a temporary directory, the user's own
keyring is never touched; its default collection, or the session one where only that works) -
and in a child process on that bus stores N = 10, 100, 1000 secrets with
`SecretStore.set` and times, through `SecretStore` as pullwatch runs it:

- sequential `get(label)` for every label (how a round read its secrets before `get_many`);
- `get_many(labels)` (one Secret Service batch);
- `get_many` of 100 labels while 1000 are stored (the batch then searches per label rather
  than reading every stored item's attributes);
- `get_many` through keyring's API, one label at a time on the worker (the path of every
  other backend): on the Secret Service, and on an in-memory backend (the worker's own cost).

The target: `get_many` of 100 secrets in < 150 ms. Every answer is checked against the
secret stored: a wrong one, or a daemon that exited during the run, voids the figures
(exit status 1).

    python benchmarks/keyring_reads.py [--quick] [--repeats R] [--sizes 10,100,1000]

`PULLWATCH_BENCH_SRC=OTHER/src` runs another source tree's SecretStore (rows it cannot run,
such as get_many before it existed, are left out).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import SOURCE_TREE, Table, label_for, median, ms, progress
from _secretservice import SecretService, missing_programs

INNER = "PULLWATCH_BENCH_KEYRING_INNER"
COLLECTION = "PULLWATCH_BENCH_KEYRING_COLLECTION"
TABLE = "TABLE "
TARGET_N = 100
TARGET = 0.150  # seconds for 100 secrets with get_many
STORE_TIMEOUT = 30.0  # generous: a slow machine must not turn a figure into a timeout


# -- outside: a private Secret Service ---------------------------------------------------------


def outer(argv: Sequence[str]) -> tuple[int, list[Table]]:
    """Run the measurements in a child process on a private Secret Service; its tables."""
    missing = missing_programs()
    if missing:
        print(f"keyring_reads: {', '.join(missing)} not installed", file=sys.stderr)
        return 1, []
    root = Path(tempfile.mkdtemp(prefix="pullwatch-bench-keyring-"))
    try:
        with SecretService(root) as service:
            env = {
                key: value
                for key, value in os.environ.items()
                if key not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")
                and not key.startswith(("KEYRING_PROPERTY_", "PYTHON_KEYRING", "PULLWATCH_"))
            }
            env.update(HOME=str(service.home), **service.client_env())
            env[INNER] = "1"
            env[COLLECTION] = service.collection
            if SOURCE_TREE:
                env["PULLWATCH_BENCH_SRC"] = SOURCE_TREE
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), *argv],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
            lines = done.stdout.splitlines()
            tables = [Table.from_json(x[len(TABLE) :]) for x in lines if x.startswith(TABLE)]
            others = [x for x in lines if not x.startswith(TABLE)]
            if others:
                print("\n".join(others), flush=True)
            if not service.alive():
                print(f"the Secret Service died: {service.log_tail()!r}", file=sys.stderr)
                return 1, tables
            return done.returncode, tables
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- inside: pullwatch's SecretStore on that Secret Service ---------------------------------------


def secret_of(label: str) -> str:
    return f"bench-secret-{label}-0123456789abcdef"


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def spread(times: Sequence[float]) -> str:
    return f"{ms(median(times))} (min {ms(min(times))}, max {ms(max(times))})"


class Checked:
    """Runs reads and checks every answer against the secret stored (wrong answers: exit 1)."""

    def __init__(self) -> None:
        self.wrong: list[str] = []

    def lookups(self, what: str, found: dict[str, Any], labels: Sequence[str]) -> None:
        for label in labels:
            lookup = found.get(label)
            if lookup is None or lookup.secret != secret_of(label):
                answer = "nothing" if lookup is None else f"{lookup.status} {lookup.message!r}"
                self.wrong.append(f"{what}: {label} answered {answer[:200]}")
                return


def store_again(store: Any, label: str, secret: str) -> None:
    """`store.set`, tried again after gnome-keyring-daemon aborted (it is restarted, see
    `_secretservice.serve`; a write lost that way is simply made again)."""
    for attempt in range(3):
        try:
            store.set(label, secret)
            return
        except Exception as exc:
            if attempt == 2:
                raise
            progress(f"storing {label} failed ({str(exc)[-80:]}), again")
            time.sleep(2)


def inner(args: argparse.Namespace) -> int:
    if SOURCE_TREE:
        sys.path.insert(0, SOURCE_TREE)
    from keyring.backends import SecretService

    from pullwatch.identities.secrets import MemoryKeyring, SecretStore

    backend = SecretService.Keyring()
    store = SecretStore(backend, timeout=STORE_TIMEOUT)
    has_batch = hasattr(store, "get_many")
    check = Checked()
    sizes = sorted(args.sizes)
    table = Table(
        f"Keyring reads: SecretStore on a real Secret Service (gnome-keyring in "
        f"dbus-run-session, collection {os.environ.get(COLLECTION, '?')})"
    )
    stored = 0
    for n in sizes:
        labels = [label_for(i) for i in range(1, n + 1)]
        progress(f"storing secrets {stored + 1}..{n}")
        for label in labels[stored:]:
            store_again(store, label, secret_of(label))
        stored = n
        repeats = args.repeats if n < 1000 else 1  # ~15 s each: informative, not a target
        progress(f"N={n}: {repeats} x sequential get, {args.repeats} x get_many")
        sequential = timed(
            lambda labels=labels: check.lookups(
                "get", {label: store.get(label) for label in labels}, labels
            ),
            repeats,
        )
        table.add(f"sequential get, N={n}", spread(sequential))
        if has_batch:
            target = f"< {ms(TARGET)}" if n == TARGET_N else ""
            batched = timed(
                lambda labels=labels: check.lookups("get_many", store.get_many(labels), labels),
                args.repeats,
            )
            ok = median(batched) < TARGET if n == TARGET_N else None
            table.add(f"get_many, N={n}", spread(batched), target, ok)
            table.note(
                f"N={n}: get_many {median(sequential) / median(batched):.1f}x faster; "
                f"{median(batched) / n * 1e6:.0f} us per secret"
            )
    if not has_batch:
        table.note("this source tree has no SecretStore.get_many")
    if has_batch and stored >= 1000 and TARGET_N in sizes:
        labels = [label_for(i) for i in range(1, TARGET_N + 1)]
        progress(f"get_many of {TARGET_N} with {stored} stored")
        few = timed(lambda: check.lookups("get_many", store.get_many(labels), labels), args.repeats)
        table.add(f"get_many, {TARGET_N} of {stored} stored", spread(few))

    fallback = Table("get_many through keyring's API: one label at a time on the worker")
    if has_batch:

        class OwnReads(SecretService.Keyring):
            """Reads through its own get_password: get_many takes the one-at-a-time path."""

            def get_password(self, service: str, username: str) -> str | None:
                return super().get_password(service, username)

        n = min(TARGET_N, stored)
        labels = [label_for(i) for i in range(1, n + 1)]
        progress(f"one-at-a-time get_many on the Secret Service, N={n}")
        slow = SecretStore(OwnReads(), timeout=STORE_TIMEOUT)
        times = timed(
            lambda: check.lookups("one-at-a-time", slow.get_many(labels), labels),
            args.repeats,
        )
        fallback.add(f"Secret Service, N={n}", spread(times))
    memory = MemoryKeyring()
    labels = [label_for(i) for i in range(1, 1001)]
    for label in labels:
        memory.set_password("pullwatch", label, secret_of(label))
    in_memory = SecretStore(memory, timeout=STORE_TIMEOUT)
    progress("in-memory backend, N=1000")
    gets = timed(
        lambda: check.lookups("memory get", {lb: in_memory.get(lb) for lb in labels}, labels),
        args.repeats,
    )
    fallback.add("in-memory backend, sequential get, N=1000", spread(gets))
    if has_batch:
        many = timed(
            lambda: check.lookups("memory get_many", in_memory.get_many(labels), labels),
            args.repeats,
        )
        fallback.add("in-memory backend, get_many, N=1000", spread(many))
        fallback.note(f"{median(many) / 1000 * 1e6:.0f} us per label: the worker's own cost")

    load = os.getloadavg()
    print(
        f"keyring reads: python {platform.python_version()}, {os.cpu_count()} CPUs, load "
        f"{load[0]:.2f}; {args.repeats} repeats (sequential get at N=1000: "
        f"1); source {SOURCE_TREE or 'this tree'}\n",
        flush=True,
    )
    for out in (table, fallback):
        print(TABLE + out.to_json(), flush=True)
    if check.wrong:
        print("WRONG ANSWERS:\n  " + "\n  ".join(check.wrong), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10, 100 and 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each figure")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",") if part.strip()],
        default=None,
        help="comma-separated N (default 10,100,1000)",
    )
    args = parser.parse_args(raw)
    if args.sizes is None:
        args.sizes = [10, 100] if args.quick else [10, 100, 1000]
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if not os.environ.get(INNER):
        code, tables = outer(raw)
        for table in tables:
            table.print()
        return code
    return inner(args)


def run(quick: bool = False) -> list[Table]:
    code, tables = outer(["--quick"] if quick else [])
    if code != 0:
        raise RuntimeError(f"keyring_reads failed (exit status {code}): see above")
    return tables


if __name__ == "__main__":
    sys.exit(main())
