"""The inference path of ``IncrementalLearning``: one serving model per call, hard examples
mined and kept, counts and announcements."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from sedna_core.datasources import as_x
from sedna_core.errors import DataSourceError, JobError

__all__ = ["BatchInference", "Inference", "count_samples"]


@attrs.frozen(eq=False)
class BatchInference:
    """What :meth:`IncrementalLearning.inference_batch` returns.

    ``is_hard`` has one bool per sample; ``version`` is the model version that served every
    sample of the call; ``hard_ids`` are the hard examples' ids in the store (empty when none
    were kept).
    """

    raw: Any
    final: Any
    is_hard: np.ndarray
    version: str
    hard_ids: np.ndarray = attrs.field(factory=lambda: np.empty(0, dtype=np.int64))


class Inference:
    """``inference`` (one sample, Sedna's 3-tuple) and ``inference_batch``.

    Part of :class:`~sedna_core.jobs.incremental.IncrementalLearning` (``_job.py``), which
    holds the state these methods use.
    """

    def inference(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> tuple[Any, Any, bool]:
        """Sedna's ``(infer_result, final_result, is_hard_example)`` for one sample.

        ``data`` is one sample as the model takes it (an image, or a batch of one row). One model
        reference serves the whole call. A hard sample goes to the hard-example store.

        Parameters
        ----------
        data
            One sample, as the model takes it.
        post_process
            Applied to a copy of the model's result to make ``final_result`` (None: the result
            as it is). The miner judges ``final_result``, or the model's probabilities with
            ``mine_proba``.
        **kwargs
            Passed to the model's ``predict``.

        Returns
        -------
        tuple
            ``(infer_result, final_result, is_hard_example)``: the model's raw result, its
            post-processed form, and the miner's verdict (a bool; False without a miner).
        """
        serving = self._serving()
        raw = serving.model.predict(data, **kwargs)
        final = post_process(copy.deepcopy(raw)) if callable(post_process) else raw
        is_hard = False
        if self.hem is not None:
            judged = serving.model.predict_proba(data) if self.mine_proba else final
            is_hard = bool(self.hem(judged))
        self._count(1, int(is_hard))
        if is_hard:
            sample = np.asarray(as_x(data))
            # a batch of one (sklearn's x[:1]) is stored as its row; anything else as one sample
            self._keep(
                sample if sample.ndim >= 1 and len(sample) == 1 else sample[None], serving.version
            )
        return raw, final, is_hard

    def inference_batch(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> BatchInference:
        """Predict a batch (samples along the first axis) and mine each sample.

        Returns a :class:`BatchInference` (``raw``, ``final``, ``is_hard``, ``version``,
        ``hard_ids``); one model version serves every sample of the call.

        Parameters
        ----------
        data
            The batch, samples along the first axis (or an ``(x, y)`` pair: ``x`` is used).
        post_process
            Applied to a copy of the model's result to make ``final`` (None: as it is). The
            miner judges ``final``, or the model's probabilities with ``mine_proba``.
        **kwargs
            Passed to the model's ``predict``.
        """
        serving = self._serving()
        x = as_x(data)
        raw = serving.model.predict(x, **kwargs)
        final = post_process(copy.deepcopy(raw)) if callable(post_process) else raw
        n = count_samples(x)
        if self.hem is None:
            hard = np.zeros(n, dtype=bool)
        else:
            judged = serving.model.predict_proba(x) if self.mine_proba else final
            hard = np.asarray(self.hem.mine(judged), dtype=bool).reshape(-1)
            if len(hard) != n:
                raise JobError(f"the miner judged {len(hard)} samples of a batch of {n}")
        found = int(hard.sum())
        self._count(n, found)
        ids = self._keep(np.asarray(x)[hard], serving.version) if found else None
        if ids is None:
            return BatchInference(raw, final, hard, serving.version)
        return BatchInference(raw, final, hard, serving.version, ids)

    def _count(self, n: int, hard: int) -> None:
        with self._stats_lock:
            self.stats["inference_number"] += n
            self.stats["hard_example_number"] += hard
            stats = dict(self.stats)
        if hard:
            self.announce(
                "sedna_hard_example_found",
                job_name=self.config.job_name,
                count=hard,
                stats={k: float(v) for k, v in stats.items()},
            )

    def _keep(self, samples: Any, version: str) -> np.ndarray | None:
        """Store hard examples; inference goes on (and the loss is counted) if they cannot be."""
        if self.hard_examples is None:
            return None
        try:
            return self.hard_examples.add(samples, model_version=version)
        except (DataSourceError, OSError) as exc:
            with self._stats_lock:
                first = self.stats["unsaved_hard_examples"] == 0
                self.stats["unsaved_hard_examples"] += len(samples)
            if first:
                self.log.warning("hard examples not saved", error=str(exc))
            return None


def count_samples(data: Any) -> int:
    x = as_x(data) if not isinstance(data, tuple) else data[0]
    try:
        return len(x)
    except TypeError:
        return 1
