"""A small weather-forecast grammar: gloss sentences with a German translation, Phoenix-style.

Sentences follow the gloss order of the RWTH-Phoenix weather forecasts (time, region, weather,
degree: "MORGEN NORD REGEN STARK") and are built from clauses, so any length range can be met.
The translation is composed from the same choices, so gloss and text always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIMES = {"HEUTE": "heute", "MORGEN": "morgen", "ABEND": "am abend", "NACHT": "in der nacht"}
REGIONS = {"NORD": "im norden", "SUED": "im süden", "WEST": "im westen", "OST": "im osten"}
DEGREES = ("STARK", "MEHR", "WENIG")

# weather gloss -> (verb, subject, predicate by degree ("" = no degree sign))
WEATHER: dict[str, tuple[str, str, dict[str, str]]] = {
    "REGEN": ("regnet", "es", {"": "", "STARK": "stark", "MEHR": "mehr", "WENIG": "wenig"}),
    "SCHNEE": ("schneit", "es", {"": "", "STARK": "stark", "MEHR": "mehr", "WENIG": "wenig"}),
    "SONNE": ("scheint", "die sonne", {"": "", "STARK": "kräftig", "MEHR": "öfter", "WENIG": "selten"}),
    "WIND": ("weht", "der wind", {"": "", "STARK": "stark", "MEHR": "stärker", "WENIG": "schwach"}),
    "WOLKE": (
        "ist",
        "es",
        {"": "bewölkt", "STARK": "stark bewölkt", "MEHR": "stärker bewölkt", "WENIG": "leicht bewölkt"},
    ),
    "GEWITTER": (
        "gibt",
        "es",
        {"": "gewitter", "STARK": "schwere gewitter", "MEHR": "mehr gewitter", "WENIG": "vereinzelt gewitter"},
    ),
    "NEBEL": ("gibt", "es", {"": "nebel", "STARK": "dichten nebel", "MEHR": "mehr nebel", "WENIG": "wenig nebel"}),
    "FROST": ("gibt", "es", {"": "frost", "STARK": "strengen frost", "MEHR": "mehr frost", "WENIG": "leichten frost"}),
    "WARM": ("wird", "es", {"": "warm", "STARK": "sehr warm", "MEHR": "wärmer", "WENIG": "etwas wärmer"}),
    "KALT": ("wird", "es", {"": "kalt", "STARK": "sehr kalt", "MEHR": "kälter", "WENIG": "etwas kälter"}),
    "SCHOEN": ("wird", "es", {"": "schön", "STARK": "sehr schön", "MEHR": "schöner", "WENIG": "etwas schöner"}),
}

MAX_CLAUSE_SIGNS = 3  # region + weather + degree


@dataclass(frozen=True)
class Sentence:
    glosses: tuple[str, ...]
    translation: str


@dataclass(frozen=True)
class _Clause:
    region: str | None
    weather: str
    degree: str | None

    def glosses(self) -> list[str]:
        return [g for g in (self.region, self.weather, self.degree) if g]

    def german(self, time: str | None) -> str:
        """German main clause with the verb in second position."""
        verb, subject, predicate = WEATHER[self.weather]
        pred = predicate[self.degree or ""]
        region = REGIONS[self.region] if self.region else ""
        if time:
            words = [TIMES[time], verb, subject, region, pred]
        elif self.region:
            words = [region, verb, subject, pred]
        else:
            words = [subject, verb, pred]
        return " ".join(w for w in words if w)


def _clause(rng: np.random.Generator, size: int, used_weather: set[str], used_region: set[str]) -> _Clause:
    weather = _pick(rng, [w for w in WEATHER if w not in used_weather] or list(WEATHER))
    region = degree = None
    if size == 3:
        region, degree = _pick(rng, [r for r in REGIONS if r not in used_region] or list(REGIONS)), _pick(rng, DEGREES)
    elif size == 2:
        if rng.random() < 0.5:
            region = _pick(rng, [r for r in REGIONS if r not in used_region] or list(REGIONS))
        else:
            degree = _pick(rng, DEGREES)
    return _Clause(region, weather, degree)


def _pick(rng: np.random.Generator, options) -> str:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def sample_sentence(rng: np.random.Generator, min_signs: int = 2, max_signs: int = 4) -> Sentence:
    """Draw one sentence with between min_signs and max_signs glosses (inclusive)."""
    if min_signs < 1 or max_signs < min_signs:
        raise ValueError(f"need 1 <= min_signs <= max_signs, got min_signs={min_signs}, max_signs={max_signs}")
    length = int(rng.integers(min_signs, max_signs + 1))
    time = _pick(rng, TIMES) if length >= 2 and rng.random() < 0.6 else None
    remaining = length - (1 if time else 0)
    clauses: list[_Clause] = []
    used_weather: set[str] = set()
    used_region: set[str] = set()
    while remaining > 0:
        size = min(int(rng.integers(1, MAX_CLAUSE_SIGNS + 1)), remaining)
        clause = _clause(rng, size, used_weather, used_region)
        used_weather.add(clause.weather)
        if clause.region:
            used_region.add(clause.region)
        clauses.append(clause)
        remaining -= size
    glosses = ([time] if time else []) + [g for c in clauses for g in c.glosses()]
    german = " und ".join(c.german(time if i == 0 else None) for i, c in enumerate(clauses))
    return Sentence(tuple(glosses), german)


def grammar_glosses() -> set[str]:
    """Every gloss the grammar can produce (all of them are in the lexicon)."""
    return set(TIMES) | set(REGIONS) | set(WEATHER) | set(DEGREES)

