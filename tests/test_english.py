"""bot.english: the recognizers every other module relies on, table-driven and independent of the seed articles."""

from __future__ import annotations

import pytest

from bot import english
from bot.english import AnswerType, SmallTalk


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who founded the company?", AnswerType.PERSON),
        ("whom did the court acquit", AnswerType.PERSON),
        ("Which party won the vote?", AnswerType.PERSON),
        ("hey, do you know who wrote the report?", AnswerType.PERSON),
        ("When did the war end?", AnswerType.DATE),
        ("in what year was the treaty signed", AnswerType.DATE),
        ("what century did the dynasty begin", AnswerType.DATE),
        ("Where is the museum?", AnswerType.PLACE),
        ("in which city was she born", AnswerType.PLACE),
        ("How many people live there?", AnswerType.QUANTITY),
        ("how long is the river", AnswerType.QUANTITY),
        ("How old was the king?", AnswerType.QUANTITY),
        ("What percentage of voters turned out?", AnswerType.QUANTITY),
        ("Why did the talks fail?", AnswerType.REASON),
        ("how come nobody noticed", AnswerType.REASON),
        ("What is a monad?", AnswerType.OTHER),
        ("Tell me about the bridge", AnswerType.OTHER),
    ],
)
def test_answer_type(question: str, kind: AnswerType) -> None:
    assert english.answer_type(question)[0] is kind


@pytest.mark.parametrize(
    ("question", "measured"),
    [
        ("How many seats does the council have?", {"seat"}),
        ("how long is the river", {"long"}),
        ("What percentage of voters turned out?", {"percentag"}),
    ],
)
def test_what_a_quantity_question_measures(question: str, measured: set[str]) -> None:
    assert measured <= set(english.answer_type(question)[1])


@pytest.mark.parametrize(
    ("text", "dated"),
    [
        ("The battle was fought in 1066.", True),
        ("He was crowned in 911 by the bishop.", True),
        ("It was built in the 10th century.", True),
        ("The city grew in the tenth century.", True),
        ("Augustus died in AD 14.", True),
        ("The site dates to 9000 BP.", True),
        ("Settlers arrived around 500 BC.", True),
        ("The rally is planned for November 14.", True),
        ("It happened on 3 May.", True),
        ("Prices rose in the 1990s.", True),
        ("The law passed last week.", True),
        ("They met two years ago.", True),
        ("The council has 107 seats.", False),
        ("She may resign.", False),
        ("Three activists were arrested.", False),
    ],
)
def test_dates_of_any_era(text: str, dated: bool) -> None:
    assert english.mentions_date(text) is dated


@pytest.mark.parametrize(
    ("text", "measured", "found", "next_to_it"),
    [
        ("The river is 6,650 km long.", frozenset({"long"}), True, True),
        ("The river is 6,650 km from the sea.", frozenset({"long"}), True, False),
        ("The council has 107 seats.", frozenset({"seat"}), True, True),
        ("Seven seats went to the party.", frozenset({"seat"}), True, True),
        ("Turnout was 63% this year.", frozenset({"percentag"}), True, True),
        ("Turnout was sixty per cent.", frozenset({"percentag"}), True, True),
        ("A dozen people came.", frozenset(), True, False),
        ("Hundreds of protesters marched.", frozenset({"protest"}), True, True),
        ("The treaty was signed in 1990.", frozenset({"seat"}), False, False),
        ("Nobody came.", frozenset(), False, False),
    ],
)
def test_quantities_of_any_unit(text: str, measured: frozenset[str], found: bool, next_to_it: bool) -> None:
    assert english.mentions_quantity(text, measured) == (found, next_to_it)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Zhanbolat", "Janbolat"),
        ("Aq", "Ak"),
        ("Duisebaeva", "Duysebayeva"),
        ("Toqaev", "Tokayev"),
        ("Tchaikovsky", "Chaikovsky"),
        ("Dostoevsky", "Dostoyevsky"),
        ("Müller", "Muller"),
        ("Khrushchev", "Hrushchev"),
    ],
)
def test_spellings_of_one_name_share_a_key(a: str, b: str) -> None:
    assert english.spelling_key(a) == english.spelling_key(b)


@pytest.mark.parametrize(("a", "b"), [("river", "rival"), ("Paris", "Persia"), ("ban", "bin"), ("Kiev", "Kirov")])
def test_different_words_keep_different_keys(a: str, b: str) -> None:
    assert english.spelling_key(a) != english.spelling_key(b)


@pytest.mark.parametrize(
    ("sentence", "dangling"),
    [
        ("It was commissioned by the bishop.", True),
        ("He was detained for three days.", True),
        ("Their leader denied it.", True),
        ("This prompted a protest.", True),
        ("“They will not stop us,” she said.", True),
        ("However, the court refused.", True),
        ("The court refused.", False),
        ("Italy won the cup.", False),
        ("Items on the list were sold.", False),
        ("There were three candidates.", False),
    ],
)
def test_sentences_that_point_back(sentence: str, dangling: bool) -> None:
    assert english.points_back(sentence) is dangling


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Who is Jane Doe?", ["Jane Doe"]),
        ("What did the Bank of England say in May?", ["Bank of England"]),
        ("The Assembly of the People met Smith.", ["Assembly of the People", "Smith"]),
        ("when was it built", []),
        ("As of November 2020: the council met.", []),
        ("As of May: Jane Doe resigned.", ["Jane Doe"]),
    ],
)
def test_name_spans(text: str, names: list[str]) -> None:
    assert english.name_spans(text) == names


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("hi", SmallTalk.GREETING),
        ("Hello there!", SmallTalk.GREETING),
        ("good morning", SmallTalk.GREETING),
        ("thanks!", SmallTalk.THANKS),
        ("ok thank you so much", SmallTalk.THANKS),
        ("bye", SmallTalk.GOODBYE),
        ("what can you do?", SmallTalk.CAPABILITIES),
        ("Who are you", SmallTalk.CAPABILITIES),
        ("help", SmallTalk.CAPABILITIES),
        ("hi, who won the election?", None),
        ("thanks to whom did the law pass?", None),
        ("what can you do about inflation?", None),
        ("and thanks!", SmallTalk.THANKS),
        ("so, bye", SmallTalk.GOODBYE),
        ("and the greens?", None),
    ],
)
def test_small_talk(message: str, kind: SmallTalk | None) -> None:
    assert english.small_talk(message) is kind


@pytest.mark.parametrize(
    ("message", "overview"),
    [
        ("What are the articles about?", True),
        ("summarize", True),
        ("Give me an overview", True),
        ("what's in the news", True),
        ("summarize the articles please", True),
        ("What is the article about the election about?", False),
        ("summarize the verdict", False),
        ("tl;dr", True),
        ("give me the gist", True),
        ("What are the charges about?", False),
    ],
)
def test_overview_requests(message: str, overview: bool) -> None:
    assert english.asks_overview(message) is overview


@pytest.mark.parametrize(
    ("message", "more"),
    [
        ("tell me more", True),
        ("Tell me more.", True),
        ("more", True),
        ("more please", True),
        ("more details?", True),
        ("go on", True),
        ("what else?", True),
        ("anything else", True),
        ("ok, tell me more about it", True),
        ("can you tell me more", True),
        ("and then what?", True),
        ("elaborate please", True),
        # A subject of its own makes it a question.
        ("tell me more about the election", False),
        ("what more do they want", False),
        ("more seats?", False),
        ("anything else about the budget?", False),
        ("go on strike", False),
    ],
)
def test_requests_for_more(message: str, more: bool) -> None:
    assert english.asks_more(message) is more


@pytest.mark.parametrize(
    ("question", "subject", "replaces"),
    [
        ("and the Greens?", "the Greens", True),
        ("And Paris", "Paris", True),
        ("what about the labour party?", "the labour party", True),
        ("and the United States?", "the United States", True),
        # A time or a circumstance narrows the last question instead.
        ("how about 2019?", "2019", False),
        ("and in 2019?", "in 2019", False),
        ("what about now", "now", False),
        ("and before the election?", "before the election", False),
        # Not an ellipsis: a pronoun to resolve, a question of its own, a statement, small talk.
        ("and his wife?", None, None),
        ("and why?", None, None),
        ("and where was it held?", None, None),
        ("what about it", None, None),
        ("how about you", None, None),
        ("and thanks", None, None),
        ("and Smith resigned?", None, None),
        ("who won?", None, None),
        ("and then the prime minister resigned and the party split and everyone left", None, None),
    ],
)
def test_ellipsis(question: str, subject: str | None, replaces: bool | None) -> None:
    found = english.ellipsis(question)
    assert ((found.text, found.replaces_subject) if found else (None, None)) == (subject, replaces)


@pytest.mark.parametrize(
    ("question", "explain"),
    [
        ("why did the talks fail", True),
        ("How did the police respond?", True),
        ("tell me about the mayor", True),
        ("the green party?", True),
        ("How many seats?", False),
        ("Who won?", False),
        ("is the party registered", False),
    ],
)
def test_questions_that_want_a_passage(question: str, explain: bool) -> None:
    assert english.wants_explanation(question) is explain


@pytest.mark.parametrize(
    ("question", "latest"),
    [("Who leads the party now?", True), ("what is the latest on the trial", True), ("Who led the party?", False)],
)
def test_questions_about_the_present(question: str, latest: bool) -> None:
    assert english.asks_latest(question) is latest


def test_words_and_terms() -> None:
    assert english.words("The People’s Party’s leader") == ["the", "people", "party", "leader"]
    assert english.terms("He led the parties") == ["lead", "parti"]
    assert "one" not in english.STOPWORDS and "two" not in english.STOPWORDS


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("how are you doing", SmallTalk.GREETING),
        ("hey, how's it going?", SmallTalk.GREETING),
        ("lol", SmallTalk.ACKNOWLEDGEMENT),
        ("ok cool", SmallTalk.ACKNOWLEDGEMENT),
        ("ok, who won?", None),
    ],
)
def test_more_small_talk(message: str, kind: SmallTalk | None) -> None:
    assert english.small_talk(message) is kind


@pytest.mark.parametrize(
    ("message", "overview"),
    [
        ("brief me on the news please", True),
        ("what do the articles say", True),
        ("what are the main points of the articles", True),
        ("what do the articles say about the budget", False),
        ("what is the main point of the budget", False),
    ],
)
def test_requests_naming_only_the_collection_are_overviews(message: str, overview: bool) -> None:
    assert english.asks_overview(message) is overview


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (lambda: english.points_back("Then-president Smith spoke."), False),
        (lambda: english.points_back("Both parties agreed."), False),
        (lambda: english.asks_overview("Who is the source?"), False),
        (lambda: english.asks_overview("what about the sources?"), False),
        (lambda: english.mentions_quantity("About 1500 people were detained.", frozenset({"peopl"})), (True, True)),
        (lambda: english.mentions_reason("The shop is open for business."), False),
        (lambda: english.mentions_reason("She spoke over the phone."), False),
        (lambda: english.mentions_reason("It closed because of the storm."), True),
        (lambda: english.mentions_date("Chapter 7 of 120 pages"), False),
        (lambda: english.date_sort_key("Nov 6, 2020") < english.date_sort_key("2019-01"), True),
    ],
)
def test_recognisers_do_not_overreach(check: object, expected: object) -> None:
    assert callable(check)
    assert check() == expected


@pytest.mark.parametrize(
    "text",
    [
        "Turnout was 63% this year, up from sixty per cent in 2015.",
        "The council has 107 seats; seven went to the party in 1990.",
        "Jane Doe, the party's leader, met the President of the Commission in Paris.",
        "Officials said hundreds of protesters marched.",
        "Nobody came.",
    ],
)
def test_what_a_text_says_read_once_gives_what_reading_it_each_time_gives(text: str) -> None:
    numbers, names, nouns = english.number_mentions(text), english.name_stems(text), english.person_nouns(text)
    for measured in (frozenset(), frozenset({"seat"}), frozenset({"percentag"}), frozenset({"year"})):
        assert english.quantity_among(numbers, measured) == english.mentions_quantity(text, measured)
    for asked in (frozenset(), frozenset({"jane", "doe"}), frozenset({"parti", "leader", "offici"})):
        assert english.new_name_among(names, asked) is english.mentions_new_name(text, asked)
        assert bool(nouns - asked) is english.mentions_person_noun(text, asked)


@pytest.mark.parametrize(
    ("text", "name", "found"),
    [
        ("how many seats does nur otan have", "Nur-Otan", "nur otan"),
        ("what is the green alliance", "Green Alliance", "the green alliance"),
        ("who is janbolat mamay", "Zhanbolat Mamai", "janbolat mamay"),
        ("when did chaikovskiy die", "Tchaikovsky", "chaikovskiy"),
        ("who leads the greens", "Green Alliance", None),
        ("who is mamai", "Zhanbolat Mamai", None),  # every word of the name, in order
    ],
)
def test_find_name_as_typed(text: str, name: str, found: str | None) -> None:
    span = english.find_name(text, name)
    assert (text[span[0] : span[1]] if span else None) == found


@pytest.mark.parametrize(
    ("span", "parts"),
    [
        ("Smith’s Unity Front", ["Smith’s Unity Front", "Smith", "Unity Front"]),
        ("Communist People's Party", ["Communist People's Party"]),  # "Party" alone names nothing
        ("Green Alliance", ["Green Alliance"]),
    ],
)
def test_name_parts(span: str, parts: list[str]) -> None:
    assert english.name_parts(span) == parts
