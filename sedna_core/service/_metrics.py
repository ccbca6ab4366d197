"""A small Prometheus text-format registry (no extra dependency).

Counters, gauges and histograms with fixed label names; :meth:`MetricsRegistry.render` writes the
text exposition format 0.0.4 that Prometheus scrapes. Thread-safe, so a server's background
threads may record too.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence

__all__ = [
    "DEFAULT_LATENCY_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labels = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if tuple(labels) != self.labels and set(labels) != set(self.labels):
            raise ValueError(f"metric {self.name} takes labels {self.labels}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.labels)

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> Iterable[str]:  # pragma: no cover - overridden
        raise NotImplementedError


class Counter(_Metric):
    """A value that only goes up."""

    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter cannot decrease")
        self._add(self._key(labels), amount)

    def series(self, **labels: str) -> _CounterChild:
        """The series for these label values, to count on without naming them each time."""
        return _CounterChild(self, self._key(labels))

    def _add(self, key: tuple[str, ...], amount: float) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> Iterable[str]:
        yield from self._header()
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labels:
            items = [((), 0.0)]
        for key, value in items:
            yield f"{self.name}{_format_labels(self.labels, key)} {_format_value(value)}"


class Gauge(Counter):
    """A value that goes up and down."""

    kind = "gauge"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._add(self._key(labels), amount)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def series(self, **labels: str) -> _GaugeChild:  # type: ignore[override]
        """The series for these label values, to change without naming them each time."""
        return _GaugeChild(self, self._key(labels))

    def _set(self, key: tuple[str, ...], value: float) -> None:
        with self._lock:
            self._values[key] = float(value)

    def set(self, value: float, **labels: str) -> None:
        self._set(self._key(labels), value)


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        # per series: observations per bucket (not cumulative: one increment per observation,
        # cumulated when rendered), sum, count
        self._data: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, **labels: str) -> None:
        self._observe(self._key(labels), value)

    def series(self, **labels: str) -> _HistogramChild:
        """The series for these label values, to observe without naming them each time."""
        return _HistogramChild(self, self._key(labels))

    def _observe(self, key: tuple[str, ...], value: float) -> None:
        buckets = self.buckets
        i = bisect.bisect_left(buckets, value)  # the smallest bound >= value
        with self._lock:
            row = self._data.get(key)
            if row is None:
                row = self._data[key] = [0.0] * (len(buckets) + 2)
            if i < len(buckets) and value <= buckets[i]:  # NaN falls in no bucket
                row[i] += 1
            row[-2] += value
            row[-1] += 1

    def count(self, **labels: str) -> int:
        with self._lock:
            row = self._data.get(self._key(labels))
            return int(row[-1]) if row else 0

    def render(self) -> Iterable[str]:
        yield from self._header()
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._data.items())
        for key, row in items:
            cumulative = 0.0
            for bound, n in zip(self.buckets, row, strict=False):
                cumulative += n
                le = f'le="{_format_value(bound)}"'
                yield (
                    f"{self.name}_bucket{_format_labels(self.labels, key, le)} "
                    f"{_format_value(cumulative)}"
                )
            inf = 'le="+Inf"'
            count = _format_value(row[-1])
            yield f"{self.name}_bucket{_format_labels(self.labels, key, inf)} {count}"
            yield f"{self.name}_sum{_format_labels(self.labels, key)} {_format_value(row[-2])}"
            yield f"{self.name}_count{_format_labels(self.labels, key)} {count}"


class _CounterChild:
    """One series of a counter (from :meth:`Counter.series`)."""

    __slots__ = ("_key", "_metric")

    def __init__(self, metric: Counter, key: tuple[str, ...]) -> None:
        self._metric = metric
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter cannot decrease")
        self._metric._add(self._key, amount)


class _GaugeChild:
    """One series of a gauge (from :meth:`Gauge.series`)."""

    __slots__ = ("_key", "_metric")

    def __init__(self, metric: Gauge, key: tuple[str, ...]) -> None:
        self._metric = metric
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        self._metric._add(self._key, amount)

    def dec(self, amount: float = 1.0) -> None:
        self._metric._add(self._key, -amount)

    def set(self, value: float) -> None:
        self._metric._set(self._key, value)


class _HistogramChild:
    """One series of a histogram (from :meth:`Histogram.series`)."""

    __slots__ = ("_key", "_metric")

    def __init__(self, metric: Histogram, key: tuple[str, ...]) -> None:
        self._metric = metric
        self._key = key

    def observe(self, value: float) -> None:
        self._metric._observe(self._key, value)


class MetricsRegistry:
    """The metrics one service exposes on ``/metrics``.

    Servers built on :func:`~sedna_core.service.create_app` find theirs at
    ``app[METRICS_KEY]`` and may add their own::

        rounds = app[METRICS_KEY].counter("sedna_fl_rounds_total", "Rounds closed", ["outcome"])
        rounds.inc(outcome="quorum")
    """

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric: _Metric) -> _Metric:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None:
                if type(existing) is not type(metric) or existing.labels != metric.labels:
                    raise ValueError(f"metric {metric.name} already registered differently")
                return existing
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        """Register (or get the already registered) counter ``name``."""
        return self._add(Counter(name, help, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        """Register (or get the already registered) gauge ``name``."""
        return self._add(Gauge(name, help, labels))  # type: ignore[return-value]

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
    ) -> Histogram:
        """Register (or get the already registered) histogram ``name``."""
        return self._add(Histogram(name, help, labels, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        """The whole registry in Prometheus text format."""
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for metric in metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
