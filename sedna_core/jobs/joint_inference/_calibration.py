"""Choosing a miner's threshold from labelled validation data (``JointInference.calibrate``).

Every sample of the validation set gets three facts: how hard the miner finds it (``hardness``,
higher is harder), whether the edge's answer is right and whether the cloud's answer is right.
A threshold is a *cut*: samples with hardness above it go to the cloud. Three targets:

- **offload** (RouteLLM's ``calibrate_threshold``): the cut whose offload on the validation set is
  the largest not above the target (a budget).
- **point** (``max_accuracy_loss``, point estimate): walking from "everything to the cloud" towards
  "nothing", the last cut before the validation accuracy first falls more than the allowed loss
  below cloud-only accuracy on the same samples.
- **guaranteed** (``max_accuracy_loss`` with ``mode="guaranteed"``): with probability at least
  1 - delta over the draw of the validation set, the accuracy loss on new data exchangeable with
  it is at most the allowed loss. The bound is Clopper-Pearson's on the rate of *harmful*
  samples (kept on the edge, edge wrong, cloud right), which is at least the accuracy loss; the
  cuts are tested in a fixed sequence from "everything to the cloud" (Learn-then-Test; since the
  harmful rate only grows as the cut rises, this is also Bates et al.'s risk-controlling
  selection, valid over every cut at once without a multiplicity correction). A loss relative to
  cloud accuracy spends half of delta on a lower Clopper-Pearson bound of the cloud's accuracy.

Nothing here needs the network: :func:`calibrate_threshold` takes arrays (the function form for
offline use and the ``sedna calibrate`` command); ``JointInference.calibrate`` gathers them.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from sedna_core.errors import ConfigError, JobError

__all__ = [
    "Calibration",
    "calibrate_threshold",
    "check_calibratable",
    "correct_answers",
    "min_validation_samples",
]

MODES = ("point", "guaranteed")


@attrs.frozen
class Calibration:
    """A calibrated miner and what it did on the validation data.

    ``miner`` is the calibrated miner (use it as ``hard_example_mining``) and ``params`` its
    constructor parameters (what ``HEM_PARAMETERS`` takes). The figures are measured on the
    validation set; ``bound`` (guaranteed mode) is the upper confidence bound on the harmful rate
    at the chosen threshold and ``allowed`` the rate it had to stay under.
    """

    miner: Any
    params: dict[str, Any]
    target: str
    mode: str | None
    samples: int
    offload: float
    accuracy: float
    edge_accuracy: float
    cloud_accuracy: float
    max_accuracy_loss: float | None = None
    relative: bool = True
    delta: float | None = None
    bound: float | None = None
    allowed: float | None = None

    @property
    def accuracy_loss(self) -> float:
        """Cloud-only accuracy minus the joint accuracy on the validation set."""
        return self.cloud_accuracy - self.accuracy

    @property
    def relative_accuracy(self) -> float:
        """Joint accuracy as a fraction of cloud-only accuracy on the validation set."""
        return self.accuracy / self.cloud_accuracy if self.cloud_accuracy else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the miner as its name and parameters)."""
        out = attrs.asdict(self, filter=lambda a, _: a.name != "miner")
        out["miner"] = getattr(self.miner, "name", type(self.miner).__name__)
        out["accuracy_loss"] = self.accuracy_loss
        out["relative_accuracy"] = self.relative_accuracy
        return out


def min_validation_samples(epsilon: float, delta: float) -> int:
    """Fewest validation samples for which the guaranteed mode can certify *any* threshold.

    With ``n`` samples and no harmful one at all, Clopper-Pearson's upper bound is
    ``1 - delta ** (1 / n)``; it falls to ``epsilon`` at ``n = ln(delta) / ln(1 - epsilon)``
    (about ``ln(1/delta) / epsilon``). ``epsilon`` is the allowed harmful rate in absolute
    terms and ``delta`` the share of delta the test gets (half of it for a relative loss).
    Certifying a threshold that keeps many samples on the edge needs several times more.

    Parameters
    ----------
    epsilon
        The allowed harmful rate, in absolute terms, in (0, 1).
    delta
        The share of the failure probability the test gets, in (0, 1).

    Returns
    -------
    int
        The smallest ``n`` with ``1 - delta ** (1 / n) <= epsilon``.
    """
    _check_fraction("epsilon", epsilon)
    _check_fraction("delta", delta)
    return math.ceil(math.log(delta) / math.log1p(-epsilon))


def _check_fraction(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 < number < 1.0:
        raise ConfigError(name, value, "a number strictly between 0 and 1")
    return number


def _cp_upper(k: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bounds (level 1 - alpha) for ``k`` of ``n``."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=np.float64)
    out = np.ones_like(k)
    below = k < n
    out[below] = beta.ppf(1.0 - alpha, k[below] + 1.0, n - k[below])
    return out


def _cp_lower(k: int, n: int, alpha: float) -> float:
    from scipy.stats import beta

    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def check_calibratable(miner: Any) -> Any:
    """``miner`` when its threshold can be calibrated, else a ConfigError naming those that can."""
    if not (
        callable(getattr(miner, "hardness", None)) and callable(getattr(miner, "at_hardness", None))
    ):
        raise ConfigError(
            "hard_example_mining",
            getattr(miner, "name", miner),
            "a miner with a threshold to calibrate (Confidence, CrossEntropy, Margin, Entropy)",
        )
    return miner


def correct_answers(results: Any, y: Any) -> np.ndarray:
    """Which ``results`` (one per sample) equal the labels ``y``.

    Rows that are vectors (probabilities, scores) count as their argmax index; scalars as
    themselves. Pass your own ``correct`` to :meth:`JointInference.calibrate` for anything else.
    """
    y = np.asarray(y)
    try:
        rows = np.asarray(results)
    except ValueError:  # rows of different shapes (edge vectors, cloud labels)
        rows = np.empty(0, dtype=object)
    if rows.dtype == object or rows.shape[:1] != (len(results),):
        rows = np.array([np.argmax(r) if np.ndim(r) else r for r in results])
    elif rows.ndim >= 2:
        rows = rows.reshape(len(rows), -1).argmax(axis=1)
    if rows.shape != y.shape:
        raise JobError(
            f"{len(rows)} answers for {len(y)} labels: give one label per validation sample"
        )
    return np.asarray(rows == y, dtype=bool)


def calibrate_threshold(
    miner: Any,
    miner_inputs: Any,
    edge_correct: Any,
    cloud_correct: Any,
    *,
    target_offload: float | None = None,
    max_accuracy_loss: float | None = None,
    mode: str = "point",
    delta: float = 0.1,
    relative: bool = True,
    plugin_manager: Any = None,
    log: Any = None,
) -> Calibration:
    """Choose ``miner``'s threshold on validation data (the function form, usable offline).

    Parameters
    ----------
    miner
        The miner to calibrate: a name, Sedna's ``{"method", "param"}``, a class or an instance
        (its other parameters are kept). It must have ``hardness`` and ``at_hardness``
        (Confidence, CrossEntropy, Margin and Entropy do).
    miner_inputs
        What the miner judges for each validation sample (the edge's probabilities, usually).
    edge_correct, cloud_correct
        Per sample, whether the edge's and the cloud's answers are right (booleans).
    target_offload
        Target share of samples sent to the cloud, in (0, 1]: the largest offload not above it.
    max_accuracy_loss
        Largest accuracy loss allowed against cloud-only answers on the same samples: a fraction
        of cloud-only accuracy (``relative=True``, default: 0.01 keeps 99% of it) or accuracy
        points (``relative=False``).
    mode
        With ``max_accuracy_loss``: ``"point"`` (point estimate on the validation set) or
        ``"guaranteed"`` (holds with probability >= 1 - ``delta``; see the module's notes).
    delta
        Allowed probability that the guarantee fails (guaranteed mode).
    relative
        Whether ``max_accuracy_loss`` is a fraction of cloud-only accuracy (True) or accuracy
        points (False).
    plugin_manager
        The plugin manager that resolves a miner given by name (None: the default one).
    log
        A structlog logger for the warning when only full offload meets the target (None: no
        warning).

    Returns
    -------
    Calibration
        The calibrated miner (``miner``), its parameters and the figures it reached on the
        validation data.

    Raises
    ------
    ConfigError
        Bad targets, or a miner that cannot be calibrated.
    JobError
        Mismatched inputs, or too few samples for the guarantee (the message says how many).
    """
    from sedna_core.plugins import create_algorithm

    if (target_offload is None) == (max_accuracy_loss is None):
        raise ConfigError("target", None, "exactly one of target_offload and max_accuracy_loss")
    if mode not in MODES:
        raise ConfigError("mode", mode, " or ".join(repr(m) for m in MODES))
    if target_offload is not None and mode == "guaranteed":
        raise ConfigError(
            "mode", mode, "'point' with target_offload (the guarantee is on accuracy loss)"
        )
    miner = check_calibratable(
        create_algorithm("hard_example_mining", miner, plugin_manager=plugin_manager)
    )
    edge_ok = np.asarray(edge_correct, dtype=bool).reshape(-1)
    cloud_ok = np.asarray(cloud_correct, dtype=bool).reshape(-1)
    h = np.asarray(miner.hardness(miner_inputs), dtype=np.float64).reshape(-1)
    n = len(h)
    if not (len(edge_ok) == len(cloud_ok) == n):
        raise JobError(
            f"calibration needs one entry per sample: {n} miner inputs, {len(edge_ok)} edge and "
            f"{len(cloud_ok)} cloud verdicts"
        )
    if n == 0:
        raise JobError("calibration needs labelled validation samples; got none")

    table = _cut_table(h, edge_ok, cloud_ok, bool(getattr(miner, "invalid_is_hard", False)))
    cloud_acc = float(cloud_ok.mean())
    bound = allowed = None
    if target_offload is not None:
        target = "offload"
        budget = _check_fraction_or_one("target_offload", target_offload)
        within = np.flatnonzero(table.offload <= budget + 1e-12)
        j = int(within[0]) if within.size else len(table.cuts) - 1
        chosen_mode = None
    else:
        target = "accuracy_loss"
        chosen_mode = mode
        eps = _check_fraction("max_accuracy_loss", max_accuracy_loss)
        if mode == "point":
            limit = eps * cloud_acc if relative else eps
            ok = table.correct / n >= cloud_acc - limit - 1e-12
            j = _last_of_first_run(ok)
        else:
            dlt = _check_fraction("delta", delta)
            test_delta = dlt / 2 if relative else dlt
            # a loss relative to cloud accuracy: the cloud's accuracy at its lower bound
            allowed = eps * _cp_lower(int(cloud_ok.sum()), n, dlt / 2) if relative else eps
            need = min_validation_samples(allowed, test_delta) if 0 < allowed < 1 else math.inf
            if n < need:
                scope = "of cloud accuracy " if relative else ""
                raise JobError(
                    f"too little validation data for the guarantee: max_accuracy_loss={eps:g} "
                    f"{scope}at delta={dlt:g} needs at least {need} labelled samples "
                    f"(got {n}); give more, allow a larger loss or delta, or use mode='point'"
                )
            ucb = _cp_upper(table.harmful, n, test_delta)
            if ucb[0] > allowed:  # samples the miner cannot judge stay on the edge and harm
                raise JobError(
                    f"no threshold meets the guarantee: even with every judged sample sent to "
                    f"the cloud, the bound is {ucb[0]:.4g} > {allowed:.4g} (the miner cannot "
                    "judge some samples and keeps them on the edge); fix its input or set "
                    "invalid_is_hard=True"
                )
            j = _last_of_first_run(ucb <= allowed)
            bound = float(ucb[j])
    calibrated = miner.at_hardness(float(table.cuts[j]))
    if log is not None and target == "accuracy_loss" and table.offload[j] >= 1.0:
        log.warning(
            "calibration: only sending every sample to the cloud meets the target on this "
            "data; more validation data (or a looser target) allows a lower offload",
            samples=n,
        )
    return Calibration(
        miner=calibrated,
        params=calibrated.get_params(),
        target=target,
        mode=chosen_mode,
        samples=n,
        offload=float(table.offload[j]),
        accuracy=float(table.correct[j] / n),
        edge_accuracy=float(edge_ok.mean()),
        cloud_accuracy=cloud_acc,
        max_accuracy_loss=None if max_accuracy_loss is None else float(max_accuracy_loss),
        relative=relative,
        delta=float(delta) if chosen_mode == "guaranteed" else None,
        bound=bound,
        allowed=allowed,
    )


def _check_fraction_or_one(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 < number <= 1.0:
        raise ConfigError(name, value, "a share of samples in (0, 1]")
    return number


def _last_of_first_run(ok: np.ndarray) -> int:
    """Index before the first False (cuts are ordered from 'everything to the cloud'); the
    first cut always passes (it keeps nothing valid on the edge), so this is >= 0."""
    bad = np.flatnonzero(~ok)
    return len(ok) - 1 if not bad.size else max(int(bad[0]) - 1, 0)


@attrs.frozen
class _Table:
    """Per candidate cut (ascending): offload, joint correct answers, harmful samples."""

    cuts: np.ndarray
    offload: np.ndarray
    correct: np.ndarray
    harmful: np.ndarray


def _cut_table(
    h: np.ndarray, edge_ok: np.ndarray, cloud_ok: np.ndarray, invalid_hard: bool
) -> _Table:
    """Every distinct decision on the validation set, from 'all judged samples to the cloud'
    to 'none': cut ``c`` sends the samples with ``hardness > c``."""
    n = len(h)
    valid = ~np.isnan(h)
    # samples the miner cannot judge go where invalid_is_hard sends them, whatever the cut
    inv_cloud = int((~valid).sum()) if invalid_hard else 0
    inv_right = int(np.where(invalid_hard, cloud_ok, edge_ok)[~valid].sum())
    inv_harm = 0 if invalid_hard else int((~valid & ~edge_ok & cloud_ok).sum())
    hv, ev, cv = h[valid], edge_ok[valid], cloud_ok[valid]
    order = np.argsort(hv, kind="stable")
    hs = hv[order]
    gain = np.cumsum(ev[order].astype(np.int64) - cv[order].astype(np.int64))
    harm = np.cumsum((~ev[order] & cv[order]).astype(np.int64))
    # the last index of each group of equal hardness: a cut keeps whole groups on the edge
    ends = np.flatnonzero(np.r_[hs[1:] != hs[:-1], True]) if hs.size else np.zeros(0, int)
    kept = np.r_[0, ends + 1]
    uniq = hs[ends]
    # a cut halfway to the next distinct value: the same decisions here, robust to new data
    nxt = np.r_[uniq[1:], np.inf]
    mids = np.where(np.isfinite(nxt), uniq + (nxt - uniq) / 2, uniq)
    mids = np.where((mids > uniq) & (mids < nxt), mids, uniq)
    first = (uniq[0] if uniq.size else 0.0) - 1.0
    cuts = np.r_[first, mids]
    base_right = int(cv.sum())
    correct = np.r_[base_right, base_right + gain[ends]] + inv_right
    harmful = np.r_[0, harm[ends]] + inv_harm
    offload = (len(hv) - kept + inv_cloud) / n
    return _Table(cuts, offload.astype(np.float64), correct, harmful)


def evaluate_cut(
    miner: Any, miner_inputs: Any, edge_correct: Any, cloud_correct: Any
) -> tuple[float, float]:
    """``(offload, accuracy)`` of ``miner`` as it is on labelled data (for scoring a test set)."""
    hard = np.asarray(miner.mine(miner_inputs), dtype=bool)
    right = np.where(hard, np.asarray(cloud_correct, bool), np.asarray(edge_correct, bool))
    return float(hard.mean()), float(right.mean())
