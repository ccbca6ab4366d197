"""Joint-inference counters, counted once (Sedna double-counts hard examples)."""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs

__all__ = ["InferenceStats", "StatsCounter"]

_LC_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@attrs.frozen
class InferenceStats:
    """A snapshot of a :class:`JointInference` job's counters (samples, not calls).

    Attributes
    ----------
    inference_number
        Samples inferred (a call of ``inference`` is one sample, as in Sedna).
    hard_example_number
        Samples the miner judged hard.
    cloud_success_number
        Hard samples the cloud answered.
    cloud_failure_number
        Hard samples answered by the edge instead: the cloud failed, timed out, or was skipped
        by the open circuit breaker.
    """

    inference_number: int = 0
    hard_example_number: int = 0
    cloud_success_number: int = 0
    cloud_failure_number: int = 0

    @property
    def upload_ratio(self) -> float:
        """Hard samples over inferred samples (Sedna's ``uploadCloudRatio``), 0 before any."""
        if not self.inference_number:
            return 0.0
        return self.hard_example_number / self.inference_number

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = attrs.asdict(self)
        out["upload_ratio"] = self.upload_ratio
        return out

    def owner_info(self, start_time: float, update_time: float) -> dict[str, Any]:
        """Sedna's periodic ``ownerInfo`` (times in local ``%Y-%m-%d %H:%M:%S``, epoch seconds)."""
        return {
            "startTime": time.strftime(_LC_TIME_FORMAT, time.localtime(start_time)),
            "updateTime": time.strftime(_LC_TIME_FORMAT, time.localtime(update_time)),
            "inferenceNumber": self.inference_number,
            "hardExampleNumber": self.hard_example_number,
            "uploadCloudRatio": self.upload_ratio,
        }


class StatsCounter:
    """Thread-safe accumulation of :class:`InferenceStats`; ``version`` grows on every change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = InferenceStats()
        self.version = 0

    def add(self, samples: int, hard: int, cloud_ok: int, cloud_failed: int) -> InferenceStats:
        """Count one call's outcome; returns the counters after it."""
        with self._lock:
            s = self._stats
            self._stats = InferenceStats(
                s.inference_number + samples,
                s.hard_example_number + hard,
                s.cloud_success_number + cloud_ok,
                s.cloud_failure_number + cloud_failed,
            )
            self.version += 1
            return self._stats

    def snapshot(self) -> tuple[InferenceStats, int]:
        with self._lock:
            return self._stats, self.version
