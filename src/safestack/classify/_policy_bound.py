"""What every policy-aware classifier shares: the policy it thresholds with, for an audience."""

from __future__ import annotations

from functools import cached_property

from safestack.errors import ClassifierError
from safestack.policy import Audience, Policy

__all__ = ["PolicyBound"]


class PolicyBound:
    """Mixin for classifiers whose verdicts apply a policy's thresholds for an audience.

    Both are checked on first use, not in the constructor (which only stores parameters), so
    that building a classifier from configuration never fails half-way or reads files.
    """

    policy: Policy | None
    audience: Audience | str

    @cached_property
    def _policy(self) -> Policy:
        if self.policy is not None:
            return self.policy
        from safestack.policy import default_policy

        return default_policy()

    @property
    def _audience(self) -> Audience:
        try:
            return Audience(self.audience)
        except ValueError:
            allowed = ", ".join(a.value for a in Audience)
            raise ClassifierError(
                f"unknown audience {self.audience!r}; allowed: {allowed}"
            ) from None
