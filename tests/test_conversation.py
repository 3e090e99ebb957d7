"""bot.conversation: follow-up detection, referents, rewriting and bounded memory."""

from __future__ import annotations

import pytest

from bot import english
from bot.conversation import Conversation, Exchange, asked_names, is_follow_up, names, rewrite
from bot.engine import (
    CLOSEST_PREFIX,
    MORE_OF_WHAT_TEXT,
    NO_HISTORY_TEXT,
    NO_MORE_TEXT,
    NOTHING_BEFORE_TEXT,
    Engine,
    Outcome,
)

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


def test_referents_of_a_question_typed_in_lower_case() -> None:
    # The question names its subject without capitals; the answer spells it, after another name.
    conversation = Conversation()
    conversation.remember("what is the green alliance", "Maria Lopez founded the Green Alliance in 2001. [1]")
    assert conversation.referents("who leads it") == ["Green Alliance"]


def test_tell_me_more_without_history_asks_for_a_question(engine: Engine) -> None:
    answer = engine.answer("tell me more", Conversation())
    assert answer.outcome is Outcome.CHAT
    assert answer.text == NOTHING_BEFORE_TEXT
    assert not answer.citations


def _only_new_or_pointed_back_to(quoted: list[str], shown: list[str]) -> bool:
    """Whether a "more" answer quotes something new, and repeats a shown sentence only right before a new one
    that points back to it ("He ...")."""
    new = [q for q in quoted if q not in shown]
    repeats_needed = all(
        i + 1 < len(quoted) and quoted[i + 1] not in shown and english.points_back(quoted[i + 1])
        for i, q in enumerate(quoted)
        if q in shown
    )
    return bool(new) and repeats_needed


def test_tell_me_more_goes_on_without_repeating_until_nothing_is_left(engine: Engine) -> None:
    conversation = Conversation(max_turns=1)  # quotes are remembered longer than the exchanges
    first = engine.answer("Tell me about the Democratic Party", conversation)
    assert first.outcome is Outcome.ANSWERED
    shown = [sentence for sentence, _ in first.quotes]
    for _ in range(60):
        more = engine.answer("tell me more", conversation)
        if more.text == NO_MORE_TEXT:
            assert more.outcome is Outcome.ABSTAINED and not more.citations
            break
        # Below the answer threshold, more is shown as the closest passage and says so.
        assert more.citations and (more.outcome is Outcome.ANSWERED or more.text.startswith(CLOSEST_PREFIX))
        quoted = [sentence for sentence, _ in more.quotes]
        assert _only_new_or_pointed_back_to(quoted, shown), "a 'more' answer repeats an earlier quote"
        shown += quoted
    else:
        pytest.fail("'tell me more' never ran out")
    assert len(shown) > len(first.quotes) + 1


@pytest.mark.parametrize(
    ("question", "answer", "follow_up", "expanded"),
    [
        # The subject is found in the answer however the question typed it, and swapped for the new one.
        (
            "how many seats does the green alliance hold",
            "The Green Alliance holds 12 seats. [1]",
            "and the Liberals?",
            "how many seats does the Liberals hold",
        ),
        (
            "Where was Maria Lopez born?",
            "Maria Lopez was born in Leon. [1]",
            "what about Ana Ruiz",
            "Where was Ana Ruiz born?",
        ),
        # A possessive ends a name: "Smith's Unity Front" names the Unity Front.
        (
            "when was unity front founded",
            "Smith’s Unity Front was founded in 1999. [1]",
            "and the Greens?",
            "when was the Greens founded",
        ),
        # Another romanization of the name.
        (
            "when did chaikovskiy die",
            "Tchaikovsky died in 1893 in Saint Petersburg. [1]",
            "and Rachmaninoff?",
            "when did Rachmaninoff die",
        ),
        # A time narrows the last question.
        (
            "how many seats does the green alliance hold",
            "The Green Alliance holds 12 seats. [1]",
            "and in 2019?",
            "how many seats does the green alliance hold in 2019",
        ),
        # The longest name the question writes, not one inside it or one written later.
        (
            "what is the democratic party of freedonia",
            "Freedonia's Democratic Party of Freedonia was founded by Ana Ruiz. [1]",
            "and the Greens?",
            "what is the Greens",
        ),
        # Nothing to swap, or not an ellipsis: the question stays as it is.
        ("how many seats are there", "There are 90 seats. [1]", "and the senate?", None),
        ("Who is Maria Lopez?", "Maria Lopez leads the Green Alliance. [1]", "and her party?", None),
        ("Who is Maria Lopez?", "Maria Lopez leads the Green Alliance. [1]", "and where was she born?", None),
    ],
)
def test_ellipsis_asks_the_last_question_of_its_new_subject(
    question: str, answer: str, follow_up: str, expanded: str | None
) -> None:
    conversation = Conversation()
    conversation.remember(question, answer)
    assert conversation.expand(follow_up) == expanded


def test_ellipsis_without_history_is_left_alone() -> None:
    assert Conversation().expand("and the Greens?") is None


@pytest.mark.parametrize(
    ("question", "answer", "asked"),
    [
        # In the order the question names them; a name inside a longer one is left out.
        (
            "what is the democratic party of freedonia",
            "Freedonia is small. The Democratic Party of Freedonia was founded by Ana Ruiz. [1]",
            ["Democratic Party of Freedonia"],
        ),
        # "Party" alone, split from "Communist People's Party", names nothing.
        ("what is the party", "The Communist People's Party holds seven seats. [1]", []),
        (
            "what is the communist people's party",
            "The Communist People's Party holds seven seats. [1]",
            ["Communist People's Party"],
        ),
    ],
)
def test_asked_names(question: str, answer: str, asked: list[str]) -> None:
    assert asked_names(question, answer) == asked


def test_quotes_are_remembered_apart_from_the_text_a_model_wrote() -> None:
    conversation = Conversation()
    conversation.remember(
        "Who founded it?", "It was founded by Ana Ruiz, the articles say. [1]", ["Ana Ruiz founded it."]
    )
    assert conversation.quoted("Ana Ruiz founded it.")
    assert not conversation.quoted("It was founded by Ana Ruiz, the articles say.")


def test_tell_me_more_never_repeats_a_closest_passage(engine: Engine) -> None:
    conversation = Conversation()
    first = engine.answer("Where do the activists live?", conversation)
    assert first.text.startswith(CLOSEST_PREFIX)
    more = engine.answer("tell me more", conversation)
    quoted = [sentence for sentence, _ in more.quotes]
    assert more.text == NO_MORE_TEXT or _only_new_or_pointed_back_to(quoted, [s for s, _ in first.quotes])


def test_tell_me_more_without_a_subject_says_what_it_needs(engine: Engine) -> None:
    assert engine.answer("tell me more", Conversation(max_turns=0)).text == NO_HISTORY_TEXT
    assert engine.answer("tell me more").text == NO_HISTORY_TEXT
    conversation = Conversation()
    engine.answer("What are the articles about?", conversation)
    assert engine.answer("tell me more", conversation).text == MORE_OF_WHAT_TEXT


def test_an_answer_says_how_a_follow_up_was_understood(engine: Engine) -> None:
    conversation = Conversation()
    first = engine.answer("Who held a single-person picket on November 6?", conversation)
    assert first.understood is None  # answered as asked
    follow_up = engine.answer("What did she say?", conversation)
    assert follow_up.understood == "What did Aruzhan Duisebaeva say?"
    more = engine.answer("tell me more", conversation)
    assert more.understood == "What did Aruzhan Duisebaeva say?"


def test_the_engine_answers_an_ellipsis_as_the_question_it_stands_for(engine: Engine) -> None:
    conversation = Conversation()
    engine.answer("What did Aruzhan Duisebaeva say?", conversation)
    answer = engine.answer("and Dimash Alzhanov?", conversation)
    assert answer.understood == "What did Dimash Alzhanov say?"
    # Remembered as the expanded question: another ellipsis swaps the new subject.
    assert conversation.exchanges[-1].question == "What did Dimash Alzhanov say?"
