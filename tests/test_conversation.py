"""bot.conversation: follow-up detection, referents, rewriting and bounded memory."""

from __future__ import annotations

import pytest

from bot.conversation import Conversation, Exchange, is_follow_up, names, rewrite
from bot.engine import Engine, Outcome

DUISEBAEVA_ANSWER = (
    "Aruzhan Duisebaeva, one of the party activists who held a single-person picket on November 6, told RFE/RL "
    "that none of President Qasym-Zhomart Toqaev's promises of political reform has materialized. [1]"
)


@pytest.mark.parametrize(
    "question",
    [
        "What did she say?",
        "How long was he detained?",
        "What is his role?",
        "Who appoints nine of its seats?",
        "What do they want?",
        "Where did it happen?",
        "Why?",
        "And Mamai?",
        "What about the elections?",
        "Really?",
        "Who leads them?",
    ],
)
def test_follow_up_questions(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "Who is Zhanbolat Mamai?",
        "What did Aruzhan Duisebaeva say about Toqaev's promises?",
        "How many seats does the Majlis have?",
        "What is Nur-Otan?",
        "Which city gave the unregistered party permission for a rally?",
    ],
)
def test_standalone_questions(question: str) -> None:
    assert not is_follow_up(question)


@pytest.mark.parametrize("question", ["Who is Nazarbaev?", "Is there a ban on land leasing to foreigners?"])
def test_standalone_questions_naming_their_subject(question: str) -> None:
    assert not is_follow_up(question)
    conversation = Conversation()
    conversation.remember("Who is Zhanbolat Mamai?", "Democratic Party leader Zhanbolat Mamai told RFE/RL. [1]")
    assert conversation.referents(question) == []


WH_QUESTIONS = [
    "When were the last parliamentary elections held in Kazakhstan?",
    "Why was the crackdown seen as an attempt to sabotage the congress?",
    "Where did Mamai hold the protest rally?",
]


@pytest.mark.parametrize("question", WH_QUESTIONS)
def test_standalone_wh_questions_are_not_follow_ups(question: str) -> None:
    assert not is_follow_up(question)
    conversation = Conversation()
    conversation.remember("Who is Aruzhan Duisebaeva?", DUISEBAEVA_ANSWER)
    assert conversation.referents(question) == []


def test_standalone_wh_question_answer_does_not_depend_on_history(engine: Engine) -> None:
    question = "Why was the crackdown seen as sabotage?"
    alone = engine.answer(question)
    assert alone.citations, "quoted (as the answer or as the closest passage)"
    conversation = Conversation()
    engine.answer("Who is Aruzhan Duisebaeva?", conversation)
    assert engine.answer(question, conversation).text == alone.text


def test_names() -> None:
    assert names("Who is Zhanbolat Mamai?") == ["Zhanbolat Mamai"]
    assert names("Who held the protest?") == []
    assert names("Who controls the Assembly of the People of Kazakhstan?") == ["Assembly of the People of Kazakhstan"]
    assert names("Is Mamai still detained?") == ["Mamai"]
    assert names("It happened in November and again in March.") == []
    assert names("Mamai met Mamai.") == ["Mamai"]


def test_referents_after_who_is_x() -> None:
    conversation = Conversation()
    conversation.remember(
        "Who is Zhanbolat Mamai?",
        "Democratic Party leader Zhanbolat Mamai told RFE/RL on November 5 that he had obtained permission. [1]",
    )
    assert conversation.referents("What did he say?") == ["Zhanbolat Mamai"]
    assert conversation.referents("What is his role?") == ["Zhanbolat Mamai"]
    # A standalone question has no referents.
    assert conversation.referents("Which city gave the unregistered party permission for a rally?") == []


def test_referents_after_what_is_x() -> None:
    conversation = Conversation()
    conversation.remember(
        "What is the Majlis?",
        "The 107-seat Majlis is currently dominated by Nazarbaev’s Nur-Otan, which has 84 deputies. [1]",
    )
    assert conversation.referents("Who appoints nine of its seats?") == ["Majlis"]


def test_she_after_who_question_is_the_person_answered() -> None:
    conversation = Conversation()
    conversation.remember("Who held the protest?", DUISEBAEVA_ANSWER)
    referents = conversation.referents("What did she say about the president's promises?")
    assert referents == ["Aruzhan Duisebaeva"]
    assert rewrite("What did she say about the president's promises?", referents) == (
        "What did Aruzhan Duisebaeva say about the president's promises?"
    )


def test_pronoun_after_who_question_prefers_answer_over_asked_name() -> None:
    conversation = Conversation()
    conversation.remember("Who succeeded Nazarbaev?", "The polls are the first since Toqaev succeeded Nazarbaev. [1]")
    assert conversation.referents("When did he take office?") == ["Toqaev"]


def test_no_referents_without_history() -> None:
    assert Conversation().referents("What did she say?") == []


def test_referents_after_abstention_fall_back_to_question() -> None:
    conversation = Conversation()
    conversation.remember("Who is Dimash Alzhanov?", "")
    assert conversation.referents("What did he say about the regime?") == ["Dimash Alzhanov"]


@pytest.mark.parametrize(
    ("question", "referents", "expected"),
    [
        ("What did she say?", ["Aruzhan Duisebaeva"], "What did Aruzhan Duisebaeva say?"),
        ("How long was he detained?", ["Zhanbolat Mamai"], "How long was Zhanbolat Mamai detained?"),
        ("What is his role?", ["Zhanbolat Mamai"], "What is Zhanbolat Mamai’s role?"),
        ("Who appoints nine of its seats?", ["Majlis"], "Who appoints nine of Majlis’ seats?"),
        ("What is their goal?", ["Aq Zhol"], "What is Aq Zhol’s goal?"),
        ("Did they meet him?", ["Mamai", "Toqaev"], "Did Mamai meet him?"),  # only the first pronoun
        ("Why?", ["Nur-Otan"], "Why? (Nur-Otan)"),
        ("And then?", ["Mamai", "Toqaev"], "And then? (Mamai, Toqaev)"),
        ("What did she say?", [], "What did she say?"),
    ],
)
def test_rewrite(question: str, referents: list[str], expected: str) -> None:
    assert rewrite(question, referents) == expected


def test_memory_is_bounded() -> None:
    conversation = Conversation(max_turns=2)
    for i in range(5):
        conversation.remember(f"Question {i}?", f"Answer {i}.")
    assert conversation.exchanges == (Exchange("Question 3?", "Answer 3."), Exchange("Question 4?", "Answer 4."))


def test_reset_forgets() -> None:
    conversation = Conversation()
    conversation.remember("Who is Zhanbolat Mamai?", "Zhanbolat Mamai leads the party. [1]")
    assert conversation.referents("What did he say?")
    conversation.reset()
    assert conversation.exchanges == ()
    assert conversation.referents("What did he say?") == []


def test_zero_turns_remembers_nothing() -> None:
    conversation = Conversation(max_turns=0)
    conversation.remember("Who is Zhanbolat Mamai?", "Zhanbolat Mamai leads the party. [1]")
    assert conversation.exchanges == ()
    assert conversation.referents("What did he say?") == []


def test_engine_follow_up_uses_the_conversation(engine: Engine) -> None:
    conversation = Conversation()
    first = engine.answer("Who held a single-person picket on November 6?", conversation)
    assert first.outcome is Outcome.ANSWERED
    assert "Aruzhan Duisebaeva" in first.text
    follow_up = "What did she say about the president's promises?"
    assert conversation.referents(follow_up)[0] == "Aruzhan Duisebaeva"
    answer = engine.answer(follow_up, conversation)
    assert answer.outcome is Outcome.ANSWERED
    assert "promises" in answer.text
    assert len(conversation.exchanges) == 2
    # Without the conversation, the pronoun has nothing to point to: the same words find less.
    alone = engine.answer(follow_up)
    assert alone.confidence is not None and answer.confidence is not None
    assert alone.confidence < answer.confidence


def test_her_is_personal_at_the_end_and_possessive_before_a_noun() -> None:
    assert rewrite("Who arrested her?", ["Jane Doe"]) == "Who arrested Jane Doe?"
    assert rewrite("What did her party say?", ["Jane Doe"]) == "What did Jane Doe’s party say?"
    assert not is_follow_up("Is it true that the opposition party was banned in May?")
