"""Lifelong learning: tasks defined by data attributes, a knowledge base on 127.0.0.1, task
allocation and unseen-task detection at inference.

The data: weather-comfort readings from (season, city) sites. Each site has its own climate and
its own rule for "comfortable" (a concept shift between tasks), so one model for everything does
poorly while a model per site does well. Training sees 6 of the 9 sites; the other 3 are unseen
tasks at inference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from examples.demo import demo_workspace

SEASONS = ("summer", "winter", "spring")
CITIES = ("berlin", "paris", "rome")
FEATURES = ("temperature", "humidity", "wind", "pressure", "cloud", "rain")
#: the sites training sees; the other three are unseen tasks
TRAIN_SITES = (
    ("summer", "berlin"),
    ("summer", "paris"),
    ("winter", "berlin"),
    ("winter", "rome"),
    ("spring", "paris"),
    ("spring", "rome"),
)


def make_weather_tasks(
    seed: int = 0, n_per_site: int = 200, sites: Sequence[tuple[str, str]] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(table, y)``: a column table with ``season``, ``city`` and six numeric readings.

    Each site's climate (feature means) and comfort rule (a linear boundary through its own
    mean) are fixed by a separate seed, so all calls agree on what a site is; ``seed`` draws the
    samples. Labels have 3% noise.
    """
    sites = list(sites or [(s, c) for s in SEASONS for c in CITIES])
    world = np.random.default_rng(1234)
    climate = {
        (s, c): (world.normal(0.0, 1.5, len(FEATURES)), world.normal(0.0, 1.0, len(FEATURES)))
        for s in SEASONS
        for c in CITIES
    }
    rng = np.random.default_rng(seed)
    xs, ys, seasons, cities = [], [], [], []
    for site in sites:
        mean, rule = climate[site]
        x = rng.normal(mean, 1.0, (n_per_site, len(FEATURES)))
        y = ((x - mean) @ rule > 0).astype(np.int64)
        noise = rng.random(n_per_site) < 0.03
        y[noise] = 1 - y[noise]
        xs.append(x)
        ys.append(y)
        seasons += [site[0]] * n_per_site
        cities += [site[1]] * n_per_site
    x = np.vstack(xs)
    table: dict[str, np.ndarray] = {"season": np.array(seasons), "city": np.array(cities)}
    for i, name in enumerate(FEATURES):
        table[name] = x[:, i]
    return table, np.concatenate(ys)


def _sites(table: dict[str, np.ndarray]) -> np.ndarray:
    return np.char.add(np.char.add(table["season"], "_"), table["city"])


def run() -> None:
    from sklearn.linear_model import LogisticRegression

    from sedna_core.jobs.lifelong import LifelongLearning
    from sedna_core.knowledge_base import KnowledgeBaseClient, KnowledgeBaseServer
    from sedna_core.log import configure_logging

    configure_logging()

    definition = {"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["season", "city"]}}
    x_train, y_train = make_weather_tasks(seed=0, n_per_site=200, sites=TRAIN_SITES)
    x_test, y_test = make_weather_tasks(seed=1, n_per_site=100)
    truly_unseen = np.array(
        [(s, c) not in TRAIN_SITES for s, c in zip(x_test["season"], x_test["city"], strict=True)]
    )
    with demo_workspace("lifelong") as tmp:  # kept after the demo
        kb = KnowledgeBaseServer(data_dir=f"{tmp}/kb", port=0)
        kb.start_in_background()
        print(f"knowledge base on {kb.url} (SQLite + artifact store in {tmp}/kb)")
        cloud = LifelongLearning(
            estimator=LogisticRegression(max_iter=1000),
            task_definition=definition,
            kb_server=kb.url,
            output_url=f"{tmp}/cloud",
        )
        start = time.perf_counter()
        cloud.train((x_train, y_train))
        index = cloud.task_index()
        groups = index["seen_task"]["task_groups"]
        print(
            f"trained {len(groups)} task models in {time.perf_counter() - start:.1f} s; "
            f"task index v{index['version']} published: {', '.join(g['entry'] for g in groups)}"
        )

        # the edge: a separate job that knows only the KB's address
        edge = LifelongLearning(
            estimator=LogisticRegression,
            task_definition=definition,
            kb_server=kb.url,
            output_url=f"{tmp}/edge",
        )
        start = time.perf_counter()
        result, is_unseen, _ = edge.inference(x_test)
        elapsed = time.perf_counter() - start
        single = LogisticRegression(max_iter=1000).fit(
            np.column_stack([x_train[f] for f in FEATURES]), y_train
        )
        x_num = np.column_stack([x_test[f] for f in FEATURES])
        single_pred = single.predict(x_num)
        sites = _sites(x_test)
        print(f"\ninference on {len(y_test)} rows in {elapsed * 1000:.0f} ms")
        print(
            f"{'site':<16}{'seen':>6}{'per-task model':>16}{'one model':>11}{'flagged unseen':>16}"
        )
        for site in sorted(set(sites.tolist())):
            rows = sites == site
            seen = not truly_unseen[rows][0]
            print(
                f"{site:<16}{'yes' if seen else 'NO':>6}"
                f"{(result[rows] == y_test[rows]).mean():>16.2f}"
                f"{(single_pred[rows] == y_test[rows]).mean():>11.2f}"
                f"{is_unseen[rows].mean():>16.0%}"
            )
        seen_rows = ~truly_unseen
        tp = int((is_unseen & truly_unseen).sum())
        precision = tp / max(1, int(is_unseen.sum()))
        recall = tp / max(1, int(truly_unseen.sum()))
        print(
            f"seen sites: per-task models {(result[seen_rows] == y_test[seen_rows]).mean():.3f}, "
            f"one model {(single_pred[seen_rows] == y_test[seen_rows]).mean():.3f} accuracy"
        )
        print(f"unseen-task detection: precision {precision:.2f}, recall {recall:.2f}")

        report = cloud.evaluate((x_test, y_test), operator="<", model_threshold=0.8)
        withdrawn = report["dropped_tasks"] or "none"
        print(f"\nevaluation gate (withdraw a task scoring < 0.8): withdrawn {withdrawn}")
        with KnowledgeBaseClient(kb.url) as client:
            winter = client.query({"season": "winter"})
        print(
            "KB query season=winter: "
            + ", ".join(
                f"{t['task']} ({'deployed' if t['deployed'] else 'withdrawn'})" for t in winter
            )
        )

        kb.stop_background()
        result_offline, _, _ = edge.inference(x_test)
        print(
            "KB stopped: the edge still answers from its cache "
            f"(same results: {bool((result_offline == result).all())})"
        )
        kb = KnowledgeBaseServer(data_dir=f"{tmp}/kb", port=kb.port)
        kb.start_in_background()
        new_site = ("winter", "paris")
        x_new, y_new = make_weather_tasks(seed=2, n_per_site=200, sites=[new_site])
        cloud.update((x_new, y_new))
        latest = cloud.task_index()
        name = "_".join(new_site)
        print(
            f"\nupdate with samples of {name}: knowledge v{latest['version']} has "
            f"{len(latest['seen_task']['task_groups'])} task models"
        )
        rows = sites == name
        edge._storage.cache.refresh()  # type: ignore[union-attr]  # do not wait for the poll
        result2, unseen2, _ = edge.inference(x_test)
        accuracy = (result2[rows] == y_test[rows]).mean()
        flagged = unseen2[rows].mean()
        print(f"{name} at the edge now: accuracy {accuracy:.2f}, flagged unseen {flagged:.0%}")
        edge.close()
        cloud.close()
        kb.stop_background()


if __name__ == "__main__":
    run()
