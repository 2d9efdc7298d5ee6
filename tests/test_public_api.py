"""The public names are a contract: adding one is a decision, losing one is a break."""

from __future__ import annotations

import safestack
import safestack.classify
import safestack.gateway
import safestack.models
import safestack.policy
import safestack.provenance
import safestack.store

MODULES = (
    safestack,
    safestack.classify,
    safestack.gateway,
    safestack.models,
    safestack.policy,
    safestack.provenance,
    safestack.store,
)


def test_all_is_sorted_and_resolves() -> None:
    for module in MODULES:
        names = module.__all__
        assert names == sorted(names, key=lambda n: (not n.isupper(), n)) or names == sorted(names)
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_classify_exports() -> None:
    assert set(safestack.classify.__all__) >= {
        "Classifier",
        "ClassifierSpec",
        "EmbeddedOutputClassifier",
        "EmbeddedPromptClassifier",
        "Exchange",
        "LLMClassifier",
        "RefusalDetector",
        "RemoteModerationClassifier",
        "Verdict",
        "classifier_names",
        "create_classifier",
        "register_classifier",
    }


def test_models_exports() -> None:
    assert safestack.models.__all__ == [
        "RECORDED_SETUPS",
        "SAMPLE_PHOTOS_MODEL",
        "ChatMessage",
        "ImageModel",
        "ModelAdapter",
        "ModelReply",
        "ModelSpec",
        "OpenAICompatibleImageModel",
        "OpenAICompatibleModel",
        "RecordedModel",
        "SamplePhotosModel",
        "create_model",
        "model_names",
        "register_model",
    ]


def test_evals_exports() -> None:
    import safestack.evals

    names = safestack.evals.__all__
    assert names == [
        "HUMAN_LABELS",
        "LOG_VERSION",
        "REPORT_LOG_VERSION",
        "Dataset",
        "EvalRun",
        "EvidenceKind",
        "Expected",
        "JudgeErrorRates",
        "RunEvidence",
        "Sample",
        "SampleSource",
        "Wilson",
        "corrected_rate",
        "judge_error_rates",
        "load_evidence",
        "load_jsonl_samples",
        "logged_results",
        "read_log",
        "rows_from_log",
        "rows_from_records",
        "table_rows",
        "wilson",
        "write_report_log",
        "write_samples_jsonl",
    ]
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(safestack.evals, name), name


def test_gateway_and_store_exports() -> None:
    assert safestack.gateway.__all__ == [
        "DEFAULT_MODEL_NAME",
        "MIN_ADMIN_KEY_CHARS",
        "GatewayConfig",
        "UpstreamConfig",
        "create_app",
        "load_gateway_config",
        "serve",
    ]
    assert set(safestack.store.__all__) >= {"Account", "NewDecision", "Store", "StrikePolicy"}


def test_the_inner_layers_never_import_the_gateway_or_the_store() -> None:
    """Data flows outward: policy, classifiers and the stack know nothing of HTTP or storage."""
    import subprocess
    import sys

    code = (
        "import sys, safestack.stack, safestack.evals; "
        "print(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith(('safestack.gateway', 'safestack.store'))}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_provenance_exports_and_never_imports_the_gateway() -> None:
    """Provenance sits beside the stack: the gateway calls it, never the other way round."""
    import subprocess
    import sys

    assert safestack.provenance.__all__ == [
        "DEVELOPMENT_ORGANIZATION",
        "MEDIA_TYPES",
        "MIN_WATERMARK_PIXELS",
        "PROVENANCE_DIR_ENV",
        "REGISTRY_ASSERTION",
        "WATERMARK_METHODS",
        "LookupEvidence",
        "LookupResult",
        "ManifestReport",
        "ManifestSigner",
        "ManifestState",
        "Provenance",
        "ProvenanceConfig",
        "RecordSummary",
        "Registry",
        "Signal",
        "SignedImage",
        "SigningAlgorithm",
        "SigningCredentials",
        "StampedImage",
        "WatermarkMethod",
        "Watermarker",
        "create_development_credentials",
        "embeddable",
        "provenance_directory",
        "read_manifest",
        "sniff_media_type",
    ]
    code = (
        "import sys, safestack.provenance; "
        "print([m for m in sys.modules if m.startswith('safestack.gateway')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_policy_and_classify_never_import_models() -> None:
    """The layering rule: what the stack wraps is not something detectors may depend on."""
    import subprocess
    import sys

    code = (
        "import sys, safestack.classify, safestack.policy, safestack.http_endpoint; "
        "print([m for m in sys.modules if m.startswith('safestack.models')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_error_is_a_safestack_error() -> None:
    for name in safestack.__all__:
        obj = getattr(safestack, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, safestack.SafestackError)


def test_monitor_exports() -> None:
    import safestack.monitor

    names = safestack.monitor.__all__
    assert names == [
        "MONITOR_PROMPT_VERSION",
        "NEAREST_CLAUSE_VERSION",
        "NearestClauseMonitor",
        "NearestClauseOptions",
        "PolicyMonitor",
    ]
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(safestack.monitor, name), name


def test_scorecard_and_cards_exports() -> None:
    import safestack.cards
    import safestack.scorecard

    assert set(safestack.scorecard.__all__) >= {
        "Scorecard",
        "RiskLevel",
        "GateDecision",
        "ScorecardResult",
        "assess",
        "load_scorecard",
        "default_scorecard",
    }
    assert safestack.cards.__all__ == ["CARD_FORMATS", "SystemCard"]
    for module in (safestack.scorecard, safestack.cards):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_the_scorecard_reads_logs_not_live_stacks() -> None:
    """Deciding needs evidence only: importing the scorecard loads no model, store or server."""
    import subprocess
    import sys

    code = (
        "import sys, safestack.scorecard, safestack.cards; "
        "print(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith(('safestack.gateway', 'safestack.store'))}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
