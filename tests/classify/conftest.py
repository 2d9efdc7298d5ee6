"""A small policy to judge by (the loopback server lives in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from safestack.policy import Policy


@pytest.fixture
def policy() -> Policy:
    def category(
        cid: str,
        title: str,
        openai: list[str],
        mlcommons: list[str],
        threshold: float,
        minor: float,
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "title": title,
            "description": f"What counts as {title.lower()}.",
            "disallowed": [f"{title} content that targets people"],
            "allowed": [f"Discussing {title.lower()} for education or news"],
            "threshold": threshold,
            "under_18": {
                "threshold": minor,
                "additional_disallowed": [f"Graphic depictions of {title.lower()} for minors"],
            },
            "openai": openai,
            "mlcommons": mlcommons,
        }

    return Policy.model_validate(
        {
            "name": "test-policy",
            "version": "0.1",
            "description": "A small policy for tests.",
            "categories": [
                category("hate", "Hate", ["hate", "hate/threatening"], ["S10"], 0.5, 0.3),
                category(
                    "self_harm",
                    "Self-harm",
                    ["self-harm", "self-harm/intent", "self-harm/instructions"],
                    ["S11"],
                    0.5,
                    0.2,
                ),
                category("violence", "Violence", ["violence"], ["S1"], 0.5, 0.3),
            ],
        }
    )
