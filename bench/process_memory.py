"""Peak resident memory of every process a benchmark runs on: its own, its children's, Postgres' processes.

The kernel keeps each process's high-water mark (VmHWM in /proc/<pid>/status), so a sampler only has to see a
process once before it exits to know its peak; short-lived backends that start and end between two samples are
missed, which is why the sampler runs every 500 ms. A Postgres backend's RSS counts the shared buffers it
touched, so backends of one server overlap: their peaks are not to be added up.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_POSTGRES_AUXILIARY = {
    "checkpointer",
    "background",
    "walwriter",
    "autovacuum",
    "logical",
    "io",
    "startup",
    "archiver",
    "walsummarizer",
}


def _status(pid: int) -> dict[str, str]:
    try:
        text = (_PROC / str(pid) / "status").read_text()
    except OSError:  # the process ended, or /proc hides it
        return {}
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in fields}


def _name(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    words = raw.replace(b"\0", b" ").decode(errors="replace").split()
    if not words:
        return "?"
    if words[0].startswith("postgres:"):
        # "postgres: checkpointer", "postgres: user db [local] idle": the kind of process is what matters.
        if len(words) > 1 and words[1] in _POSTGRES_AUXILIARY:
            return "postgres " + " ".join(w for w in words[1:3] if not w.isdigit())
        return "postgres client backend"
    if Path(words[0]).name == "postgres":
        return "postgres postmaster"
    if "-m" in words[:-1]:  # python -u -m threadline.local.worker ...: the module says what it is
        return f"{Path(words[0]).name} -m {words[words.index('-m') + 1]}"
    return Path(words[0]).name + (" " + " ".join(words[1:3]) if len(words) > 1 else "")


def _children(pid: int) -> list[int]:
    """The children of a process (of any of its threads), without reading every process's status."""
    found: list[int] = []
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            found.extend(int(child) for child in (task / "children").read_text().split())
    except OSError:  # the process or one of its threads ended
        pass
    return found


@dataclass
class PeakMemory:
    """Samples the peak RSS of this process, its descendants and the given roots' trees (a postmaster)."""

    roots: list[int] = field(default_factory=list)
    interval_s: float = 0.5
    peaks_kib: dict[int, tuple[str, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> PeakMemory:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def sample(self) -> None:
        """Record the high-water mark of every process in the watched trees."""
        todo = [os.getpid(), *self.roots]
        while todo:
            pid = todo.pop()
            todo.extend(_children(pid))
            peak = _status(pid).get("VmHWM", "")
            if peak.endswith("kB"):
                name = self.peaks_kib[pid][0] if pid in self.peaks_kib else _name(pid)
                self.peaks_kib[pid] = (name, max(int(peak[:-2]), self.peaks_kib.get(pid, ("", 0))[1]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def report(self) -> list[str]:
        """One line per kind of process: the largest peak, and how many processes of that kind were seen."""
        by_kind: dict[str, list[int]] = {}
        for pid, (name, kib) in self.peaks_kib.items():
            kind = "this benchmark process" if pid == os.getpid() else name
            by_kind.setdefault(kind, []).append(kib)
        return [
            f"  {kind:<48} {max(kibs) / 1024:8,.0f} MiB" + (f"  (largest of {len(kibs)})" if len(kibs) > 1 else "")
            for kind, kibs in sorted(by_kind.items(), key=lambda item: -max(item[1]))
        ]


def postmaster_pid(backend_pid: int) -> int:
    """The postmaster of a backend (its parent process), from the backend's pid (`SELECT pg_backend_pid()`)."""
    return int(_status(backend_pid).get("PPid", "0"))
