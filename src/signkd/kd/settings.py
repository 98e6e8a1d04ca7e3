"""The distillation settings of one run, resolved once in the stage and passed down unchanged.

params.yaml's `kd` section gives each tunable setting (temperature, alpha, the three level
weights) as a number or as `tuned`. A number means that number, always: `dvc exp run -S
kd.alpha=0.5` distils with alpha 0.5. `tuned` asks for the `tune` stage's best trial, which
searched exactly the settings marked `tuned` while holding the others at their numbers. So
overriding one key keeps the others tuned, and the chain's assistant and its student, the tune
trials and the studies all read the same `KDSettings` rather than params plus overrides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from signkd.errors import InputError
from signkd.kd.loss import LEVELS, KDConfig
from signkd.params import TUNED, Params

TUNED_FILE = Path("models/tune/best_params.json")  # written by the tune stage
TUNABLE = ("temperature", "alpha", *(f"level_weights.{level}" for level in LEVELS))


@dataclass(frozen=True)
class KDSettings:
    recipe: str  # logits | hkd | chain (see signkd.kd.recipes)
    temperature: float
    alpha: float
    level_weights: dict[str, float]
    tuned: tuple[str, ...] = ()  # the settings that came from the tune stage's best trial
    source: str = "params.yaml"

    def loss_config(self) -> KDConfig:
        """What the loss weighs: `logits` is the KL terms alone, so its level weights are zero."""
        weights = {level: 0.0 for level in LEVELS} if self.recipe == "logits" else dict(self.level_weights)
        return KDConfig(alpha=self.alpha, temperature=self.temperature, level_weights=weights)

    def for_recipe(self, recipe: str) -> KDSettings:
        """The same settings under another recipe (the chain's assistant distils with `hkd`)."""
        return replace(self, recipe=recipe)

    def record(self) -> dict[str, float | str]:
        """Flat `kd.*` keys: what MLflow logs and what a study's cache key holds."""
        return {"kd.recipe": self.recipe, "kd.temperature": self.temperature, "kd.alpha": self.alpha,
                **{f"kd.level_weights.{level}": self.level_weights[level] for level in LEVELS}}


def _declared(params: Params) -> dict[str, float | str]:
    kd = params.kd
    return {"temperature": kd.temperature, "alpha": kd.alpha,
            **{f"level_weights.{level}": getattr(kd.level_weights, level) for level in LEVELS}}


def tuned_keys(params: Params) -> tuple[str, ...]:
    """The settings params marks `tuned` that the recipe uses (`logits` has no level weights)."""
    uses_levels = params.kd.recipe != "logits"
    return tuple(key for key, value in _declared(params).items()
                 if value == TUNED and (uses_levels or not key.startswith("level_weights.")))


def with_values(params: Params, values: dict[str, float], source: str = "params.yaml") -> KDSettings:
    """params' numbers, with `values` (keys as in TUNABLE) for the settings marked `tuned`."""
    declared = _declared(params)
    missing = [key for key in tuned_keys(params) if key not in values]
    if missing:
        raise InputError(f"{source}: no value for kd.{missing[0]} (marked `tuned` in params.yaml); "
                         "rerun `dvc repro tune`, or give kd." + missing[0] + " a number")
    resolved = {key: float(values[key]) if value == TUNED and key in values else value for key, value in declared.items()}
    # a level weight marked `tuned` under `logits` is never searched and never used
    numbers = {key: 0.0 if value == TUNED else float(value) for key, value in resolved.items()}
    return KDSettings(
        recipe=params.kd.recipe, temperature=numbers["temperature"], alpha=numbers["alpha"],
        level_weights={level: numbers[f"level_weights.{level}"] for level in LEVELS},
        tuned=tuned_keys(params), source=source,
    )


def resolve(params: Params, tuned_file: Path = TUNED_FILE) -> KDSettings:
    """The run's settings: params' numbers, and the tune stage's best trial for keys marked `tuned`."""
    if not tuned_keys(params):
        return with_values(params, {})
    if not tuned_file.is_file():
        raise InputError(f"{tuned_file} missing: kd.{tuned_keys(params)[0]} is `tuned`; run `dvc repro tune`, "
                         "or give it a number in params.yaml")
    try:
        best = json.loads(tuned_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{tuned_file} is not valid JSON ({err}); rerun `dvc repro tune`") from None
    values = {key.removeprefix("kd."): value for key, value in best.items() if key.startswith("kd.")}
    trial = f", trial {best['trial']}" if "trial" in best else ""
    return with_values(params, values, source=f"{tuned_file}{trial}")
