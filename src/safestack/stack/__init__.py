"""The safety stack: prompt blocking, the model's own refusals, output blocking and the monitor.

One request flows ``input layer → model → model-refusal check → output layer (+ monitor)``; each
layer reports a :class:`LayerTrace` and the stack folds them into one :class:`Decision`. Every
layer can be switched off by configuration (:class:`StackConfig`, a YAML file or a preset from
:data:`PRESETS`), which is how evaluations compare ``no_mitigations``, ``model_refusals_only``,
``system_mitigations`` and ``system_mitigations_and_model_refusals``.

Failure modes: for ``under_18`` requests any failing or overrunning classifier or monitor blocks
(fail-closed). For adults each layer's ``on_error`` decides; the defaults are: input ``allow``
(the output layer still judges the answer), output ``block`` (an answer that could not be checked
is withheld), monitor ``allow`` (the output classifier's verdict stands). A model that fails gives
status ``error`` and an apology, never a partial answer.
"""

from safestack.stack._config import (
    PRESETS,
    ComponentConfig,
    InputLayerConfig,
    ModelConfig,
    MonitorConfig,
    OutputLayerConfig,
    StackConfig,
    load_stack_config,
    stack_config_from_yaml,
)
from safestack.stack._decision import Decision, LayerTrace, StackResult
from safestack.stack._images import HashMatching, ImageResult, ImageSafetyStack
from safestack.stack._layers import InputLayer, ModelRefusalCheck, OutputLayer
from safestack.stack._refusal import refusal_message
from safestack.stack._review import REVIEW_REASONS, review_reasons
from safestack.stack._stack import STREAM_WINDOW_CHARS, SafetyStack, StreamPiece

__all__ = [
    "PRESETS",
    "REVIEW_REASONS",
    "STREAM_WINDOW_CHARS",
    "ComponentConfig",
    "Decision",
    "HashMatching",
    "ImageResult",
    "ImageSafetyStack",
    "InputLayer",
    "InputLayerConfig",
    "LayerTrace",
    "ModelConfig",
    "ModelRefusalCheck",
    "MonitorConfig",
    "OutputLayer",
    "OutputLayerConfig",
    "SafetyStack",
    "StackConfig",
    "StackResult",
    "StreamPiece",
    "load_stack_config",
    "refusal_message",
    "review_reasons",
    "stack_config_from_yaml",
]
