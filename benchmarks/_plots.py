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
    panels: Sequence[Mapping[str, Any]], path: str | Path, *, ylabel: str = "accuracy"
) -> Path:
    """Accuracy over the stream, one panel per scenario, with the drift and each deploy marked
    (``incremental.py``). Each panel: ``title``, ``positions`` (the stream position each value
    ends at), ``curves`` ``{name: values}`` (the first is the system whose ``deploys`` /
    ``false_deploys`` stream positions are marked), ``drifts`` and ``drift_width`` (a gradual
    drift's transition is shaded)."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8.0, 2.9 * len(panels)), sharex=True, squeeze=False
    )
    styles = [
        {"color": "tab:blue", "linewidth": 1.8, "linestyle": "-"},
        {"color": "tab:orange", "linewidth": 1.1, "linestyle": "--"},
        {"color": "dimgrey", "linewidth": 1.1, "linestyle": ":"},
    ]
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        x = panel["positions"]
        for (name, values), style in zip(panel["curves"].items(), styles * 3, strict=False):
            ax.plot(x[: len(values)], values, label=name, **style)
        width = panel.get("drift_width", 1)
        for i, d in enumerate(panel["drifts"]):
            ax.axvline(d, color="red", linestyle="--", linewidth=1.0,
                       label="drift (shaded: a gradual one's transition)" if i == 0
                       else None)  # fmt: skip
            if width > 1:
                ax.axvspan(d - width / 2, d + width / 2, color="red", alpha=0.08)
        false = set(panel.get("false_deploys", ()))
        good = [p for p in panel["deploys"] if p not in false]
        # deploys as triangles along the top, in a margin kept free of the curves
        ax.margins(y=0.18)
        trans = ax.get_xaxis_transform()  # x in stream positions, y in axes fraction
        ax.plot(good, [0.95] * len(good), "v", color="green", markersize=7, transform=trans,
                label="deploy of ours")  # fmt: skip
        if false:
            ax.plot(sorted(false), [0.95] * len(false), "v", color="crimson", markersize=8,
                    transform=trans, label="false deploy")  # fmt: skip
        ax.set_title(
            f"{panel['title']}, {len(panel['deploys'])} deploys ({len(false)} false)", fontsize=9
        )
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(True, alpha=0.3)
    # one legend for all panels (every label once: a false deploy appears if any panel had one)
    entries: dict[str, Any] = {}
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="upper center", ncol=3, fontsize=8,
               frameon=False)  # fmt: skip
    axes[-1, 0].set_xlabel("stream position (samples)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    fig.savefig(Path(path), dpi=110)
    _pyplot().close(fig)
    return Path(path)


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


def plot_accuracy_vs_epsilon(rows: Iterable[Row], path: str | Path) -> Path:
    """Final accuracy against ε (log scale), one panel per client count, ours and Flower per DP
    variant (mean over noise seeds, bars from the lowest to the highest seed), each point
    labelled with its ε; clipping without noise (ε = ∞) as a horizontal line
    (``federated_dp.py`` rows)."""
    plt = _pyplot()
    rows = [r for r in rows if r.get("bench") == "federated_dp"]
    totals = sorted({r["clients"] for r in rows})
    fig, axes = plt.subplots(1, len(totals), figsize=(6.0 * len(totals), 4.4), squeeze=False)
    colours = {"ServerSide": "tab:blue", "ClientSide": "tab:orange"}
    for ax, total in zip(axes[0], totals, strict=True):
        mine = [r for r in rows if r["clients"] == total]
        for variant in sorted({r["variant"] for r in mine}):
            short = "ServerSide" if "ServerSide" in variant else "ClientSide"
            colour = colours[short]
            series = sorted(
                (r for r in mine if r["variant"] == variant and r["epsilon"] != "inf"),
                key=lambda r: r["epsilon"],
            )
            for who, key, style in (("ours", "ours", "o-"), ("Flower", "flower", "s--")):
                eps = [r["epsilon"] for r in series]
                mean = [r[f"{key}_mean"] for r in series]
                lo = [m - min(r[f"{key}_accuracy"]) for m, r in zip(mean, series, strict=True)]
                hi = [max(r[f"{key}_accuracy"]) - m for m, r in zip(mean, series, strict=True)]
                ax.errorbar(eps, mean, yerr=[lo, hi], fmt=style, color=colour, capsize=3,
                            mfc="white" if who == "Flower" else colour, markersize=5,
                            label=f"{who}, {short} fixed clipping")  # fmt: skip
            same = [r for r in series if "ours_same_noise_accuracy" in r]
            if same:
                ax.plot([r["epsilon"] for r in same],
                        [sum(r["ours_same_noise_accuracy"]) / len(r["ours_same_noise_accuracy"])
                         for r in same], "x", color="black", markersize=7,
                        label=f"ours with Flower's noise draws, {short}")  # fmt: skip
            for r in series if short == "ServerSide" else []:
                ax.annotate(f"ε={r['epsilon']:.3g} (z={r['noise_multiplier']:g})",
                            (r["epsilon"], r["ours_mean"]), textcoords="offset points",
                            xytext=(7, 4), ha="left", fontsize=7)  # fmt: skip
            for r in mine:
                if r["variant"] == variant and r["epsilon"] == "inf":
                    ax.axhline(r["ours_mean"], color=colour, linestyle=":", linewidth=1,
                               label=f"{short} clipping, no noise (ε = ∞)")  # fmt: skip
        q = mine[0]["sampling_rate"] if mine else 1.0
        per = mine[0]["per_round"] if mine else 0
        ax.set_xscale("log")
        rounds = mine[0].get("rounds", "?") if mine else "?"
        ax.set_xlabel(f"ε (δ = 1e-5, {rounds} rounds, RDP accountant)")
        ax.set_ylabel("final test accuracy")
        ax.set_title(f"{total} clients, {per} per round (q = {q:g}), C = 1", fontsize=9)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=6.5, loc="lower right")
    return _save(fig, path)
