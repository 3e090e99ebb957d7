"""What bot/russian.py reads in a Russian sentence: numbers, months, names (transliterated) and negation."""

from __future__ import annotations

import pytest

from bot.english import spelling_key
from bot.russian import (
    dates_in,
    is_kazakh,
    is_russian,
    name_key,
    name_matches,
    names_in,
    negated,
    numbers_in,
    points_back,
    transliterate,
)


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Жанболат Мамай", "Zhanbolat Mamai"),
        ("Токаев", "Tokaev"),
        ("Назарбаев", "Nazarbaev"),
        ("Алматы", "Almaty"),
        ("Ак жол", "Ak zhol"),
        ("Щучинск", "Shchuchinsk"),
        ("Цой", "Tsoi"),
        ("Хабар", "Khabar"),
        ("объявил", "obyavil"),
        ("Ёлка", "Elka"),
        ("Nur Otan", "Nur Otan"),
    ],
)
def test_transliteration(cyrillic: str, latin: str) -> None:
    assert transliterate(cyrillic) == latin


@pytest.mark.parametrize(
    ("russian", "english", "same"),
    [
        ("Мамай", "Mamai", True),
        ("Мамая", "Mamai", True),  # genitive
        ("Токаев", "Toqaev", True),
        ("Токаева", "Tokayev", True),
        ("Ак", "Aq", True),
        ("жол", "Zhol", True),
        ("Альжанов", "Alzhanov", True),
        ("Казахстана", "Kazakhstan", True),
        ("Ассамблея", "Assembly", True),  # a translated name, alike in its consonants
        ("Демократической", "Democratic", True),
        ("Назарбаев", "Toqaev", False),
        ("Кошанов", "Mamai", False),
        ("Атамекен", "Auyl", False),
        ("Ак", "Aqtobe", False),  # short names must agree exactly
    ],
)
def test_names_match_across_scripts(russian: str, english: str, same: bool) -> None:
    assert name_matches(russian, [spelling_key(english)]) is same


def test_a_name_key_is_the_english_spelling_key() -> None:
    assert name_key("Токаев") == spelling_key("Tokayev") == spelling_key("Toqaev")
    assert name_key("Мамай") == spelling_key("Mamai")


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("14 ноября", {"november"}),
        ("в ноябре 2020 года", {"november"}),
        ("ноябрь", {"november"}),
        ("22 февраля", {"february"}),
        ("10 января", {"january"}),
        ("в марте и в мае", {"march", "may"}),
        ("9 мая", {"may"}),
        ("в субботу", {"saturday"}),
        ("в среду", {"wednesday"}),
        ("окружающая среда", set()),  # "environment", not Wednesday
        ("Мамай и мама", set()),
        ("маршрут", set()),
    ],
)
def test_russian_dates(text: str, months: set[str]) -> None:
    assert dates_in(text) == months


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("14 ноября", {"14"}),
        ("40 000 членов", {"40000"}),
        ("1,5 процента", {"1.5"}),
        ("84 из 107 мест", {"84", "107"}),
        ("более 1 млн долларов", {"1m"}),
        ("2 миллиарда", {"2bn"}),
        ("на три дня", {"3"}),
        ("трёх активистов", {"3"}),
        ("пяти партий", {"5"}),
        ("одна из партий", set()),
    ],
)
def test_russian_numbers(text: str, numbers: set[str]) -> None:
    assert numbers_in(text) == numbers


def test_names_are_capitalized_words_but_not_the_first() -> None:
    assert names_in("Власти Алматы разрешили митинг партии «Ак жол».") == ["Алматы", "Ак"]
    assert names_in("ЦИК зарегистрировала шесть партий.") == ["ЦИК"]
    assert names_in("Митинг пройдёт 14 ноября.") == []  # a month is a date, not a name


@pytest.mark.parametrize(
    ("text", "negative"),
    [
        ("Мамай не был задержан.", True),
        ("Партии не получают денег.", True),
        ("Ни одно обещание не выполнено.", True),
        ("Нет, не разрешили.", True),
        ("не менее 1000 человек", False),  # "at least"
        ("не только партия", False),
        ("Внешние наблюдатели", False),
    ],
)
def test_negation(text: str, negative: bool) -> None:
    assert negated(text) is negative


def test_russian_and_kazakh_are_told_apart() -> None:
    assert is_russian("Кто такой Жанболат Мамай?")
    assert not is_russian("Жаңболат Мамай кім?") and is_kazakh("Жаңболат Мамай кім?")
    assert not is_russian("Who is Mamai?")


@pytest.mark.parametrize(
    ("question", "follows_up"),
    [
        ("На сколько суток его задержали?", True),
        ("Сколько ей лет?", True),
        ("А коммунисты?", True),
        ("Что они требуют?", True),
        ("На сколько суток задержали Мамая?", False),
        ("Кто такой Мамай?", False),
        # Words that merely start like a pronoun are not one.
        ("Какие партии оппозиционные?", False),
        ("Анализ выборов", False),
    ],
)
def test_a_follow_up_leans_on_a_pronoun_or_opens_with_a(question: str, follows_up: bool) -> None:
    assert points_back(question) is follows_up
