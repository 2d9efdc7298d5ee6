"""Automated red teaming: adversarial prompts from the policy and seed behaviours.

:func:`generate_samples` (or :class:`RedTeamer`) turns each policy category's disallowed examples
and categorised dataset behaviours into attacks with the :data:`STRATEGIES` (role-play, fiction,
hypothetical, prefix injection, refusal suppression, payload splitting across turns, base64,
leetspeak, a low-resource-language-style cipher, many-shot), written by an attacker model when
one is configured, and adds benign look-alikes of the allowed examples to measure over-refusal.
:func:`breaking_samples` picks from a run log the samples that broke the stack, and
:func:`write_samples_jsonl` keeps them as a regression set that ``safestack eval run`` reads.
"""

from safestack.redteam.generate import (
    ATTACKER_SYSTEM_PROMPT,
    POLICY_LICENCE,
    SEED_SOURCES,
    RedTeamer,
    breaking_samples,
    generate_samples,
    write_samples_jsonl,
)
from safestack.redteam.strategies import STRATEGIES, Strategy

__all__ = [
    "ATTACKER_SYSTEM_PROMPT",
    "POLICY_LICENCE",
    "SEED_SOURCES",
    "STRATEGIES",
    "RedTeamer",
    "Strategy",
    "breaking_samples",
    "generate_samples",
    "write_samples_jsonl",
]
