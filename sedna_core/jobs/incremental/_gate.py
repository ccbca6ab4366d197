"""The deploy gate: a candidate model replaces the serving one only if a rule passes.

Both models are scored on the same held-out data. The rule is Sedna's condition text, read
against these values (``m`` is each metric the rule or ``metrics`` names, a scikit-learn metric
name such as ``accuracy``, ``f1_macro``, ``precision`` or ``neg_log_loss``):

``m``              the candidate's score
``m_delta``        candidate minus serving
``serving_m``      the serving model's score
``n_eval``         held-out samples
``wins``/``losses`` samples only the candidate / only the serving model gets right (classification)
``paired_z``       ``(wins - losses) / sqrt(wins + losses)``: McNemar's statistic, so a rule can
                   ask for an improvement that is unlikely to be noise (``paired_z > 2``)

e.g. ``"precision_delta > 0.1"`` (Sedna's CRD example) or ``"accuracy_delta > 0.01 and
paired_z > 2"``. A callable ``rule(candidate_scores, serving_scores) -> bool`` is accepted too.
Without a serving model only the rule's absolute comparisons (``m``, ``n_eval``) apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from sedna_core.backends import compute_metrics, infer_task, proba_to_labels
from sedna_core.datasources import as_xy
from sedna_core.errors import BackendError, ConfigError
from sedna_core.jobs.incremental._conditions import Condition, parse_condition

__all__ = ["DeployGate", "GateDecision", "GateResult", "Rule"]

#: a condition (text, CRD mapping or parsed) or ``rule(candidate_scores, serving_scores)``
Rule = (
    str | Mapping[str, Any] | Condition | Callable[[Mapping[str, float], Mapping[str, float]], bool]
)

_PAIRED = ("n_eval", "wins", "losses", "paired_z")


@attrs.frozen
class GateDecision:
    """One decision, as recorded in the decision log (``decisions.jsonl``).

    ``kind`` is ``"gate"`` (a candidate judged), ``"hot_update"`` (a model pushed from outside),
    ``"deploy"`` (deployed on request, no gate), or ``"rollback"``.
    """

    kind: str
    deployed: bool
    candidate: str | None
    serving: str | None
    rule: str
    reason: str
    candidate_scores: dict[str, float] = attrs.field(factory=dict)
    serving_scores: dict[str, float] = attrs.field(factory=dict)
    values: dict[str, float] = attrs.field(factory=dict)
    n_eval: int = 0
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> GateDecision:
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})


@attrs.frozen
class GateResult:
    """What :meth:`DeployGate.evaluate` found."""

    passed: bool
    reason: str
    candidate_scores: dict[str, float] = attrs.field(factory=dict)
    serving_scores: dict[str, float] = attrs.field(factory=dict)
    values: dict[str, float] = attrs.field(factory=dict)
    n_eval: int = 0


@attrs.frozen
class _Scored:
    scores: dict[str, float]
    correct: np.ndarray | None


class DeployGate:
    """Decides whether a candidate replaces the serving model.

    Parameters
    ----------
    rule
        Condition text such as ``"accuracy_delta > 0"`` or ``"precision_delta > 0.1"``, Sedna's
        CRD mapping, or a callable ``(candidate_scores, serving_scores) -> bool``.
    metrics
        Metrics to compute besides those the rule names (scikit-learn names or callables
        ``f(y_true, y_pred)``); with a callable rule and no metrics: ``accuracy``.
    min_eval_size
        Fewest held-out samples a decision may rest on; fewer means the candidate is rejected.
    """

    def __init__(
        self,
        rule: Rule = "accuracy_delta > 0",
        *,
        metrics: Sequence[str | Callable[..., Any]] | None = None,
        min_eval_size: int = 1,
    ) -> None:
        if min_eval_size < 1:
            raise ConfigError("min_eval_size", min_eval_size, "an integer of at least 1")
        self.min_eval_size = int(min_eval_size)
        if callable(rule) and not isinstance(rule, Condition):
            self.rule: Condition | Callable[..., bool] = rule
            self.rule_text = getattr(rule, "__name__", "callable rule")
            names: list[str | Callable[..., Any]] = []
        else:
            self.rule = parse_condition(rule, what="deploy rule")
            self.rule_text = self.rule.text
            names = [n for n in (self._metric_of(n) for n in self.rule.names) if n]
        for m in metrics or ():
            if m not in names:
                names.append(m)
        self.metrics: list[str | Callable[..., Any]] = names or ["accuracy"]
        _check_metrics([m for m in self.metrics if isinstance(m, str)])

    @staticmethod
    def _metric_of(name: str) -> str | None:
        if name in _PAIRED:
            return None
        if name.startswith("serving_"):
            name = name[len("serving_") :]
        return name.removesuffix("_delta")

    def __repr__(self) -> str:
        return f"DeployGate(rule={self.rule_text!r}, min_eval_size={self.min_eval_size})"

    # -- scoring ----------------------------------------------------------------------------

    def score(self, model: Any, data: Any) -> dict[str, float]:
        """The gate's metrics for one model (a backend) on labelled ``data``."""
        return self._score(model, *self._xy(data)).scores

    def _xy(self, data: Any) -> tuple[Any, np.ndarray]:
        x, y = as_xy(data)
        if y is None:
            raise BackendError("the deploy gate needs labelled held-out data (x, y)")
        return x, np.asarray(y)

    def _score(self, model: Any, x: Any, y: np.ndarray) -> _Scored:
        task = infer_task(y)
        pred = np.asarray(model.predict(x))
        if task == "classification" and pred.ndim == 2 and pred.shape[1] > 1 and y.ndim == 1:
            pred = proba_to_labels(pred)  # a model whose predict gives probabilities
        proba = (lambda: model.predict_proba(x)) if hasattr(model, "predict_proba") else None
        scores = compute_metrics(y, pred, proba=proba, metrics=self.metrics, task=task)
        correct = None
        if task == "classification" and pred.shape[:1] == y.shape[:1]:
            truth = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y))
            correct = pred.reshape(len(pred)) == truth
        return _Scored(scores, correct)

    # -- deciding ---------------------------------------------------------------------------

    def evaluate(self, candidate: Any, serving: Any | None, data: Any) -> GateResult:
        """Score both models (backends) on ``data`` and apply the rule.

        A candidate that cannot predict raises (the caller rejects it); a serving model that
        cannot predict (e.g. never fitted) counts as no serving model.
        """
        x, y = self._xy(data)
        n = len(y)
        if n < self.min_eval_size:
            return GateResult(
                False,
                f"held-out data has {n} samples; the gate needs at least {self.min_eval_size}",
                n_eval=n,
            )
        cand = self._score(candidate, x, y)
        serv, note = None, "no serving model"
        if serving is not None:
            try:
                serv = self._score(serving, x, y)
            except Exception as exc:
                note = f"the serving model cannot predict ({type(exc).__name__}: {exc})"
        values = self._values(cand, serv, n)
        if serv is None:
            passed = self._first_model_passes(values)
            verdict = "passes" if passed else "fails"
            return GateResult(
                passed,
                f"{note}; candidate {verdict} the rule's absolute terms",
                cand.scores,
                {},
                values,
                n,
            )
        if isinstance(self.rule, Condition):
            passed = self.rule.evaluate(values)
        else:
            passed = bool(self.rule(dict(cand.scores), dict(serv.scores)))
        reason = f"rule {self.rule_text!r} {'passed' if passed else 'failed'}"
        return GateResult(passed, reason, cand.scores, serv.scores, values, n)

    def _values(self, cand: _Scored, serv: _Scored | None, n: int) -> dict[str, float]:
        values: dict[str, float] = {"n_eval": float(n)}
        for name, score in cand.scores.items():
            values[name] = score
            if serv is not None:
                values[f"serving_{name}"] = serv.scores[name]
                values[f"{name}_delta"] = score - serv.scores[name]
        if serv is not None and cand.correct is not None and serv.correct is not None:
            wins = int(np.sum(cand.correct & ~serv.correct))
            losses = int(np.sum(~cand.correct & serv.correct))
            values["wins"], values["losses"] = float(wins), float(losses)
            values["paired_z"] = (
                (wins - losses) / math.sqrt(wins + losses) if wins + losses else 0.0
            )
        return values

    def _first_model_passes(self, values: Mapping[str, float]) -> bool:
        if not isinstance(self.rule, Condition):
            return True

        def absolute(name: str) -> bool:
            return not (
                name.endswith("_delta")
                or name.startswith("serving_")
                or name in ("wins", "losses", "paired_z")
            )

        return any(
            all(c.evaluate(values) for c in group if absolute(c.name)) for group in self.rule.groups
        )


def _check_metrics(names: list[str]) -> None:
    """Fail at construction, not at the first decision, on a metric name nobody knows."""
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    for name in names:
        try:
            compute_metrics(y, y, proba=proba, metrics=[name])
        except BackendError as exc:
            raise ConfigError("deploy rule metric", name, str(exc)) from None
        except (ValueError, TypeError):
            pass  # known, but not computable on this toy input (e.g. a regression-only metric)
