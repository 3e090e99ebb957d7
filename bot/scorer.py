"""The answer scorer's parameters: a logistic model over sentence features, fitted by `python -m bot fit`.

`FEATURES` names what `bot.answer.SentenceScorer` measures for each candidate sentence; `scorer.json`, beside
this file, holds the fitted weights, the two thresholds and how they were obtained (data, checking scores).
Nothing here is set by hand: change a feature, then run `python -m bot fit` to write the file anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.errors import BotError

PARAMS_FILE = Path(__file__).with_name("scorer.json")

# Every feature is in [0, 1] or close to it, so that fitted weights are comparable; see bot/answer.py.
FEATURES: tuple[str, ...] = (
    "cos_sentence",  # cosine of question and sentence (or its best clause)
    "cos_chunk",  # cosine of question and the best retrieved passage holding the sentence
    "cos_neighbour",  # the better cosine of the sentences before and after it
    "cos_gap",  # cos_sentence minus the best cos_sentence among the candidates (<= 0)
    "cos_rank",  # 1 / (1 + its rank by cos_sentence among the candidates)
    "cos_few_terms",  # cos_sentence x (1 - the best terms among the candidates): meaning counts most when
    # no candidate holds the question's words (a paraphrase); one weight for all questions could not say so
    "retrieval_rank",  # 1 / (1 + rank of its passage in hybrid retrieval)
    "terms",  # IDF-weighted share of the question's terms (or their spellings) the sentence holds
    "terms_neighbours",  # the same share over the sentence and its neighbours
    "terms_soft",  # IDF-weighted mean, over the question's words, of the closest word in meaning it holds
    "terms_gap",  # terms minus the best terms among the candidates (<= 0)
    "unmatched",  # IDF-weighted share of the question's terms the articles never use, in any spelling
    "type_asked",  # the question asks for a date, quantity, person or place
    "type_found",  # ... and the sentence holds one
    "type_near",  # ... and only a neighbouring sentence holds one
    "measure_found",  # a number next to what a "how many/how long" question counts or measures
    "reason_found",  # a "why" question, and the sentence gives a reason ("because", "after", "amid")
    "new_words",  # how much the sentence says beyond the question's own words (log-scaled)
    "points_back",  # the sentence opens with a pronoun or connective
)

Matrix = npt.NDArray[np.float64]


class ScorerParamsError(BotError):
    """The scorer's parameter file is missing, malformed, or fitted for other features."""


@dataclass(frozen=True)
class ScorerParams:
    """Weights of the logistic answer model, the threshold on its probability and the one on relatedness.

    A best sentence with probability `answer_threshold` or more is quoted as the answer; below it, it is shown
    as the closest passage with "the articles don't say exactly". When no sentence comes within
    `related_threshold` of the question in meaning (cosine), the articles do not cover it and nothing is
    cited. A fact question's second-best sentence joins the answer when its probability is at least
    `second_sentence_ratio` times the best one's.
    """

    weights: tuple[float, ...]
    bias: float
    answer_threshold: float
    related_threshold: float
    second_sentence_ratio: float = 0.5
    provenance: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, features: Matrix) -> npt.NDArray[np.float64]:
        """P(the sentence holds the answer) for each row of `features` (columns in `FEATURES` order)."""
        logits = features @ np.asarray(self.weights) + self.bias
        probabilities: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        return probabilities

    def to_json(self) -> str:
        payload = {
            "features": dict(zip(FEATURES, self.weights, strict=True)),
            "bias": self.bias,
            "answer_threshold": self.answer_threshold,
            "related_threshold": self.related_threshold,
            "second_sentence_ratio": self.second_sentence_ratio,
            "provenance": self.provenance,
        }
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path = PARAMS_FILE) -> ScorerParams:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            weights = payload["features"]
            if set(weights) != set(FEATURES):
                raise ScorerParamsError(
                    f"{path} was fitted for other features ({sorted(set(weights) ^ set(FEATURES))} differ): "
                    "run 'python -m bot fit'"
                )
            return cls(
                weights=tuple(float(weights[name]) for name in FEATURES),
                bias=float(payload["bias"]),
                answer_threshold=float(payload["answer_threshold"]),
                related_threshold=float(payload["related_threshold"]),
                second_sentence_ratio=float(payload["second_sentence_ratio"]),
                provenance=dict(payload.get("provenance", {})),
            )
        except FileNotFoundError:
            raise ScorerParamsError(f"{path} is missing: run 'python -m bot fit'") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ScorerParamsError(f"{path} is malformed ({exc}): run 'python -m bot fit'") from None
