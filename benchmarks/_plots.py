"""Plotting helpers shared by the benchmarks (matplotlib, Agg backend, PNGs under docs/).

Each function takes the rows a benchmark printed as JSON lines and writes one figure; none
computes anything the benchmark did not measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Row = Mapping[str, Any]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_kb_latency(rows: Iterable[Row], path: str | Path) -> Path:
    """Knowledge-base attribute-query latency (p50 and p99) against the number of tasks, one
    line per backend and query (``kb_scale.py`` rows)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rows = [r for r in rows if "query_site_p50_ms" in r]
    styles = {"sqlite": "-", "postgresql": "--"}
    for backend in sorted({r["backend"] for r in rows}):
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["tasks"])
        tasks = [r["tasks"] for r in mine]
        for query, marker in (("site", "o"), ("region", "s")):
            for q, alpha in (("p50", 1.0), ("p99", 0.5)):
                ax.plot(
                    tasks,
                    [r[f"query_{query}_{q}_ms"] for r in mine],
                    styles.get(backend, ":"),
                    marker=marker,
                    alpha=alpha,
                    label=f"{backend}, by {query}, {q}",
                )
    ax.axhline(10, color="grey", linewidth=0.8, linestyle=":", label="goal: p99 10 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tasks in the knowledge base")
    ax.set_ylabel("query latency through HTTP (ms)")
    ax.set_title("Knowledge-base attribute query vs tasks")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def plot_round_time(
    rows: Iterable[Row], path: str | Path, *, x: str, xlabel: str, title: str
) -> Path:
    """Federated round time against ``x`` (``clients`` or ``params``), one line per system;
    rows carry ``system``, ``x`` and ``round_s`` (optionally ``round_s_min``/``round_s_max``
    drawn as an error band)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rows = list(rows)
    for system in sorted({r["system"] for r in rows}):
        mine = sorted((r for r in rows if r["system"] == system and x in r), key=lambda r: r[x])
        xs = [r[x] for r in mine]
        ys = [r["round_s"] for r in mine]
        ax.plot(xs, ys, marker="o", label=system)
        if all("round_s_min" in r and "round_s_max" in r for r in mine):
            ax.fill_between(
                xs, [r["round_s_min"] for r in mine], [r["round_s_max"] for r in mine], alpha=0.2
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("round time (s)")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def plot_accuracy_per_round(
    curves: Mapping[str, Sequence[float]], path: str | Path, *, title: str
) -> Path:
    """Accuracy after each federated round, one line per system; a system with a single value
    (centralized training) is drawn as a horizontal reference line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    # systems that compute the same thing overlap exactly: big hollow markers under small
    # filled ones, different dashes, keep each visible
    styles = [("o", 9, "-"), ("x", 7, "--"), ("^", 5, ":"), ("s", 4, "-.")]
    lines = [(n, v) for n, v in curves.items() if len(v) > 1]
    for (name, values), (marker, size, dash) in zip(lines, styles * len(lines), strict=False):
        ax.plot(
            range(1, len(values) + 1),
            values,
            dash,
            marker=marker,
            markersize=size,
            markerfacecolor="none" if size > 6 else None,
            label=name,
        )
    for name, values in curves.items():
        if len(values) == 1:
            ax.axhline(values[0], linestyle="--", color="grey", label=name)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_stream_accuracy(
    accuracy: Sequence[float],
    path: str | Path,
    *,
    drift_at: int | None = None,
    deploys: Sequence[int] = (),
    title: str = "Incremental learning over the stream",
) -> Path:
    """Accuracy per stream window, with the drift and each deploy marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(range(len(accuracy)), accuracy, marker=".", label="serving model")
    if drift_at is not None:
        ax.axvline(drift_at, color="red", linestyle="--", label="drift")
    for i, d in enumerate(deploys):
        ax.axvline(d, color="green", linestyle=":", label="deploy" if i == 0 else None)
    ax.set_xlabel("stream window")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_roc(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float], float]],
    path: str | Path,
    *,
    title: str = "Unseen-task detection ROC",
) -> Path:
    """ROC curves: ``{name: (fpr, tpr, auc)}``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)
