"""Models: what the safety stack wraps, behind one protocol, looked up by name.

Built-in registry names:

* ``recorded`` (default) — :class:`RecordedModel` replays real completions of GPT-4,
  Llama-2-70b-chat and Mistral-7B-Instruct (XSTest) and of jailbroken targets (JailbreakBench
  artifacts), offline; setups in :data:`RECORDED_SETUPS`.
* ``openai`` — :class:`OpenAICompatibleModel`, any OpenAI-compatible ``/chat/completions``
  endpoint (hosted APIs, vLLM, TGI, llama.cpp, Ollama), whole or streamed.

Image models (:mod:`safestack.models.images`) have their own protocol, :class:`ImageModel`:
:class:`OpenAICompatibleImageModel` for any ``/images/generations`` + ``/images/edits`` endpoint,
and :class:`SamplePhotosModel`, an offline stand-in that returns public-domain photographs.

Every chat adapter takes a conversation of :class:`ChatMessage` and returns a :class:`ModelReply`
(or a stream of text deltas) carrying the :class:`ModelSpec` of its producer. Its own refusals
are part of its answer: detecting them is the stack's job, not the adapter's.
"""

from safestack.models._protocol import ChatMessage, ModelAdapter, ModelReply, ModelSpec
from safestack.models._registry import create_model, model_names, register_model
from safestack.models.images import (
    SAMPLE_PHOTOS_MODEL,
    ImageModel,
    OpenAICompatibleImageModel,
    SamplePhotosModel,
)
from safestack.models.openai_compatible import OpenAICompatibleModel
from safestack.models.recorded import RECORDED_SETUPS, RecordedModel

__all__ = [
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
