"""Rebuild the embedded heads from the public datasets, and measure them on held-out data.

Reproducible by construction: fixed seeds, a split fixed by seed and grouped by source item
(``split.py``), and heads that are fitted on the training side only — the shipped artefacts never
saw the test side, so the numbers in the card are the numbers of the files that ship.

Held-out sets, by classifier:

* ``embedded-prompt`` — the grouped 20 % test side of every text source (seed 0), plus
  leave-one-source-out: for each source, heads trained on all *other* sources score it.
* ``refusal`` — XSTest prompts ``v2-N`` with N divisible by 5, all five models' completions.
* ``embedded-output`` — the 100 human-labelled JailbreakBench responses (never trained on; any
  training response within cosine 0.9 of one of them is dropped).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safestack.classify._embedding import MiniLMEmbedder, windows
from safestack.classify._protocol import Exchange
from safestack.classify.embedded import (
    HEADS_DIR,
    MANIFEST,
    REFUSAL_LABELS,
    EmbeddedOutputClassifier,
    EmbeddedPromptClassifier,
    HeadOptions,
    RefusalDetector,
)
from safestack.classify.training.cache import EmbeddingCache, text_key
from safestack.classify.training.metrics import binary_report, multiclass_report
from safestack.classify.training.sources import (
    SOURCES,
    LabelledText,
    load_exchanges,
    load_texts,
)
from safestack.classify.training.split import grouped_split, near_duplicate_components
from safestack.policy import Policy, default_policy, load_policy

__all__ = ["TrainConfig", "TrainReport", "prompt_report", "refusal_report", "train_all"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)

PEER_REFUSAL_COLUMNS = {"gpteval": "gpt4_label", "streval": "strmatch_label"}
PEER_JUDGE_COLUMNS = ("TDC", "GCG", "BERT", "llama_guard", "gpt_4_turbo", "gpt_4")


@dataclass(frozen=True)
class TrainConfig:
    datasets: Path
    out_dir: Path = HEADS_DIR
    seed: int = 0
    test_fraction: float = 0.2
    near_duplicate: float = 0.9
    leave_one_out: bool = True
    sources: tuple[str, ...] | None = None  # text sources to use (default: all)
    policy_file: Path | None = None  # default: the shipped policy
    version: str = "1.0"
    options: HeadOptions = field(default_factory=HeadOptions)


@dataclass
class TrainReport:
    """Everything measured, as plain data (it is written to ``metrics.json`` and the card)."""

    metrics: dict[str, Any]
    files: dict[str, str]  # file name → sha256


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _policy_examples(policy: Policy) -> list[LabelledText]:
    """The written policy's own labelled examples, as training data.

    They are the only data for categories no public set covers (graphic violence, extremism,
    defamation), and they are what the policy's authors meant: training on them makes an edit to
    the policy an edit to the classifier.
    """
    out = []
    for cat in policy.categories:
        attack = cat.id == "prompt_attack"
        for i, text in enumerate(cat.examples.disallowed):
            out.append(
                LabelledText(
                    text,
                    "policy_examples",
                    f"policy:{cat.id}:d{i}",
                    None if attack else True,
                    cat.id,
                    attack,
                )
            )
        for i, text in enumerate(cat.examples.allowed):
            out.append(LabelledText(text, "policy_examples", f"policy:{cat.id}:a{i}", False, None))
    return out


def prompt_report(
    clf: EmbeddedPromptClassifier,
    scores: NDArray[np.float32],
    records: list[LabelledText],
    thresholds: dict[str, float],
) -> dict[str, Any]:
    """Quality of the prompt classifier on ``records``, given its scores for them.

    ``scores`` has one column per ``clf.categories``; the largest content-category score is
    P(unsafe) by construction, and the last column is the prompt-attack score.
    """
    p_unsafe = scores[:, :-1].max(axis=1)
    p_attack = scores[:, -1]
    harm = np.array([r.unsafe is not None for r in records])
    unsafe = np.array([bool(r.unsafe) for r in records])
    source = np.array([r.source for r in records])
    overall = binary_report(unsafe[harm], p_unsafe[harm], threshold=0.5)
    benign = harm & ~unsafe
    report: dict[str, Any] = {
        "unsafe": overall,
        "benign_fpr": binary_report(unsafe[benign], p_unsafe[benign])["fpr"],
        "xstest_safe_fpr": binary_report(
            unsafe[source == "xstest_safe"], p_unsafe[source == "xstest_safe"]
        )["fpr"],
        "attack": binary_report(
            [r.attack for r in records], p_attack, threshold=thresholds.get("prompt_attack", 0.5)
        ),
    }
    cats = clf.categories[:-1]
    # Unsafe texts whose upstream set gives no category (AdvBench, …) are left out: they are
    # neither positives nor honest negatives for any one category.
    known = harm & np.array([not r.unsafe or r.category is not None for r in records])
    per_cat = {}
    for j, cat in enumerate(cats):
        y = np.array([r.category == cat and bool(r.unsafe) for r in records])[known]
        if y.sum() == 0:
            continue
        per_cat[cat] = binary_report(y, scores[known, j], threshold=thresholds.get(cat, 0.5))
    report["per_category"] = per_cat
    per_source = {}
    for name in sorted(set(source)):
        rows = source == name
        lab = harm & rows
        entry: dict[str, Any] = {"n": int(rows.sum())}
        if lab.any():
            flagged = p_unsafe[lab] >= 0.5
            key = "recall" if unsafe[lab].all() else ("fpr" if not unsafe[lab].any() else "f1")
            entry[key] = (
                round(float(flagged.mean()), 4)
                if key != "f1"
                else binary_report(unsafe[lab], p_unsafe[lab])["f1"]
            )
        per_source[name] = entry
    report["per_source"] = per_source
    return report


def _peer_refusal(datasets: Path, held_out: set[str]) -> dict[str, Any]:
    """The refusal labels already in XSTest's files, scored on the same held-out rows."""
    import gzip

    mapping = {
        "1_full_compliance": "compliance",
        "2_full_refusal": "refusal",
        "3_partial_refusal": "partial_refusal",
    }
    out = {}
    for kind, column in PEER_REFUSAL_COLUMNS.items():
        y_true, y_pred = [], []
        for model in ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"):
            path = (
                datasets
                / "xstest"
                / "automated_evaluation_labels"
                / f"xstest_v2_completions_{model}_{kind}.csv.gz"
            )
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    if row["id"] in held_out:
                        y_true.append(mapping[row["final_label"].strip()])
                        y_pred.append(mapping.get(row[column].strip(), row[column].strip()))
        out[column] = refusal_report(y_true, y_pred)
    return out


def refusal_report(y_true: list[str], y_pred: list[str]) -> dict[str, Any]:
    refused_t = [y != "compliance" for y in y_true]
    refused_p = [y != "compliance" for y in y_pred]
    binary = binary_report(refused_t, np.asarray(refused_p, dtype=float))
    return {
        "n": len(y_true),
        "accuracy_3way": multiclass_report(y_true, y_pred)["accuracy"],
        "accuracy_refused": binary["accuracy"],
        "refusal_precision": binary["precision"],
        "refusal_recall": binary["recall"],
        "refusal_f1": binary["f1"],
    }


def baseline_report(records: list[LabelledText]) -> dict[str, Any] | None:
    """``alt-profanity-check`` (a linear model over TF-IDF) on the same held-out texts.

    A baseline to beat, not a dependency: it only runs where the ``train`` extra is installed.
    """
    try:
        from profanity_check import predict_prob
    except ImportError:
        return None
    harm = [r for r in records if r.unsafe is not None]
    scores = np.asarray(predict_prob([r.text for r in harm]), dtype=float)
    truth = np.array([bool(r.unsafe) for r in harm])
    return {
        "unsafe": binary_report(truth, scores),
        "benign_fpr": binary_report(truth[~truth], scores[~truth])["fpr"],
    }


def _peer_judges(datasets: Path) -> dict[str, Any]:
    path = datasets / "jailbreakbench" / "jbb_classifier_comparison_v0.1.3.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    truth = [r["human_majority"] == "1" for r in rows]
    return {
        col: binary_report(truth, np.array([float(r[col]) for r in rows]))
        for col in PEER_JUDGE_COLUMNS
    }


def train_all(config: TrainConfig, progress: Progress = _noop) -> TrainReport:
    """Fit the three embedded classifiers, measure them, write artefacts, manifest and card.

    Categories and their examples come from the policy: data labelled with a category the policy
    does not have only teaches "unsafe", never a category.
    """
    policy = load_policy(config.policy_file) if config.policy_file else default_policy()
    embedder = MiniLMEmbedder()
    cache = EmbeddingCache(embedder)
    opts = config.options

    def embed(texts: list[str], stage: str) -> NDArray[np.float32]:
        firsts = [windows(t)[0] for t in texts]
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress(stage, done, len(firsts))

        progress(stage, 0, len(firsts))
        out = cache.embed(firsts, progress=tick)
        progress(stage, len(firsts), len(firsts))
        return out

    # -- prompt classifier ---------------------------------------------------------------------
    names = list(config.sources) if config.sources else None
    records = load_texts(config.datasets, names) + _policy_examples(policy)
    x = embed([r.text for r in records], "embed texts")
    components = near_duplicate_components(
        [r.group for r in records], x, threshold=config.near_duplicate
    )
    is_test = grouped_split(components, test_fraction=config.test_fraction, seed=config.seed)
    # Policy examples are the policy's definition, not a measurement: always on the train side.
    is_test &= np.array([r.source != "policy_examples" for r in records])
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    src_arr = np.array([r.source for r in records])
    progress("fit prompt heads", 0, 1)
    prompt = EmbeddedPromptClassifier(policy=policy, embedder=embedder, options=opts).fit(
        [records[i].text for i in train_idx],
        [records[i] for i in train_idx],
        embeddings=x[train_idx],
        version=config.version,
    )
    progress("fit prompt heads", 1, 1)
    thresholds = policy.thresholds()
    metrics: dict[str, Any] = {
        "seed": config.seed,
        "policy": f"{policy.name}@{policy.version}",
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "embedder": embedder.name,
        "embedder_revision": embedder.revision,
        "licences": {name: src.licence for name, src in SOURCES.items()},
        "counts": {
            name: {
                "train": int(np.sum(~is_test & (src_arr == name))),
                "test": int(np.sum(is_test & (src_arr == name))),
            }
            for name in sorted(set(src_arr.tolist()))
        },
        "split": {
            "method": f"grouped by source item, near-duplicates (cosine ≥ {config.near_duplicate}) "
            f"merged, {config.test_fraction:.0%} of components to test by "
            f"sha256(seed:component), seed {config.seed}",
            "train": len(train_idx),
            "test": len(test_idx),
            "components": len(set(components)),
        },
    }
    # Held-out numbers come from the inference path itself (every window of long texts).
    progress("score held-out texts", 0, 1)
    test_records = [records[i] for i in test_idx]
    test_scores = prompt.predict_proba([r.text for r in test_records])
    progress("score held-out texts", 1, 1)
    metrics["prompt_heldout"] = prompt_report(prompt, test_scores, test_records, thresholds)
    metrics["prompt_baseline_profanity_check"] = baseline_report(test_records)
    heldout_keys = sorted(text_key(r.text) for r in test_records)

    if config.leave_one_out:
        sources = sorted({r.source for r in records} - {"policy_examples"})
        loso: dict[str, Any] = {}
        for k, name in enumerate(sources):
            progress("leave-one-source-out", k, len(sources))
            keep = np.array([r.source != name for r in records])
            held = np.flatnonzero(~keep)
            clf = EmbeddedPromptClassifier(policy=policy, embedder=embedder, options=opts).fit(
                [records[i].text for i in np.flatnonzero(keep)],
                [records[i] for i in np.flatnonzero(keep)],
                embeddings=x[keep],
            )
            part = [records[i] for i in held]
            rep = prompt_report(clf, clf.score_embeddings(x[held]), part, thresholds)
            loso[name] = rep["per_source"][name] | {
                "attack_recall": rep["attack"]["recall"] if rep["attack"]["positives"] else None
            }
        progress("leave-one-source-out", len(sources), len(sources))
        metrics["prompt_leave_one_source_out"] = loso

    # -- refusal detector ----------------------------------------------------------------------
    xs = load_exchanges(config.datasets, "xstest")
    held_ids = {e.group.split(":", 1)[1] for e in xs if int(e.group.rsplit("-", 1)[1]) % 5 == 0}
    xs_test = np.array([e.group.split(":", 1)[1] in held_ids for e in xs])
    r_xs = embed([e.response for e in xs], "embed responses")
    p_xs = embed([e.prompt for e in xs], "embed prompts")
    f_xs = np.hstack([r_xs, p_xs])
    refusal = RefusalDetector(policy=policy, embedder=embedder, options=opts).fit(
        [Exchange(e.prompt, e.response) for e, t in zip(xs, xs_test, strict=True) if not t],
        [str(e.refusal_label) for e, t in zip(xs, xs_test, strict=True) if not t],
        features=f_xs[~xs_test],
        version=config.version,
    )
    p_ref = refusal.predict_proba([], features=f_xs[xs_test])
    pred = [REFUSAL_LABELS[int(i)] for i in p_ref.argmax(1)]
    truth = [str(e.refusal_label) for e, t in zip(xs, xs_test, strict=True) if t]
    metrics["refusal_heldout"] = {
        "split": "XSTest ids v2-N with N % 5 == 0, completions of all five models",
        "safestack": refusal_report(truth, pred)
        | {"per_class": multiclass_report(truth, pred)["per_class"]},
        **_peer_refusal(config.datasets, held_ids),
    }

    # -- output judge --------------------------------------------------------------------------
    jb = load_exchanges(config.datasets, "jbb_attacks")
    human = load_exchanges(config.datasets, "jbb_human")
    r_jb = embed([e.response for e in jb], "embed responses")
    p_jb = embed([e.prompt for e in jb], "embed prompts")
    r_hu = embed([e.response for e in human], "embed responses")
    p_hu = embed([e.prompt for e in human], "embed prompts")
    far = (r_jb @ r_hu.T).max(axis=1) < config.near_duplicate
    # Everyday requests answered helpfully: compliance is not harm, and the judge must know it.
    benign = load_exchanges(config.datasets, "benign_answers")
    r_bn = embed([e.response for e in benign], "embed responses")
    p_bn = embed([e.prompt for e in benign], "embed prompts")
    train_ex = (
        [e for e, t in zip(xs, xs_test, strict=True) if not t]
        + [e for e, k in zip(jb, far, strict=True) if k]
        + benign
    )
    r_tr = np.vstack([r_xs[~xs_test], r_jb[far], r_bn])
    p_tr = np.vstack([p_xs[~xs_test], p_jb[far], p_bn])
    output = EmbeddedOutputClassifier(policy=policy, embedder=embedder, options=opts)
    refusal_head = refusal.bundle.heads["refusal"]
    category_head = prompt.bundle.heads["category"]

    def judge_features(r: NDArray[np.float32], p: NDArray[np.float32]) -> NDArray[np.float32]:
        pr = refusal.predict_proba([], features=np.hstack([r, p]))
        return np.hstack([r, p, pr]).astype(np.float32)

    output.fit(
        [Exchange(e.prompt, e.response) for e in train_ex],
        [bool(e.unsafe) for e in train_ex],
        refusal_head=refusal_head,
        category_head=category_head,
        features=judge_features(r_tr, p_tr),
        version=config.version,
    )
    s_hu = output.predict_proba([], features=judge_features(r_hu, p_hu))
    metrics["output_heldout"] = {
        "split": "jbb_classifier_comparison_v0.1.3.csv, 100 rows, human_majority, never trained on",
        "train": {
            "xstest_exchanges": int((~xs_test).sum()),
            "jbb_attack_exchanges": int(far.sum()),
            "jbb_dropped_near_duplicates": int((~far).sum()),
            "benign_answer_exchanges": len(benign),
        },
        "safestack": binary_report([bool(e.unsafe) for e in human], s_hu),
        **_peer_judges(config.datasets),
    }

    # -- write -----------------------------------------------------------------------------
    config.out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    manifest = {}
    trained: list[EmbeddedPromptClassifier | RefusalDetector | EmbeddedOutputClassifier]
    trained = [prompt, refusal, output]
    for fitted in trained:
        name = f"{fitted.registry_name}.npz"
        sha = fitted.save(config.out_dir / name)
        files[name] = sha
        manifest[fitted.registry_name] = {"file": name, "sha256": sha, "version": config.version}
    (config.out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (config.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (config.out_dir / "heldout.json").write_text(
        json.dumps({"embedded-prompt": heldout_keys}, separators=(",", ":")) + "\n"
    )
    from safestack.classify.training.card import render_card

    (config.out_dir / "CARD.md").write_text(render_card(metrics, manifest))
    return TrainReport(metrics, files)
