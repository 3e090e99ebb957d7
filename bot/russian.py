"""What the bot knows about Russian: numbers, dates, names and negation in a Russian sentence, read so that they
can be compared with English passages (bot/writer.py), and the pronouns that make a question a follow-up.
English knowledge lives in bot/english.py; this is its Russian counterpart, and the only place that knows Russian
words.

- Numbers: digits are script-free; Russian writes "40 000" (a space between thousands) and "1,5" (a decimal
  comma), "5 млн" for "5m", and the counted words from two to ten ("три дня", "трёх активистов") in any case.
- Dates: month and weekday names in any case ("14 ноября", "в ноябре") become the English names ("november"),
  so that "14 ноября" is checked as the number 14 and the month November, as "November 14" is in English.
- Names: a capitalized word is transliterated (Cyrillic → Latin) and compared with the passages' words by
  `english.spelling_key`, loosely enough for Russian endings ("Ельцина" is "Yeltsin") and for the usual
  romanizations ("Чайковский" is "Tchaikovsky", "Жуков" is "Zhukov" or "Joukov", "Казань" is "Kazan").

Kazakh (its own letters ә ғ қ ң ө ұ ү һ і) is not Russian: its words are not read here, and `is_kazakh` says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from bot.english import spelling_key
from bot.multilingual import CYRILLIC_SHARE, cyrillic_share

# Russian letters to Latin, as English-language news romanizes them (BGN/PCGN-like: "ж" zh, "х" kh, "ц" ts).
_LATIN = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i i k l m n o p r s t u f kh ts ch sh shch - y - e yu ya".split(),
        strict=True,
    )
) | {"ъ": "", "ь": ""}
_KAZAKH_LETTERS = frozenset("әғқңөұүһі")
_VOWELS = re.compile(r"[aeiouy]")

# Counted words, any case: "три", "трёх", "трем" are 3. "один" is left out, as in English ("one of them").
_COUNTED = {
    form: value
    for value, forms in {
        2: "два две двух двум двумя",
        3: "три трёх трех трём трем тремя",
        4: "четыре четырёх четырех четырём четырем четырьмя",
        5: "пять пяти пятью",
        6: "шесть шести шестью",
        7: "семь семи семью",
        8: "восемь восьми восемью",
        9: "девять девяти девятью",
        10: "десять десяти десятью",
    }.items()
    for form in forms.split()
}
# Digits with a space (or a no-break or thin space) between thousands, or with a decimal comma or point.
_NUMBER = re.compile(
    r"((?<![\d.,])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d.,]\d)|\d+(?:[.,]\d+)?)"
    r"(?:\s*(млн|миллион\w*|млрд|миллиард\w*)(?![^\W\d_]))?"
)
# Millions and billions are written as bot/writer.py reads English numbers: "5 млн" is "5m", as "$5m" is.
_MULTIPLIERS = {"млн": "m", "миллион": "m", "млрд": "bn", "миллиард": "bn"}
_MONTHS = (
    ("январ", "january"),
    ("феврал", "february"),
    ("март", "march"),
    ("апрел", "april"),
    ("июн", "june"),
    ("июл", "july"),
    ("август", "august"),
    ("сентябр", "september"),
    ("октябр", "october"),
    ("ноябр", "november"),
    ("декабр", "december"),
)
_MONTH_WORD = re.compile(r"(январ|феврал|март|апрел|июн|июл|август|сентябр|октябр|ноябр|декабр)(?:ь|я|е|ю|ем|а|у|ом)?")
_MAY = re.compile(r"ма(?:й|я|е|ем|ю)")
_WEEKDAYS = (
    ("понедельник", "monday"),
    ("вторник", "tuesday"),
    ("четверг", "thursday"),
    ("пятниц", "friday"),
    ("суббот", "saturday"),
    ("воскресень", "sunday"),
)
# "среда" is also "environment": Wednesday only after a preposition of time ("в среду", "до среды").
_WEDNESDAY = re.compile(r"\b(?:в|во|до|по|к|с|со|на)\s+сред(?:у|ы|е|ам)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_NEGATION = re.compile(r"(?<![^\W\d_])(?:не|нет|ни|никогда|никто|ничего|ничто|никак\w*|нельзя|без)(?![^\W\d_])")
# "Не менее 1000" is "at least 1,000", "не только" is "not only": a "не" that negates nothing.
_NOT_NEGATION = re.compile(r"(?<![^\W\d_])не\s+(?:менее|более|меньше|больше|только|раз|позднее|позже|ранее|раньше)\b")


# Pronouns standing for someone or something named before ("на сколько суток его задержали?", "сколько ей
# лет?"), and "а" opening an ellipsis ("а коммунисты?"): a question with one follows up the last exchange.
_POINTING_BACK = re.compile(
    r"(?<![^\W\d_])(?:он|она|оно|они|его|её|ее|ему|ей|им|ими|их|нём|нем|ней|них|этого|этому|этом|тогда|там)"
    r"(?![^\W\d_])",
    re.IGNORECASE,
)
_ELLIPSIS = re.compile(r"^\W*а\s", re.IGNORECASE)


def points_back(question: str) -> bool:
    """Whether a Russian question leans on the last exchange: a pronoun for what it named, or "а …?"."""
    return bool(_POINTING_BACK.search(question) or _ELLIPSIS.match(question))


def is_russian(text: str) -> bool:
    """Whether a text is taken for Russian: mostly Cyrillic (as the multilingual leg decides), and not Kazakh."""
    return cyrillic_share(text) >= CYRILLIC_SHARE and not is_kazakh(text)


def is_kazakh(text: str) -> bool:
    """Whether a Cyrillic text is Kazakh rather than Russian: it uses a letter Russian does not have."""
    return any(ch in _KAZAKH_LETTERS for ch in text.lower())


def transliterate(text: str) -> str:
    """Cyrillic letters to Latin ones ("Жуков" → "Zhukov"); other characters are kept."""
    result = []
    for ch in text:
        latin = _LATIN.get(ch.lower())
        if latin is None:
            result.append(ch)
        else:
            result.append(latin.capitalize() if ch.isupper() and latin else latin)
    return "".join(result)


def numbers_in(text: str) -> set[str]:
    """Numbers as canonical strings ("40 000" → "40000", "1,5" → "1.5", "трёх" → "3"), as bot/writer.py
    reads English ones."""
    found = set()
    for match in _NUMBER.finditer(text):
        digits = re.sub(r"[ \u00a0\u202f]", "", match.group(1)).replace(",", ".")
        if "." in digits:
            digits = digits.rstrip("0").rstrip(".")
        word = (match.group(2) or "").lower()
        unit = next((suffix for prefix, suffix in _MULTIPLIERS.items() if word.startswith(prefix)), "")
        found.add(f"{digits.lstrip('0') or '0'}{unit}")
    found |= {str(_COUNTED[w]) for w in _words(text) if w in _COUNTED}
    return found


def dates_in(text: str) -> set[str]:
    """The English names of the months and weekdays a Russian text names ("14 ноября" → {"november"})."""
    found = set()
    for word in _words(text):
        month = _MONTH_WORD.fullmatch(word)
        if month:
            found.add(dict(_MONTHS)[month.group(1)])
        elif _MAY.fullmatch(word):
            found.add("may")
        else:
            found |= {english for stem, english in _WEEKDAYS if word.startswith(stem)}
    if _WEDNESDAY.search(text):
        found.add("wednesday")
    return found


def names_in(sentence: str) -> list[str]:
    """Capitalized Cyrillic words, but a sentence's first word only when it is an acronym ("ЦИК"): any first
    word is capitalized, and Russian capitalizes little else, so "Власти Казани" names only Kazan. Month names
    are dates, not names."""
    tokens = _WORD.findall(sentence)
    found: list[str] = []
    for i, token in enumerate(tokens):
        if not token[0].isupper() or not _is_cyrillic_word(token) or dates_in(token):
            continue
        if i == 0 and not (len(token) > 1 and token.isupper()):
            continue
        if token not in found:
            found.append(token)
    return found


def name_key(name: str) -> str:
    """A Cyrillic name as `english.spelling_key` reduces a romanized one: "Ельцин" and "Yeltsin" get one key."""
    return spelling_key(transliterate(name).replace("-", ""))


def name_matches(name: str, keys: Iterable[str]) -> bool:
    """Whether a Cyrillic name is one of the words whose spelling keys are `keys`.

    Loose on purpose, since a Russian name takes endings ("Токаева", "Мамаю") and a translated one is spelled
    like its English cognate only in its consonants ("Ассамблея"/"Assembly", "Демократическая"/"Democratic"):
    the keys agree, or share a start of at least four letters that leaves at most two letters of the shorter
    one, or their consonants do the same ("c" read as "k").
    """
    own = name_key(name)
    own_consonants = _consonants(own)
    for key in keys:
        if key == own or _same_start(own, key):
            return True
        if _same_start(own_consonants, _consonants(key)):
            return True
    return False


def negated(text: str) -> bool:
    """Whether a Russian text says "not", "no", "never", "without" ..."""
    return bool(_NEGATION.search(_NOT_NEGATION.sub(" ", text.lower())))


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("ё", "е"))


def _is_cyrillic_word(word: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in word)


@lru_cache(maxsize=65536)
def _consonants(key: str) -> str:
    return _VOWELS.sub("", key.replace("c", "k"))


def _same_start(a: str, b: str) -> bool:
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared >= 4 and shared >= min(len(a), len(b)) - 2
