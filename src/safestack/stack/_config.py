"""A stack configuration: which layers run, with which components, and what happens on failure.

A configuration is data (a YAML file people edit and review), validated by pydantic and loaded with
errors at ``file:line``. The four configurations the published tables compare are presets::

    no_mitigations                          model only (a helpful-only model)
    model_refusals_only                     model only (a safety-trained model, refusals counted)
    system_mitigations                      prompt + output blocking around a helpful-only model
    system_mitigations_and_model_refusals   prompt + output blocking around a safety-trained model

A file may start from a preset (``preset: system_mitigations``) and override any field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safestack.errors import ConfigError
from safestack.yaml_config import load_yaml_model, yaml_model_from_text

__all__ = [
    "PRESETS",
    "ComponentConfig",
    "InputLayerConfig",
    "ModelConfig",
    "MonitorConfig",
    "OnError",
    "OutputLayerConfig",
    "StackConfig",
    "load_stack_config",
    "stack_config_from_yaml",
]

OnError = Literal["block", "allow"]
MonitorWhen = Literal["never", "uncertain", "always"]

#: Recorded setups used when a configuration names the recorded model without a setup: real
#: completions of a model with little safety training (refusals not counted) or of one with a
#: lot (refusals counted), for XSTest prompts first and JailbreakBench attack prompts second.
HELPFUL_ONLY_SETUPS = ("mistralinstruct", "jbb/vicuna-13b-v1.5")
SAFETY_TRAINED_SETUPS = ("llama2orig", "jbb/llama-2-7b-chat-hf")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentConfig(_Strict):
    """A registered component and the arguments it is built with."""

    name: str = Field(description="Registry name, e.g. 'embedded-prompt' or 'acme/my-classifier'.")
    args: dict[str, Any] = Field(default_factory=dict)


class InputLayerConfig(_Strict):
    """Prompt blocking: a classifier reads the conversation before the model sees it."""

    enabled: bool = True
    classifier: ComponentConfig = ComponentConfig(name="embedded-prompt")
    window: int = Field(
        default=6,
        ge=1,
        le=64,
        description="How many of the latest user / tool messages are judged together, besides "
        "the last one on its own: an attack spread over turns is read as one text.",
    )
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Budget for judging the conversation. The embedded classifier reads about "
        "20,000 characters a second on two cores, so the default covers max_chars with room.",
    )
    on_error: OnError = Field(
        default="allow",
        description="Adults only: what happens when the classifier fails or times out. 'allow' "
        "lets the request reach the model (the output layer still judges the answer). Under-18 "
        "requests are always refused.",
    )


class MonitorConfig(_Strict):
    """The policy monitor: a second, reasoning judge of the answer against the written policy."""

    enabled: bool = True
    monitor: ComponentConfig = ComponentConfig(name="nearest-clause-monitor")
    when_adult: MonitorWhen = Field(
        default="uncertain",
        description="'uncertain': only when the output classifier's top score is within "
        "uncertain_band of its threshold (the monitor's verdict then decides).",
    )
    when_under_18: MonitorWhen = Field(
        default="always",
        description="For under-18 users the monitor adds the policy's extra rules, which no "
        "trained head has seen; either judge flagging blocks.",
    )
    uncertain_band: tuple[float, float] = Field(
        default=(0.5, 1.5),
        description="Score / threshold ratios between which the output classifier is uncertain.",
    )
    timeout_s: float = Field(default=15.0, gt=0)
    on_error: OnError = Field(
        default="allow",
        description="Adults only: 'allow' keeps the output classifier's verdict when the monitor "
        "fails. Under-18 answers are refused.",
    )

    @field_validator("uncertain_band")
    @classmethod
    def _ordered(cls, band: tuple[float, float]) -> tuple[float, float]:
        low, high = band
        if not 0 <= low <= 1 <= high:
            raise ValueError(f"uncertain_band must satisfy 0 <= low <= 1 <= high, got {band}")
        return band


class OutputLayerConfig(_Strict):
    """Output blocking: a classifier (and the monitor) read the answer before the user does."""

    enabled: bool = True
    classifier: ComponentConfig = ComponentConfig(name="embedded-output")
    monitor: MonitorConfig = MonitorConfig()
    timeout_s: float = Field(default=10.0, gt=0)
    on_error: OnError = Field(
        default="block",
        description="Adults only: an answer that could not be checked is withheld by default. "
        "Under-18 answers are always withheld.",
    )


class ModelConfig(_Strict):
    """The wrapped model: a registered adapter ('recorded', 'openai') and its arguments."""

    name: str = "recorded"
    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Wall-clock budget for one answer, enforced by the stack even when the "
        "adapter has no timeout of its own.",
    )


class StackConfig(_Strict):
    """Everything that decides how one request is handled, as reviewable data.

    ``model_refusals`` says whether the model's own refusals count as a mitigation: when true, a
    refusal detector reads every answer and a refusal is reported as the ``model`` layer acting.
    When false the model should be a helpful-only one (the recorded default switches to one) so
    that the numbers measure the system mitigations alone, as the published tables do.
    """

    name: str = Field(default="custom", description="Shown in decisions and evaluation tables.")
    preset: str | None = Field(default=None, description="Start from a preset, then override.")
    policy: str | None = Field(
        default=None, description="Policy file (relative to this file); default: shipped policy."
    )
    model: ModelConfig = ModelConfig()
    model_refusals: bool = True
    refusal_detector: ComponentConfig = ComponentConfig(name="refusal")
    input: InputLayerConfig = InputLayerConfig()
    output: OutputLayerConfig = OutputLayerConfig()
    max_chars: int = Field(
        default=100_000,
        gt=0,
        description="Longest conversation (characters, all messages) accepted; longer requests "
        "are rejected before any layer runs, so memory and latency stay bounded.",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        if name not in PRESETS:
            known = ", ".join(PRESETS)
            raise ValueError(f"unknown preset {name!r}; allowed: {known}")
        merged = _merge(PRESETS[name].model_dump(exclude_defaults=True), data)
        merged.setdefault("name", name)
        return merged

    def recorded_setups(self) -> tuple[str, ...]:
        """The recorded setups this configuration replays (when the model is 'recorded')."""
        setup = self.model.args.get("setup")
        if setup is None:
            return SAFETY_TRAINED_SETUPS if self.model_refusals else HELPFUL_ONLY_SETUPS
        return (setup,) if isinstance(setup, str) else tuple(setup)

    def warnings(self) -> list[str]:
        """Legal but probably unintended settings, for ``safestack stack check``."""
        out = []
        if not self.model_refusals and self.model.name != "recorded":
            out.append(
                "model_refusals is false but the model is not the recorded helpful-only one: "
                "point model at a helpful-only endpoint, or the model's refusals will still "
                "shape the results"
            )
        if self.output.enabled and self.output.on_error == "allow":
            out.append(
                "output.on_error is 'allow': an adult answer that could not be checked is "
                "released unchecked"
            )
        if not self.input.enabled and not self.output.enabled and self.model_refusals is False:
            out.append("every mitigation is off: this stack is the bare model")
        return out


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _preset(name: str, *, mitigations: bool, refusals: bool) -> StackConfig:
    return StackConfig(
        name=name,
        model_refusals=refusals,
        input=InputLayerConfig(enabled=mitigations),
        output=OutputLayerConfig(enabled=mitigations),
    )


PRESETS: dict[str, StackConfig] = {
    "no_mitigations": _preset("no_mitigations", mitigations=False, refusals=False),
    "model_refusals_only": _preset("model_refusals_only", mitigations=False, refusals=True),
    "system_mitigations": _preset("system_mitigations", mitigations=True, refusals=False),
    "system_mitigations_and_model_refusals": _preset(
        "system_mitigations_and_model_refusals", mitigations=True, refusals=True
    ),
}
"""The configurations the published system-card tables compare, by their names there."""


def stack_config_from_yaml(text: str, *, path: str | None = None) -> StackConfig:
    """Parse and validate a stack configuration; errors are :class:`ConfigError` at file:line."""
    return yaml_model_from_text(text, StackConfig, what="stack file", path=path, error=ConfigError)


def load_stack_config(path: str | Path) -> StackConfig:
    """Read a stack file; a relative ``policy:`` path is resolved against the file's folder."""
    path = Path(path)
    config = load_yaml_model(path, StackConfig, what="stack file", error=ConfigError)
    if config.policy is not None and not Path(config.policy).is_absolute():
        config = config.model_copy(update={"policy": str(path.parent / config.policy)})
    return config
