"""System cards: the evidence of a deployment decision, as Markdown, HTML and PDF.

:class:`SystemCard` renders a card from finished evaluation run logs
(:func:`safestack.evals.load_evidence`) and the scorecard assessed on them
(:func:`safestack.scorecard.assess`): the stack as deployed, the evaluation sources,
``not_unsafe`` / ``not_overrefuse`` per source, category and configuration with 95 % intervals,
jailbreak, hallucination, bias and classifier-quality results, the scorecard with its gate
decision, the limitations, and the provenance of every number (each table names its runs).
``safestack card build`` is the command line for it.
"""

from safestack.cards._card import CARD_FORMATS, SystemCard

__all__ = ["CARD_FORMATS", "SystemCard"]
