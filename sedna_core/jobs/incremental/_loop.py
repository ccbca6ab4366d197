"""The loop runner: infer, mine, label, retrain, gate, deploy, over a stream of batches.

For each batch the serving model predicts (prequential accuracy is measured before anything is
learnt from the batch, when the stream carries labels); the miner picks hard examples, plus a
random ``explore`` share for an unbiased view; the labeller labels them and they go to the
job's hard-example store. When the retrain trigger holds, a candidate is trained on the labelled
samples of the last ``span`` stream samples, and then judged in shadow for the next
``shadow_window`` stream samples: both models predict every sample, every sample on which they
disagree is labelled too, and the gate compares them on the labelled shadow samples, which
neither model was trained on. Only disagreements decide a paired comparison, and all of them are
labelled, so ``wins``/``losses`` (and ``paired_z``) measure which model was right more often on
that whole stretch of the stream, not only where the serving model was unsure.

With ground truth in the stream the runner also checks each deployment after the fact: a
deployed model that is less accurate than its predecessor on the next ``window`` samples is a
false deploy. Those labels are for evaluation only and are not counted as labels used.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs.incremental._gate import GateDecision
from sedna_core.jobs.incremental._job import IncrementalLearning

__all__ = ["LoopReport", "LoopRunner", "WindowStats", "drift_summary"]

Labeller = Callable[[np.ndarray], Any]


@attrs.frozen
class WindowStats:
    """Prequential accuracy over stream samples ``[start, end)`` and labels asked for in it."""

    start: int
    end: int
    accuracy: float
    labels: int
    version: str


@attrs.frozen
class DeployCheck:
    """A deployment checked on the next window: was the new model worse than its predecessor?"""

    position: int
    version: str
    previous: str
    accuracy: float
    previous_accuracy: float

    @property
    def false_deploy(self) -> bool:
        return self.accuracy < self.previous_accuracy


@attrs.define
class LoopReport:
    """What a run did: windows, decisions (with stream positions), labels, deploy checks."""

    samples: int = 0
    labels_used: int = 0
    bootstrap_labels: int = 0
    windows: list[WindowStats] = attrs.field(factory=list)
    decisions: list[tuple[int, GateDecision]] = attrs.field(factory=list)
    checks: list[DeployCheck] = attrs.field(factory=list)

    @property
    def label_share(self) -> float:
        """Labels asked for (bootstrap included) per sample seen (bootstrap included)."""
        total = self.samples + self.bootstrap_labels
        return (self.labels_used + self.bootstrap_labels) / total if total else 0.0

    @property
    def deploys(self) -> int:
        return sum(1 for _, d in self.decisions if d.deployed and d.kind == "gate")

    @property
    def false_deploys(self) -> int:
        return sum(1 for c in self.checks if c.false_deploy)

    def summary(self, drift_at: int | None = None, fraction: float = 0.95) -> dict[str, Any]:
        out: dict[str, Any] = {
            "samples": self.samples,
            "labels_used": self.labels_used,
            "bootstrap_labels": self.bootstrap_labels,
            "label_share": round(self.label_share, 4),
            "candidates": sum(1 for _, d in self.decisions if d.kind == "gate"),
            "deploys": self.deploys,
            "false_deploys": self.false_deploys,
        }
        if drift_at is not None and self.windows:
            out.update(
                drift_summary(
                    [w.accuracy for w in self.windows],
                    [w.start for w in self.windows],
                    drift_at,
                    fraction=fraction,
                )
            )
        return out


def drift_summary(
    accuracies: Sequence[float], starts: Sequence[int], drift_at: int, *, fraction: float = 0.95
) -> dict[str, Any]:
    """Pre-drift accuracy (mean of windows before ``drift_at``), the lowest window from the
    drift on, and samples from the drift until the end of the first window at or after the
    lowest one that is back to ``fraction`` of pre-drift accuracy (0 when accuracy never fell
    below that; None when it never came back)."""
    acc = np.asarray(accuracies, dtype=float)
    st = np.asarray(starts)
    width = int(st[1] - st[0]) if len(st) > 1 else 0
    pre_mask, post_mask = st + width <= drift_at, st >= drift_at
    if not pre_mask.any() or not post_mask.any():
        return {"pre_drift_accuracy": None, "lowest_after_drift": None, "recovery_samples": None}
    pre = float(acc[pre_mask].mean())
    post = acc[post_mask]
    post_starts = st[post_mask]
    low = int(np.argmin(post))
    target = fraction * pre
    recovery: int | None = 0
    if post[low] < target:
        recovery = None
        for k in range(low, len(post)):
            if post[k] >= target:
                recovery = int(post_starts[k] + width - drift_at)
                break
    return {
        "pre_drift_accuracy": round(pre, 4),
        "lowest_after_drift": round(float(post[low]), 4),
        "recovery_target": round(target, 4),
        "recovery_samples": recovery,
    }


class LoopRunner:
    """Runs the incremental-learning cycle over a stream.

    Parameters
    ----------
    job
        The :class:`IncrementalLearning` job (with a miner and a hard-example store).
    labeller
        ``labeller(x) -> y`` for the samples picked for labelling; None: an oracle that uses
        the labels the stream carries (demos, benchmarks).
    explore
        Share of samples labelled at random besides the hard ones, in [0, 1).
    span
        Stream samples a candidate's training data may reach back (the recent window).
    shadow_window
        Stream samples a candidate is run in shadow before the gate judges it.
    gate_size
        Fewest labelled shadow samples to judge on (the shadow period is extended until then).
    label_disagreements
        Label the shadow samples on which candidate and serving model disagree.
    window
        Samples per prequential-accuracy window (and per deployment check).
    seed
        Seed of the random exploration.
    on_window, on_decision
        Called with each finished :class:`WindowStats` / ``(position, GateDecision)``.
    train_kwargs
        Passed to the job's ``train`` (e.g. backend options).
    """

    def __init__(
        self,
        job: IncrementalLearning,
        labeller: Labeller | None = None,
        *,
        explore: float = 0.01,
        span: int = 1000,
        shadow_window: int = 500,
        gate_size: int = 50,
        label_disagreements: bool = True,
        window: int = 500,
        seed: int = 0,
        on_window: Callable[[WindowStats], None] | None = None,
        on_decision: Callable[[int, GateDecision], None] | None = None,
        train_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not 0.0 <= explore < 1.0:
            raise ConfigError("explore", explore, "a share in [0, 1)")
        sizes = (span, shadow_window, gate_size, window)
        if min(sizes) < 1:
            raise ConfigError("span/shadow_window/gate_size/window", sizes, "positive sizes")
        if job.hard_examples is None:
            raise JobError("the loop runner needs a job with a hard-example store")
        self.job = job
        self.labeller = labeller
        self.explore = float(explore)
        self.span = int(span)
        self.shadow_window = int(shadow_window)
        self.gate_size = int(gate_size)
        self.label_disagreements = bool(label_disagreements)
        self.window = int(window)
        self._rng = np.random.default_rng(seed)
        self.on_window = on_window
        self.on_decision = on_decision
        self.train_kwargs = dict(train_kwargs or {})
        self.report = LoopReport()
        self.position = 0
        self._recent: collections.deque[tuple[int, int]] = collections.deque()  # (first id, pos)
        self._challenger: str | None = None
        self._challenger_model: Any = None
        self._shadow_start = 0
        self._shadow_x: list[np.ndarray] = []
        self._shadow_y: list[np.ndarray] = []
        self._win_correct = 0
        self._win_seen = 0
        self._win_labels = 0
        self._win_start = 0
        self._checks: list[dict[str, Any]] = []

    # -- setup ------------------------------------------------------------------------------

    def bootstrap(self, x: Any, y: Any) -> GateDecision | None:
        """Train and deploy the first model on labelled data: the stream's first samples
        (counted as labels used; positions and windows start after them)."""
        xs, ys = np.asarray(x), np.asarray(y)
        self.report.bootstrap_labels += len(ys)
        self.position += len(ys)
        self._win_start = self.position
        self.job.train((xs, ys), deploy=True, **self.train_kwargs)
        decision = self.job.last_decision
        if decision is not None:
            self.report.decisions.append((self.position, decision))
        return decision

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stream: Iterable[tuple[Any, Any]]) -> LoopReport:
        """Consume the stream of ``(x, y)`` batches (``y`` may be None) and return the report."""
        for x, y in stream:
            self.step(np.asarray(x), None if y is None else np.asarray(y))
        self._close_window()
        return self.report

    def step(self, x: np.ndarray, y: np.ndarray | None) -> None:
        """One batch: infer, measure, mine, label, maybe retrain and gate."""
        n = len(x)
        if n == 0:
            return
        out = self.job.inference_batch(x)
        pred = _labels(out.final)
        if y is not None:
            self._measure(x, y, pred)
        hard = out.is_hard
        explore = (self._rng.random(n) < self.explore) & ~hard
        disagree = np.zeros(n, dtype=bool)
        if self._challenger_model is not None and self.label_disagreements:
            disagree = (_labels(self._challenger_model.predict(x)) != pred) & ~hard & ~explore
        need = hard | explore | disagree
        if need.any():
            labels = self._label(x[need], None if y is None else y[need])
            y_full = np.zeros(n, dtype=labels.dtype)
            y_full[need] = labels
            self._store(x, y_full, hard, out, explore, disagree)
            self.report.labels_used += int(need.sum())
            self._win_labels += int(need.sum())
            if self._challenger is not None:
                self._shadow_x.append(x[need])
                self._shadow_y.append(labels)
        self.position += n
        self.report.samples += n
        self._maybe_judge()
        self._maybe_train()

    def _store(
        self,
        x: np.ndarray,
        y: np.ndarray,
        hard: np.ndarray,
        out: Any,
        explore: np.ndarray,
        disagree: np.ndarray,
    ) -> None:
        store = self.job.hard_examples
        assert store is not None
        if hard.any():
            if len(out.hard_ids) == int(hard.sum()):
                store.set_labels(out.hard_ids, y[hard])
                self._remember(int(out.hard_ids[0]))
            else:  # the job did not keep them (store refused): keep them here
                ids = store.add(x[hard], y[hard], source="hard", model_version=out.version)
                if len(ids):
                    self._remember(int(ids[0]))
        for mask, source in ((explore, "random"), (disagree, "disagreement")):
            if mask.any():
                ids = store.add(x[mask], y[mask], source=source, model_version=out.version)
                if len(ids):
                    self._remember(int(ids[0]))

    def _label(self, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        if self.labeller is not None:
            return np.asarray(self.labeller(x))
        if y is None:
            raise JobError("no labeller and the stream carries no labels: give labeller=")
        return y

    def _remember(self, first_id: int) -> None:
        self._recent.append((first_id, self.position))

    # -- prequential accuracy and deployment checks -----------------------------------------

    def _measure(self, x: np.ndarray, y: np.ndarray, pred: np.ndarray) -> None:
        correct = pred == y
        for check in self._checks:  # both models predict the same next samples, for comparison
            take = min(len(y), self.window - check["seen"])
            if take > 0:
                new_pred = _labels(check["model"].predict(x[:take]))
                prev_pred = _labels(check["previous_model"].predict(x[:take]))
                check["correct"] += int(np.sum(new_pred == y[:take]))
                check["prev_correct"] += int(np.sum(prev_pred == y[:take]))
                check["seen"] += take
        for check in [c for c in self._checks if c["seen"] >= self.window]:
            self._checks.remove(check)
            self.report.checks.append(
                DeployCheck(
                    check["position"],
                    check["version"],
                    check["previous"],
                    check["correct"] / check["seen"],
                    check["prev_correct"] / check["seen"],
                )
            )
        offset = 0
        while offset < len(y):
            take = min(len(y) - offset, self.window - self._win_seen)
            self._win_correct += int(np.sum(correct[offset : offset + take]))
            self._win_seen += take
            offset += take
            if self._win_seen == self.window:
                self._close_window(self.position + offset)

    def _close_window(self, end: int | None = None) -> None:
        if self._win_seen == 0:
            return
        serving = self.job.serving
        stats = WindowStats(
            self._win_start,
            end if end is not None else self._win_start + self._win_seen,
            self._win_correct / self._win_seen,
            self._win_labels,
            serving.version if serving else "",
        )
        self.report.windows.append(stats)
        self._win_start, self._win_seen, self._win_correct, self._win_labels = stats.end, 0, 0, 0
        if self.on_window is not None:
            self.on_window(stats)

    # -- retrain and gate -------------------------------------------------------------------

    def _maybe_train(self) -> None:
        if self._challenger is not None or not self.job.retrain_due():
            return
        store = self.job.hard_examples
        assert store is not None
        while self._recent and self._recent[0][1] < self.position - self.span:
            self._recent.popleft()
        oldest = self._recent[0][0] if self._recent else None
        held = store.load(labelled_only=True)
        if oldest is not None:
            keep = held.ids >= oldest
            x, y = held.x[keep], None if held.y is None else held.y[keep]
        else:
            x, y = held.x[:0], None
        store.mark()
        if y is None or len(y) == 0 or len(np.unique(y)) < 2:
            return  # nothing to learn a boundary from yet
        self._challenger_model = self.job.train((x, y), deploy=False, **self.train_kwargs)
        self._challenger = self.job.last_trained
        self._shadow_start = self.position
        self._shadow_x, self._shadow_y = [], []

    def _maybe_judge(self) -> None:
        if self._challenger is None:
            return
        n = sum(len(v) for v in self._shadow_y)
        if n < self.gate_size or self.position - self._shadow_start < self.shadow_window:
            return
        ex, ey = np.concatenate(self._shadow_x), np.concatenate(self._shadow_y)
        previous = self.job.serving
        decision = self.job.propose(self._challenger, (ex, ey))
        self._challenger, self._challenger_model = None, None
        self._shadow_x, self._shadow_y = [], []
        self.report.decisions.append((self.position, decision))
        current = self.job.serving
        if decision.deployed and previous is not None and current is not None:
            self._checks.append(
                {
                    "position": self.position,
                    "version": decision.candidate,
                    "previous": previous.version,
                    "model": current.model,
                    "previous_model": previous.model,
                    "seen": 0,
                    "correct": 0,
                    "prev_correct": 0,
                }
            )
        if self.on_decision is not None:
            self.on_decision(self.position, decision)


def _labels(result: Any) -> np.ndarray:
    """Predicted labels from what a model's predict gave (probabilities: the argmax)."""
    pred = np.asarray(result)
    if pred.ndim == 2 and pred.shape[1] > 1:
        return pred.argmax(axis=1)
    return pred
