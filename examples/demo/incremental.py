"""Demo section: incremental learning on a stream with an abrupt drift.

A logistic regression is trained on the first 1,000 samples of a SEA stream whose concept
changes at sample 6,000 (label ``x0 + x1 > 8`` becomes ``> 7``). In service the Margin miner
picks hard examples (plus 1% at random), the ground truth plays the labelling oracle, candidates
are retrained on the recent labelled samples, run in shadow, and deployed only when the gate's
rule passes. The report shows prequential accuracy per window (before the drift, the dip, the
recovery) and every deployment with both models' scores.
"""

from __future__ import annotations

import numpy as np

from examples.demo import demo_workspace

N, DRIFT_AT, BOOTSTRAP, WINDOW = 12_000, 6_000, 1_000, 500
RULE = "accuracy_delta > 0.02 and paired_z > 2"


def run() -> None:
    from sklearn.linear_model import LogisticRegression

    from sedna_core.config.incremental import IncrementalConfig
    from sedna_core.jobs.incremental import (
        GateDecision,
        IncrementalLearning,
        LoopRunner,
        WindowStats,
        sea_drift_stream,
    )

    stream = sea_drift_stream(N, drift_at=DRIFT_AT, batch_size=50, seed=7)
    first = [next(stream) for _ in range(BOOTSTRAP // 50)]
    rejected = {"n": 0}

    def show_window(w: WindowStats) -> None:
        marker = "  <- drift" if w.start == DRIFT_AT else ""
        bar = "#" * round((w.accuracy - 0.85) * 200) if w.accuracy > 0.85 else ""
        print(
            f"  samples {w.start:>6}-{w.end:<6} accuracy {w.accuracy:.3f} {bar:<30}"
            f" labels {w.labels:>3}  model v{w.version}{marker}"
        )

    def show_decision(position: int, d: GateDecision) -> None:
        if not d.deployed:
            rejected["n"] += 1
            return
        v = d.values
        print(
            f"    deploy at {position}: v{d.candidate} replaces v{d.serving} "
            f"(shadow accuracy {v['accuracy']:.3f} vs {v['serving_accuracy']:.3f}, "
            f"wins {v['wins']:.0f} / losses {v['losses']:.0f}, paired_z {v['paired_z']:.2f})"
        )

    with demo_workspace("incremental") as ws:  # kept after the demo, for `status`
        job = IncrementalLearning(
            LogisticRegression(C=0.3),
            {"method": "Margin", "param": {"threshold": 0.75}},
            config=IncrementalConfig.from_env({}),
            workspace=ws,
            deploy_rule=RULE,
            min_eval_size=50,
            train_trigger="num_of_samples >= 25",
            mine_proba=True,
        )
        with job:
            runner = LoopRunner(
                job, explore=0.01, window=WINDOW, on_window=show_window, on_decision=show_decision
            )
            print(f"stream: SEA concepts, {N} samples, abrupt drift at {DRIFT_AT}; rule: {RULE}")
            runner.bootstrap(
                np.concatenate([b[0] for b in first]), np.concatenate([b[1] for b in first])
            )
            print(f"  model v1 trained on the first {BOOTSTRAP} labelled samples")
            report = runner.run(stream)
            s = report.summary(drift_at=DRIFT_AT)
            print(
                f"pre-drift accuracy {s['pre_drift_accuracy']:.3f}, lowest after the drift "
                f"{s['lowest_after_drift']:.3f}, back to 95% of pre-drift "
                f"{s['recovery_samples']} samples after the drift"
            )
            print(
                f"labels used: {s['label_share']:.1%} of samples (bootstrap included); "
                f"candidates {s['candidates'] - 1}, deployed {s['deploys'] - 1}, rejected "
                f"{rejected['n']}, false deploys {s['false_deploys']}"
            )
            print(f"decision log: {len(job.decisions())} entries in {ws}/decisions.jsonl")
            print(f"inspect it: sedna incremental status --workspace {ws}")


if __name__ == "__main__":
    run()
