"""bot.fit: how thresholds and the second-sentence ratio are chosen, on made-up predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from bot.answer import Candidates, Question
from bot.engine import Engine
from bot.evaluate import curve, holds_answer
from bot.fit import (
    Checked,
    Example,
    choose_answer_threshold,
    choose_related_threshold,
    choose_second_sentence_ratio,
    utility,
)
from bot.scorer import FEATURES, ScorerParams


def checked(
    group: str, should_answer: bool, confidence: float, right: bool, offtopic: bool = False, relatedness: float = 0.5
) -> Checked:
    return Checked(group, "k", should_answer, confidence, relatedness, right, offtopic)


def test_a_right_answer_is_worth_twice_a_right_abstention() -> None:
    found = [
        checked("news:check", True, 0.30, True),
        checked("news:check", False, 0.20, False),
        checked("news:check", False, 0.10, False),
    ]
    # Answering everything: 1 right answer. Abstaining below 0.25: the answer stays, two abstentions count half.
    assert utility(found, 0.0) == 1 / 3
    assert utility(found, 0.25) == (1 + 0.5 * 2) / 3
    assert choose_answer_threshold(found) == 0.3


def test_a_false_abstention_costs_more_than_a_right_abstention_gains() -> None:
    found = [checked("news:check", True, 0.2, True), checked("news:check", False, 0.3, False)]
    # Abstaining on the unanswerable question would also lose the answerable one: answer both.
    assert choose_answer_threshold(found) == 0.0


def test_each_source_of_checking_questions_weighs_the_same() -> None:
    many = [checked("squad:a", True, 0.5, True) for _ in range(9)] + [checked("squad:b", False, 0.1, False)]
    few = [checked("news:check", False, 0.6, False), checked("news:check", True, 0.7, True)]
    # Each source contributes its own share, whatever its size: ten SQuAD questions do not outweigh two.
    assert utility(many + few, 0.65) == utility(many, 0.65) + utility(few, 0.65)
    assert utility(few, 0.65) == (1 + 0.5) / 2


def test_the_related_threshold_separates_off_topic_questions_by_meaning() -> None:
    found = [
        checked("news:fit", False, 0.01, False, offtopic=True, relatedness=0.05),
        checked("news:fit", False, 0.20, False, offtopic=True, relatedness=0.15),
        # On topic, though nothing answers it (a low probability): still related, shown as the closest passage.
        checked("news:fit", False, 0.01, False, relatedness=0.35),
        checked("news:fit", True, 0.30, True, relatedness=0.60),
    ]
    threshold = choose_related_threshold(found)
    assert 0.15 < threshold <= 0.35


def test_the_related_threshold_lies_halfway_between_off_topic_and_on_topic() -> None:
    found = [
        checked("news:fit", False, 0.0, False, offtopic=True, relatedness=0.10),
        checked("news:fit", True, 0.5, True, relatedness=0.40),
    ]
    # Anything in (0.10, 0.40] separates them: halfway, so a question a little less related than 0.40 is not cut.
    assert choose_related_threshold(found) == 0.25


def _example(engine: Engine, probabilities: list[float], labels: list[bool]) -> Example:
    """A question whose candidates get `probabilities` (one feature carries the logit): sentences of the
    engine's index far apart, so that none is the next of another."""
    column = FEATURES.index("cos_sentence")
    features = np.zeros((len(probabilities), len(FEATURES)))
    features[:, column] = [np.log(p / (1 - p)) for p in probabilities]
    candidates = Candidates([5 * i for i in range(len(probabilities))], features, probabilities)
    item: dict[str, Any] = {"q": "?", "must": [["x"]]}
    return Example("news:fit", item, Question.parse("?"), candidates, labels, engine)


def test_the_second_sentence_ratio_is_the_fewest_sentences_that_find_as_many_answers(engine: Engine) -> None:
    params = ScorerParams(tuple(1.0 if f == "cos_sentence" else 0.0 for f in FEATURES), 0.0, 0.0, 0.0)
    examples = [
        _example(engine, [0.8, 0.3], [False, True]),  # the answer is second, at 0.375 of the best
        _example(engine, [0.9, 0.1], [True, False]),
    ]
    assert choose_second_sentence_ratio(examples, params) == 0.3
    only_first = [_example(engine, [0.9, 0.5], [True, False])]
    assert choose_second_sentence_ratio(only_first, params) == 0.9


def test_holds_answer_needs_every_group_and_ignores_case_and_spacing() -> None:
    assert holds_answer("Held in  March 2016.", [["march 2016"]])
    assert not holds_answer("Held in March.", [["march 2016"], ["held"]])
    assert not holds_answer("anything", [])


def test_the_precision_coverage_curve_answers_at_or_above_each_confidence() -> None:
    points = curve([(0.9, True), (0.5, False), (0.1, True)])
    assert points == [(0.1, 1.0, 2 / 3), (0.5, 2 / 3, 1 / 2), (0.9, 1 / 3, 1.0)]
