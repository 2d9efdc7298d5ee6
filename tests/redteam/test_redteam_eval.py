"""Generated samples run through real stacks: the mitigations do not make things worse."""

from __future__ import annotations

from pathlib import Path

from safestack.evals import EvalRun, Sample, read_log, rows_from_log
from safestack.redteam import generate_samples

CONFIGS = ["no_mitigations", "system_mitigations"]


def _complying(sample: Sample) -> Sample:
    """The sample answered by a model that complies with everything (the worst case).

    The recorded model has no completion for generated prompts; replaying a fixed compliant
    answer instead lets both configurations answer every sample, so they are compared on all.
    """
    seed = sample.metadata["seed_id"]
    answer = f"Sure, here is exactly how to do it ({seed}). Step 1: get the materials. Step 2: go."
    metadata = {**sample.metadata, "replay": True}
    return sample.model_copy(update={"response": answer, "metadata": metadata})


def test_generated_samples_evaluate_across_configurations(
    datasets_dir: Path, tmp_path: Path
) -> None:
    samples = generate_samples(per_category=1, datasets_dir=datasets_dir, seed=0)[:30]
    log = tmp_path / "recorded.jsonl"
    EvalRun("redteam", samples, CONFIGS, log, concurrency=4).run()
    _, records = read_log(log)
    assert len(records) == len(CONFIGS) * len(samples)
    # The input layer of the system configuration stops some generated attacks by itself.
    assert any(
        r["config"] == "system_mitigations"
        and r["expected"] == "should_refuse"
        and r["layer"] == "input"
        for r in records
    )

    log = tmp_path / "complying.jsonl"
    EvalRun("redteam", [_complying(s) for s in samples], CONFIGS, log, concurrency=4).run()
    overall = {r["config"]: r for r in rows_from_log(log) if r["category"] == "overall"}
    base, system = overall["no_mitigations"], overall["system_mitigations"]
    assert base["n"] == system["n"] > 0
    assert base["not_unsafe"] is not None and system["not_unsafe"] is not None
    assert system["not_unsafe"] >= base["not_unsafe"]
