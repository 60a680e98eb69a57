"""Run logging: every scalar goes to a JSONL file and to TensorBoard.

JSONL is what tests, plots and resume read back; TensorBoard is what people watch
(``tensorboard --logdir <run dir>``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from geogrpo.utils.io import atomic_path


class RunLogger:
    """Append-only metrics log for one run directory.

    A run owns its log: rows an earlier run left in the directory past ``resume_after`` are
    dropped, from the JSONL file and TensorBoard. 0 (the default) starts a fresh log; a run
    resumed from ``step`` passes that step and logs the later ones again.
    """

    def __init__(
        self, run_dir: str | Path, *, tensorboard: bool = True, resume_after: int = 0
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        if self.jsonl_path.exists():
            kept = [r for r in read_jsonl(self.jsonl_path) if r["step"] <= resume_after]
            with atomic_path(self.jsonl_path) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        self._jsonl = self.jsonl_path.open("a", encoding="utf-8")
        self._tb = (
            SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=resume_after + 1)
            if tensorboard
            else None
        )

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Record scalars for ``step``; non-finite values are written as null, not dropped."""
        row: dict[str, Any] = {"step": int(step)}
        for key, value in metrics.items():
            v = float(value)
            row[key] = v if math.isfinite(v) else None
            if self._tb is not None:
                self._tb.add_scalar(key, v, global_step=int(step))
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        """Flush and close both sinks."""
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a metrics file written by :class:`RunLogger`."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class NullLogger:
    """What ranks other than 0 log to: nothing (rank 0 logs the gathered values)."""

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        pass

    def __enter__(self) -> NullLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
