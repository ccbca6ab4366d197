"""Demo section: federated learning on digits with non-IID clients, over real websockets.

An aggregation server and four clients on 127.0.0.1. Each client holds a Dirichlet(0.5)
share of scikit-learn's digits (seeded; some clients see few examples of some digits) and
trains a softmax regression for three local epochs per round; the server averages the updates
(FedAvg, weighted by samples). The global model's test accuracy is printed after every round,
against the same model trained centrally on all the data for as many epochs.

The helpers here (the partitioner, the model) are also what ``benchmarks/federated_accuracy.py``
uses, so the demo and the benchmark measure the same thing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

CLIENTS = 4
ROUNDS = 20
LOCAL_EPOCHS = 3
ALPHA = 0.5
SEED = 42


def load_digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits, pixels scaled to [0, 1], stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return x_tr, x_te, y_tr, y_te


def dirichlet_partition(
    labels: np.ndarray, n_parts: int, alpha: float, seed: int, min_size: int = 10
) -> list[np.ndarray]:
    """Indices per partition, as Flower's ``DirichletPartitioner`` (no self-balancing).

    For each class, proportions over the partitions are drawn from Dirichlet(alpha) and the
    class's shuffled indices are cut accordingly; the draw repeats until every partition holds
    at least ``min_size`` samples.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(1000):
        parts: list[list[int]] = [[] for _ in range(n_parts)]
        for c in classes:
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            share = rng.dirichlet([alpha] * n_parts)
            cuts = (np.cumsum(share) * len(idx)).astype(int)[:-1]
            for p, chunk in enumerate(np.split(idx, cuts)):
                parts[p].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [rng.permutation(np.array(p, dtype=np.int64)) for p in parts]
    raise RuntimeError("no Dirichlet draw gave every partition min_size samples")


class SoftmaxRegression:
    """Multinomial logistic regression trained by minibatch SGD, in numpy (deterministic).

    A Sedna-style estimator: ``train``, ``predict``, ``evaluate``, ``get_weights``,
    ``set_weights``; ``train`` runs ``epochs`` passes over ``(x, y)``.
    """

    def __init__(
        self,
        n_features: int = 64,
        n_classes: int = 10,
        lr: float = 0.5,
        epochs: int = 1,
        batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        self.w = np.zeros((n_features, n_classes), np.float32)
        self.b = np.zeros(n_classes, np.float32)
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.rng = np.random.default_rng(seed)

    def _proba(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.w + self.b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        x, y = train_data
        onehot = np.eye(self.w.shape[1], dtype=np.float32)[y]
        for _ in range(self.epochs):
            order = self.rng.permutation(len(x))
            for start in range(0, len(x), self.batch_size):
                i = order[start : start + self.batch_size]
                grad = self._proba(x[i]) - onehot[i]
                self.w -= self.lr * (x[i].T @ grad) / len(i)
                self.b -= self.lr * grad.mean(axis=0)
        p = self._proba(x)
        loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
        return {"loss": loss, "accuracy": float((p.argmax(axis=1) == y).mean())}

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._proba(np.asarray(x, dtype=np.float32)).argmax(axis=1)

    def evaluate(self, data: Any, **kwargs: Any) -> dict[str, float]:
        x, y = data
        return {"accuracy": float((self.predict(x) == y).mean())}

    def get_weights(self) -> list[np.ndarray]:
        return [self.w.copy(), self.b.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = np.array(weights[0], dtype=np.float32)
        self.b = np.array(weights[1], dtype=np.float32)


def accuracy(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    model = SoftmaxRegression()
    model.set_weights(weights)
    return float((model.predict(x) == y).mean())


def centralized(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> SoftmaxRegression:
    model = SoftmaxRegression(epochs=epochs, seed=seed)
    model.train((x, y))
    return model


async def federated_run(
    parts: list[tuple[np.ndarray, np.ndarray]],
    rounds: int,
    test: tuple[np.ndarray, np.ndarray],
    aggregation: Any = "FedAvg",
    local_epochs: int = LOCAL_EPOCHS,
    transforms: Any = None,
) -> list[float]:
    """Server and clients in this process on 127.0.0.1; test accuracy after every round."""
    from sedna_core.config.federated import FederatedConfig
    from sedna_core.jobs.federated import AggregationServer, FederatedLearning

    acc: list[float] = []
    server = AggregationServer(
        aggregation,
        exit_round=rounds,
        participants_count=len(parts),
        port=0,
        initial_weights=SoftmaxRegression().get_weights(),
        job_name="digits",
        transforms=transforms,
    )

    def on_round(record: dict[str, Any]) -> None:
        if "clients" in record and server.global_weights is not None:
            acc.append(accuracy(server.global_weights, *test))

    server.on_round = on_round
    await server.astart()
    try:
        clients = [
            FederatedLearning(
                SoftmaxRegression(epochs=local_epochs, seed=k),
                address=server.ws_url,
                client_id=f"edge-{k}",
                backend="custom",
                config=FederatedConfig.from_env({}, worker_name=f"edge-{k}"),
            )
            for k in range(len(parts))
        ]
        await asyncio.gather(*(c.atrain(p) for c, p in zip(clients, parts, strict=True)))
        result = await server.wait()
    finally:
        await server.astop()
    if result.status != "completed":
        raise RuntimeError(result.message)
    return acc


def run() -> None:
    from sedna_core.log import configure_logging

    configure_logging("WARNING", force=True)
    x_tr, x_te, y_tr, y_te = load_digits_split()
    parts_idx = dirichlet_partition(y_tr, CLIENTS, ALPHA, SEED)
    parts = [(x_tr[i], y_tr[i]) for i in parts_idx]
    print(f"{CLIENTS} clients, Dirichlet alpha={ALPHA} (seed {SEED}) over {len(y_tr)} digits:")
    for k, (_, y) in enumerate(parts):
        counts = np.bincount(y, minlength=10)
        print(f"  edge-{k}: {len(y):4d} samples, per digit {counts.tolist()}")
    acc = asyncio.run(federated_run(parts, ROUNDS, (x_te, y_te)))
    ref = centralized(x_tr, y_tr, epochs=ROUNDS * LOCAL_EPOCHS)
    ref_acc = float((ref.predict(x_te) == y_te).mean())
    print("round  test accuracy (global model)")
    for r, a in enumerate(acc, start=1):
        bar = "#" * round(a * 40)
        print(f"{r:5d}  {a:.3f}  {bar}")
    print(f"centralized reference ({ROUNDS * LOCAL_EPOCHS} epochs on all the data): {ref_acc:.3f}")
    print(
        f"federated after {ROUNDS} rounds: {acc[-1]:.3f} ({(acc[-1] - ref_acc) * 100:+.1f} points)"
    )
