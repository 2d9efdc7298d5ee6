"""The numbers in the card are the numbers of the shipped files, re-measured here.

Each test scores the packaged heads on their named held-out set through the public inference
path, compares with ``metrics.json`` (written by ``safestack train``), and checks the floors the
project promises: beat the peer columns on the same rows, keep benign false positives under 5 %.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from safestack.classify import (
    EmbeddedOutputClassifier,
    EmbeddedPromptClassifier,
    Exchange,
    RefusalDetector,
)
from safestack.classify.embedded import HEADS_DIR, REFUSAL_LABELS
from safestack.classify.training.cache import text_key
from safestack.classify.training.metrics import binary_report
from safestack.classify.training.sources import load_exchanges, load_texts
from safestack.classify.training.train import prompt_report, refusal_report

TOLERANCE = 0.01  # ONNX vs PyTorch float noise may move a score across a threshold, rarely


@pytest.fixture(scope="module")
def metrics() -> dict:
    return json.loads((HEADS_DIR / "metrics.json").read_text())


def test_prompt_classifier_on_its_heldout_split(datasets_dir, metrics) -> None:
    keys = set(json.loads((HEADS_DIR / "heldout.json").read_text())["embedded-prompt"])
    records = [r for r in load_texts(datasets_dir) if text_key(r.text) in keys]
    assert len(records) == metrics["split"]["test"]
    clf = EmbeddedPromptClassifier()
    scores = clf.predict_proba([r.text for r in records])
    report = prompt_report(clf, scores, records, clf._policy.thresholds())
    recorded = metrics["prompt_heldout"]
    for key in ("f1", "auprc", "precision", "recall"):
        assert report["unsafe"][key] == pytest.approx(recorded["unsafe"][key], abs=TOLERANCE)
    assert report["attack"]["f1"] == pytest.approx(recorded["attack"]["f1"], abs=TOLERANCE)
    assert report["benign_fpr"] < 0.05
    assert report["unsafe"]["auprc"] > 0.9
    # Short harmless chat turns ("hi", "thanks", "go on"): the held-out part of the project's own
    # source. Before it was trained on, about 40 % of them were flagged.
    assert report["per_source"]["conversational_turns"]["fpr"] <= 0.05


def test_refusal_detector_beats_the_xstest_peer_labels(datasets_dir, metrics) -> None:
    held = [
        e for e in load_exchanges(datasets_dir, "xstest") if int(e.group.rsplit("-", 1)[1]) % 5 == 0
    ]
    assert len(held) == 450
    verdicts = RefusalDetector().classify([Exchange(e.prompt, e.response) for e in held])
    ours = refusal_report([str(e.refusal_label) for e in held], [str(v.label) for v in verdicts])
    recorded = metrics["refusal_heldout"]
    assert ours["refusal_f1"] == pytest.approx(recorded["safestack"]["refusal_f1"], abs=TOLERANCE)
    assert ours["accuracy_3way"] == pytest.approx(
        recorded["safestack"]["accuracy_3way"], abs=TOLERANCE
    )
    for peer in ("gpt4_label", "strmatch_label"):
        assert ours["refusal_f1"] > recorded[peer]["refusal_f1"]
        assert ours["accuracy_3way"] > recorded[peer]["accuracy_3way"]
    assert set(v.label for v in verdicts) <= set(REFUSAL_LABELS)


def test_output_judge_on_the_human_labelled_jailbreak_responses(datasets_dir, metrics) -> None:
    human = load_exchanges(datasets_dir, "jbb_human")
    judge = EmbeddedOutputClassifier()
    p = judge.predict_proba([Exchange(e.prompt, e.response) for e in human])
    ours = binary_report([bool(e.unsafe) for e in human], p)
    recorded = metrics["output_heldout"]
    assert ours["accuracy"] == pytest.approx(recorded["safestack"]["accuracy"], abs=TOLERANCE)
    # Better than Llama Guard, GPT-4-turbo, BERT and the string matchers on the same rows.
    for peer in ("llama_guard", "gpt_4_turbo", "BERT", "GCG", "TDC"):
        assert ours["accuracy"] > recorded[peer]["accuracy"], peer
    assert np.all((p >= 0) & (p <= 1))
