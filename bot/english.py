"""What the bot knows about the English language, in one place.

Words and stems for lexical search, stopwords, question words and answer types, pronouns that point back,
months and number words, dates of any era, quantities of any unit, names and their spellings, and the short
messages that are not questions (greetings, thanks, a request for an overview). The cleaner, the chunker, the
answer scorer, the follow-up resolver and the example picker all use this module; none keeps a copy.

Nothing here knows about particular articles: every list is ordinary English.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import Stemmer

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either else ever few for from further get
    got had has have having he her here hers herself him himself his how i if in into is it its itself just
    let like may me might more most much must my myself neither no nor not now of off on once only or other
    ought our ours ourselves out over own per please quite rather really same say said says she should since so
    some such tell than that the their theirs them themselves then there these they this those through thus to
    too under until up upon us very via was we were what whatever when where whether which while who whom whose
    why will with within without would yet you your yours yourself yourselves
    anything something nothing thing things know many besides regarding although though together
    instead another others among amongst already still even never always often whereas""".split()
)
# Words that frame a question rather than name its subject ("Can you explain ...", "What does the article say").
QUESTION_FRAME = frozenset(
    """explain describe description tell mean means meaning happen happened happens think know mention mentioned
    talk summarize summarise summary detail details info information article articles question answer kind sort
    type give find hey hi hello ok okay wonder wondering curious""".split()
)
QUESTION_WORDS = frozenset("who whom whose what which when where why how".split())
AUXILIARIES = frozenset("is are was were do does did can could will would should has have had may might".split())
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand
    thousands million millions billion billions trillion dozen dozens half quarter third thirds twice
    several""".split()
)
ORDINAL_WORDS = frozenset(
    """first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth
    fifteenth sixteenth seventeenth eighteenth nineteenth twentieth twenty-first""".split()
)
# Words that end with a full stop without ending a sentence (the chunker's sentence splitter).
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st jr sr gen col lt sgt capt gov sen rep pres rev hon messrs mt ft vs etc al
    inc ltd co corp bros dept univ est approx vol fig jan feb mar apr jun jul aug sep sept oct nov dec
    u.s u.k u.n e.u e.g i.e a.m p.m ca""".split()
)
NUMBER_ABBREVIATIONS = frozenset({"no", "nos"})

# Irregular past forms the stemmer leaves alone: "led" must match "leads", "held" match "hold".
_IRREGULAR = dict(
    pair.split(":")
    for pair in """led:lead held:hold said:say told:tell took:take taken:take gave:give given:give won:win
    began:begin begun:begin brought:bring bought:buy built:build chose:choose chosen:choose came:come
    did:do done:do drove:drive driven:drive fell:fall fallen:fall felt:feel fought:fight found:find fled:flee
    forbade:forbid forbidden:forbid got:get gotten:get went:go gone:go grew:grow grown:grow heard:hear hid:hide
    hidden:hide kept:keep knew:know known:know left:leave lost:lose made:make meant:mean met:meet paid:pay
    ran:run rose:rise risen:rise saw:see seen:see sought:seek sold:sell sent:send shot:shoot shut:shut
    spoke:speak spoken:speak spent:spend stood:stand struck:strike swore:swear sworn:swear taught:teach
    thought:think threw:throw thrown:throw understood:understand wrote:write written:write arisen:arise
    arose:arise wore:wear worn:wear""".split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return str(_stemmer.stemWord(_IRREGULAR.get(word, word)))


def words(text: str) -> list[str]:
    """Lower-case words, possessives dropped ("People’s" → "people"); hyphenated names split."""
    return [_bare(word) for word in _WORD.findall(text.lower())]


def _bare(word: str) -> str:
    """A lower-case word without its possessive ("people’s" → "people")."""
    if word.endswith(("'s", "’s")):
        word = word[:-2]
    return word.replace("’", "'")


def terms(text: str) -> list[str]:
    """Stemmed content words, in order, with repeats: the unit of lexical search."""
    return [stem(word) for word in words(text) if word not in STOPWORDS]


def content_words(text: str, *, numbers: bool = False) -> list[str]:
    """Distinct unstemmed content words, for comparing words by meaning or spelling (numbers too, if asked)."""
    return list(dict.fromkeys(w for w in words(text) if w not in STOPWORDS and (numbers or not w.isdigit())))


def function_word_share(text: str) -> float:
    """The share of a text's words that are stopwords: prose has many (about 0.4), labels and lists few."""
    found = words(text)
    return sum(1 for w in found if w in STOPWORDS) / len(found) if found else 0.0


# --- Spelling -----------------------------------------------------------------------------------------------

# Romanizations of the same sounds (Cyrillic and Turkic names above all): "Zhukov" / "Joukov",
# "Tchaikovsky" / "Chaikovskiy", "Qazaqstan" / "Kazakhstan", "Yeltsin" / "Eltsin".
_TRANSLITERATION = (
    ("dzh", "j"),
    ("zh", "j"),
    ("kh", "h"),
    ("ts", "c"),
    ("tch", "ch"),
    ("sch", "sh"),
    ("q", "k"),
    ("ck", "k"),
    ("ph", "f"),
    ("w", "v"),
    ("ye", "e"),
    ("yu", "u"),
    ("ya", "a"),
    ("yo", "o"),
    ("iy", "i"),
    ("ij", "i"),
    ("y", "i"),
    ("ou", "u"),
)


@lru_cache(maxsize=65536)
def spelling_key(word: str) -> str:
    """A word reduced to how it sounds across romanizations: accents, doubled letters and variant spellings
    of one sound removed, so that names spelled two ways get one key."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    key = "".join(ch for ch in decomposed if ch.isalnum())
    for written, sound in _TRANSLITERATION:
        key = key.replace(written, sound)
    return re.sub(r"(.)\1+", r"\1", key)


def spelling_tolerance(word: str) -> int:
    """How many edits (including a swap of neighbours) still spell the same word: none for short words."""
    return 0 if len(word) <= 3 else 1 if len(word) <= 7 else 2


# --- Questions ----------------------------------------------------------------------------------------------


class AnswerType(Enum):
    """The kind of answer a question asks for."""

    PERSON = "person or organisation"
    DATE = "date or time"
    QUANTITY = "number or measure"
    PLACE = "place"
    REASON = "reason"
    OTHER = "anything"


# Words after "how many"/"how long" that name what is counted or measured are not the question's subject.
_QUANTITY_OPENERS = re.compile(
    r"^(?:how\s+(?:many|much|long|old|far|tall|high|big|large|wide|deep|often|heavy|fast|soon)"
    r"|(?:what|which)\s+(?:number|percentage|share|amount|proportion|size|population|length|distance|area)"
    r"|(?:what|which)\s+per\s?cent)\b"
)
_DATE_OPENERS = re.compile(
    r"^(?:when|since when|until when|how long ago"
    r"|(?:what|which|in what|in which)\s+(?:year|years|date|day|month|time|period|era|century|decade|age))\b"
)
_PLACE_OPENERS = re.compile(
    r"^(?:where|from where"
    r"|(?:what|which|in what|in which|to what|to which)\s+(?:city|country|place|region|town|state|location"
    r"|province|area|nation|continent|village|capital))\b"
)
_PERSON_OPENERS = re.compile(
    r"^(?:who|whom|whose|by whom"
    r"|(?:what|which)\s+(?:person|people|man|woman|group|party|organi[sz]ation|company|leader|king|ruler"
    r"|official|politician|president|minister|activist))\b"
)
_REASON_OPENERS = re.compile(r"^(?:why|how come|for what reason|what (?:caused|led to|was the reason))\b")
# Questions that want a few sentences rather than a fact: reasons, ways, descriptions.
_EXPLAIN_OPENERS = re.compile(
    r"^(?:why|how(?!\s+(?:many|much|long|old|far|tall|high|big|large|wide|deep|often|heavy|fast|soon)\b)"
    r"|tell\s+me|(?:can|could)\s+you\s+(?:tell|explain|describe)|explain|describe|what\s+(?:do|does)\s+(?:we|the"
    r"\s+articles?|it)\s+(?:know|say)|what\s+happened|what\s+about|give\s+me)\b"
)
_LEADING_FILLER = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|well|please|and|but|also)\b[\s,!.]*"
    r"|(?:do|does)\s+(?:you|anyone|the\s+articles?)\s+know\s+|i\s+(?:want|would\s+like)\s+to\s+know\s+"
    r"|(?:can|could)\s+you\s+(?:please\s+)?(?:tell\s+me\s+)?)+"
)


def question_core(text: str) -> str:
    """The question in lower case without greetings and politeness before it ("hey, do you know who ...")."""
    return _LEADING_FILLER.sub("", text.lower().strip()).strip()


def answer_type(question: str) -> tuple[AnswerType, frozenset[str]]:
    """What kind of answer a question wants, and the stems of what a quantity counts or measures
    ("seats" in "how many seats", "long" in "how long")."""
    core = question_core(question)
    quantity = _QUANTITY_OPENERS.match(core)
    if quantity:
        rest = terms(core[quantity.end() :])[:1]
        measured = quantity.group().split()[-1]
        return AnswerType.QUANTITY, frozenset({stem(measured), *rest} - {"mani", "much", "number", "amount"})
    if _DATE_OPENERS.match(core):
        return AnswerType.DATE, frozenset()
    if _PLACE_OPENERS.match(core):
        return AnswerType.PLACE, frozenset()
    if _PERSON_OPENERS.match(core):
        return AnswerType.PERSON, frozenset()
    if _REASON_OPENERS.match(core):
        return AnswerType.REASON, frozenset()
    return AnswerType.OTHER, frozenset()


def wants_explanation(question: str) -> bool:
    """ "Why", "how" and "tell me about" questions: a short passage answers them better than one sentence."""
    core = question_core(question)
    if _EXPLAIN_OPENERS.match(core):
        return True
    # A bare subject ("the Green party?", "the election") asks to hear about it.
    found = words(core)
    return 0 < len(found) <= 4 and not (found[0] in QUESTION_WORDS or found[0] in AUXILIARIES)


# --- Recognizers for answer types ---------------------------------------------------------------------------

_MONTH_NAMES = "|".join(m.capitalize() for m in MONTHS) + "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_DAY_NAMES = "|".join(d.capitalize() for d in WEEKDAYS)
_ORDINAL = r"(?:\d{1,2}(?:st|nd|rd|th)|" + "|".join(sorted(ORDINAL_WORDS, key=len, reverse=True)) + ")"
# Case-sensitive on purpose: "May" is a month, "may" is not.
_DATE = re.compile(
    rf"\b(?:(?:{_MONTH_NAMES})\b\.?(?:\s+\d{{1,2}}\b)?|\d{{1,2}}\s+(?:{_MONTH_NAMES})\b|(?:{_DAY_NAMES})\b"
    r"|[12]\d{3}s?\b|\d{1,4}\s*(?:AD|BC|BCE|CE|BP)\b|(?:AD|A\.D\.)\s*\d{1,4}\b|'\d0s\b"
    r"|(?:[Ii]n|[Ss]ince|[Uu]ntil|[Aa]round|circa|c\.|year|[Bb]efore|[Aa]fter)\s+\d{3}\b"
    rf"|{_ORDINAL}[\s-]+(?:century|centuries|millennium|millennia)\b"
    r"|(?:[Ll]ast|[Nn]ext|[Tt]his|[Ee]arlier|[Ll]ater)\s+(?:week|month|year|decade|century)\b"
    r"|[Yy]esterday|[Tt]oday|[Tt]omorrow|\b(?:years?|months?|weeks?|days?|decades?|centuries)\s+ago\b)"
)
_NUMBER = re.compile(
    r"(?:[$€£¥]\s?)?\b\d[\d,.]*(?:\s?(?:%|k|m|bn|km|kg|cm|mm))?\b|\b(?:a|one)\s+(?:few|couple)\b|\b(?:"
    + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
    + r")\b(?:-\w+)?",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"\d\s?%|\bper\s?cent\b|\bpercent", re.IGNORECASE)
_NAME = re.compile(r"[A-Z][\w’'-]*(?:\s+(?:of\s+the\s+|of\s+|the\s+|de\s+|von\s+|al-)?[A-Z][\w’'-]*)*")
_REASON_CUES = re.compile(
    r"\b(?:because|due to|owing to|as a result|so that|in order to|therefore|thus|reason|caused|led to"
    r"|resulted in|thanks to|on the grounds that)\b",
    re.IGNORECASE,
)
# Nouns for people and bodies of people: "the party's leader" answers "who".
_PERSON_NOUNS = frozenset(
    stem(w)
    for w in """leader president minister journalist activist member chairman chair head founder spokesman
    spokeswoman spokesperson official officials authorities government party commission court police
    opposition movement council king queen emperor duke lord bishop pope general commander director chief
    author scientist researcher professor manager owner people group company organisation organization
    agency ministry parliament army""".split()
)


def mentions_date(text: str) -> bool:
    """A date or time of any era: "November 5", "1066", "AD 14", "9000 BP", "the 10th century", "last week"."""
    return bool(_DATE.search(text))


@dataclass(frozen=True)
class NumberMention:
    """A number in a text as `quantity_among` weighs it: a percent sign or word right after it, the stems of
    the first terms from it on (what it counts), and whether it is a bare year."""

    percent: bool
    following: frozenset[str]
    year: bool


def number_mentions(text: str) -> tuple[NumberMention, ...]:
    """Every number in the text (digits or words, any unit), read once so that a scorer can keep them and weigh
    them against each question's measure without reading the text again."""
    return tuple(
        NumberMention(
            percent=bool(_PERCENT.search(text, match.start(), match.end() + 9)),
            following=frozenset(terms(text[match.start() : match.end() + 40])[:4]),
            year=bool(re.fullmatch(r"[12]\d{3}", match.group())),
        )
        for match in _NUMBER.finditer(text)
    )


def quantity_among(numbers: tuple[NumberMention, ...], measured: frozenset[str]) -> tuple[bool, bool]:
    """`mentions_quantity` of the text these numbers were read from."""
    wants_percent = bool(measured & {"percentag", "share", "proport", "cent"})
    found = False
    for number in numbers:
        if (wants_percent and number.percent) or measured & number.following:
            return True, True
        # "in 1990" dates the sentence; it counts nothing unless the question asks in years.
        if number.year and not measured & {"year", "old", "long"}:
            continue
        found = True
    return found, False


def mentions_quantity(text: str, measured: frozenset[str] = frozenset()) -> tuple[bool, bool]:
    """Whether the text holds a number (digits or words, any unit), and whether one is followed closely by
    what the question counts or measures."""
    return quantity_among(number_mentions(text), measured)


def name_spans(text: str) -> list[str]:
    """Capitalized names in order, without a capitalized first word that is only a question or stop word."""
    found: list[str] = []
    for match in _NAME.finditer(text):
        name = match.group()
        first, _, rest = name.partition(" ")
        if first.lower() in QUESTION_WORDS | STOPWORDS | AUXILIARIES:
            # "As of November", "The Party of X": what follows a capitalized function word may start with one.
            name = re.sub(r"^(?:(?:of|the|de|von)\s+)+", "", rest)
        lowered = name.lower()
        if name and lowered not in STOPWORDS and lowered not in MONTHS + WEEKDAYS and name not in found:
            found.append(name)
    return found


_SPEAKER = re.compile(r"([A-Z][\w-]+(?: [A-Z][\w-]+)+)(?:,[^,.]{0,80},)? (?:told|said|says|added|wrote|stated)\b")
_ORGANISATION = re.compile(
    r"\b(?:Party|Commission|Assembly|Council|Movement|Ministry|Parliament|Court|Union|Committee|Agency|Bank"
    r"|Company|Corporation|Association|Organi[sz]ation|Government|Department|Office|Service|Institute)\b"
)


def is_organisation(name: str) -> bool:
    """A name that ends in, or holds, a word for a body of people ("the Central Election Commission")."""
    return bool(_ORGANISATION.search(name))


def quoted_speakers(text: str) -> list[str]:
    """People quoted in a text ("Jane Doe, a lawyer, told ..."), in order, with repeats."""
    return [
        match.group(1)
        for match in _SPEAKER.finditer(text)
        if not match.group(1).startswith("The ") and not is_organisation(match.group(1))
    ]


def name_parts(span: str) -> list[str]:
    """A name span and the names within it: "Smith's Unity Front" names Smith and the Unity Front too, but
    "Workers' People's Party" is one name (a bare "Party" names nothing)."""
    parts = re.split(r"['’]s\s+", span)
    if len(parts) == 1 or any(len(words(part)) == 1 and is_organisation(part) for part in parts[1:]):
        return [span]
    return [span, *parts]


def find_name(text: str, name: str) -> tuple[int, int] | None:
    """Where `text` writes the name as a user may type it, from the article before it ("the green alliance"),
    in any case, with any separators ("sinn fein" for "Sinn-Fein") and in any romanization ("chaikovskiy" for
    "Tchaikovsky"): its start and end, or None."""
    wanted = [spelling_key(w) for w in words(name)]
    tokens = list(_WORD.finditer(text))
    keys = [spelling_key(_bare(t.group().lower())) for t in tokens]
    for i in range(len(tokens) - len(wanted) + 1):
        if wanted and keys[i : i + len(wanted)] == wanted:
            first = i - 1 if i > 0 and tokens[i - 1].group().lower() in ("the", "a", "an") else i
            return tokens[first].start(), tokens[i + len(wanted) - 1].end()
    return None


def name_stems(text: str) -> tuple[frozenset[str], ...]:
    """The stems of the content words of each name in the text, for `new_name_among`."""
    return tuple(
        frozenset(stem(w) for w in words(match.group()) if w not in STOPWORDS)
        for match in _NAME.finditer(text)
        # A capital that only opens the sentence names nothing.
        if not (match.start() == 0 and " " not in match.group())
    )


def new_name_among(names: tuple[frozenset[str], ...], question_stems: frozenset[str]) -> bool:
    """`mentions_new_name` of the text these `name_stems` were read from."""
    return any(not found <= question_stems for found in names)


def mentions_new_name(text: str, question_stems: frozenset[str]) -> bool:
    """A name in the text that the question does not already say (the answer to "who" or "where")."""
    return new_name_among(name_stems(text), question_stems)


def person_nouns(text: str) -> frozenset[str]:
    """The stems of the nouns for people and bodies of people that the text holds, for `mentions_person_noun`."""
    return _PERSON_NOUNS & frozenset(terms(text))


def mentions_person_noun(text: str, question_stems: frozenset[str]) -> bool:
    return bool(person_nouns(text) - question_stems)


def mentions_reason(text: str) -> bool:
    return bool(_REASON_CUES.search(text))


# --- Reference ----------------------------------------------------------------------------------------------

# A sentence that opens with one of these points back to the one before ("It was commissioned by ...").
_POINTS_BACK = re.compile(
    r"^[\"'“‘(]*(?:he|she|it|they|him|them|his|her|its|their|this|these|those|such|the latter|the former"
    r"|neither|however|but|also|meanwhile|instead|then|thus|therefore|afterwards|the same)(?![-\w])",
    re.IGNORECASE,
)
# "it" in "is it true that ...", "it seems" points at nothing.
_IT = r"it(?!\s+(?:true|seems|appears|is\s+true|was\s+true|is\s+said|was\s+said)\b)"
ANAPHORA = re.compile(
    rf"\b(?:he|she|him|her|his|hers|they|them|their|theirs|{_IT}|its|this|these|those|the same)\b",
    re.IGNORECASE,
)
# "her" is possessive before a noun ("her party"), personal at the end or before a preposition ("arrested her").
_HER_POSSESSIVE = r"her(?=\s+(?!(?:to|for|with|about|of|in|on|at|by|from|and|or|after|before)\b)\w)"
PERSONAL_PRONOUN = re.compile(rf"\b(?:he|she|him|her|they|them|{_IT})\b", re.IGNORECASE)
POSSESSIVE_PRONOUN = re.compile(rf"\b(?:his|{_HER_POSSESSIVE}|its|their)\b", re.IGNORECASE)
# How an elliptical follow-up opens: "and the other party?", "what about Paris?".
_ELLIPSIS_OPENER = r"(?:and|what\s+about|how\s+about)"
# A message that leans on the one before: an ellipsis, "Tell me more", or a bare "Why?".
ELLIPSIS = re.compile(
    rf"^(?:(?:{_ELLIPSIS_OPENER}|tell me more|more|go on|anything else)\b"
    r"|(?:why|when|where|how|who|how so|really|since when)\W*$)",
    re.IGNORECASE,
)
# What an ellipsis says after its opener: "the Liberals" in "and the Liberals?", "in 2016" in "what about in 2016?".
_ELLIPSIS_REST = re.compile(rf"^{_ELLIPSIS_OPENER}\s+(?P<rest>[^?!.]+?)\W*$", re.IGNORECASE)
_NARROWING_OPENERS = frozenset(
    """in on at before after during since until till for from to with without by under over between among against
    now then today currently recently later earlier nowadays yesterday tomorrow""".split()
)
_SECOND_PERSON = frozenset("you your yours yourself me my i we us our".split())


@dataclass(frozen=True)
class Ellipsis:
    """What an elliptical follow-up adds to the last question: a new subject ("the Liberals") to put in place
    of its own, or, when `replaces_subject` is false, a time or circumstance ("in 2016") to add to it."""

    text: str
    replaces_subject: bool


def ellipsis(question: str) -> Ellipsis | None:
    """The ellipsis in "and the Liberals?", "what about now", "how about in 2016?", or None when the question
    says more than that (a question word, a verb, a pronoun to resolve instead) or is small talk."""
    match = _ELLIPSIS_REST.match(question.strip())
    if not match:
        return None
    rest = match.group("rest").strip()
    found = words(rest)
    if not found or len(found) > 6 or any(w in QUESTION_WORDS | AUXILIARIES | _SECOND_PERSON for w in found):
        return None
    if ANAPHORA.search(rest) or small_talk(rest) is not None:
        return None  # "and his wife?" points back: the pronoun is resolved instead
    # A lower-case word in -ed is a verb more often than not ("and Smith resigned?"): a statement, not a subject.
    if any(w.endswith("ed") and len(w) > 4 and w.islower() for w in _WORD.findall(rest)):
        return None
    narrows = found[0] in _NARROWING_OPENERS or mentions_date(rest)
    return Ellipsis(rest, replaces_subject=not narrows)


def points_back(sentence: str) -> bool:
    """Whether a sentence opens by pointing back to the one before it, so that quoting it alone would leave a
    pronoun or connective dangling."""
    return bool(_POINTS_BACK.match(sentence.strip()))


def asks_about_person(question: str) -> bool:
    return bool(re.match(r"^\s*(?:who|whom)\b", question_core(question)))


def is_definition(question: str) -> bool:
    """ "Who is X?", "What is X?", "Tell me about X": any sentence that describes X answers it."""
    return bool(re.match(r"^(?:(?:who|what)\s+(?:is|are|was|were)\b|tell me about\b)", question_core(question)))


# --- Messages that are not questions ------------------------------------------------------------------------


class SmallTalk(Enum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    CAPABILITIES = "capabilities"
    ACKNOWLEDGEMENT = "acknowledgement"  # "ok", "cool", "lol": nothing to search for


_SMALL_TALK = (
    (
        SmallTalk.CAPABILITIES,
        re.compile(
            r"^(?:(?:hi|hello|hey)\W+)?(?:what\s+(?:can|do)\s+you\s+do|what\s+are\s+you|who\s+are\s+you"
            r"|what\s+(?:do|can)\s+you\s+(?:know|answer)|how\s+(?:do|does)\s+(?:this|it|you)\s+work"
            r"|help|what\s+is\s+this(?:\s+bot)?|are\s+you\s+a\s+bot)\W*$"
        ),
    ),
    (
        SmallTalk.THANKS,
        re.compile(
            r"^(?:(?:ok(?:ay)?|great|cool|nice|perfect|awesome|good)\W+)*(?:thanks?|thank\s+you|thx|ty|cheers"
            r"|much\s+appreciated)(?:\s+(?:a\s+lot|so\s+much|very\s+much))?(?:\W+(?:bye|goodbye))?\W*$"
        ),
    ),
    (
        SmallTalk.GOODBYE,
        re.compile(r"^(?:(?:ok(?:ay)?|thanks?)\W+)*(?:bye|goodbye|see\s+you|ciao|good\s*night)\W*$"),
    ),
    (
        SmallTalk.GREETING,
        re.compile(
            r"^(?:(?:hi|hello|hey|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening))"
            r"(?:\s+(?:there|bot|everyone))?\W*)+(?:how\s+are\s+you(?:\s+doing)?|how(?:'s|’s|\s+is)\s+it\s+going)?\W*$"
            r"|^(?:how\s+are\s+you(?:\s+doing)?(?:\s+today)?|how(?:'s|’s|\s+is)\s+it\s+going|what'?s\s+up|sup)\W*$"
        ),
    ),
    (
        SmallTalk.ACKNOWLEDGEMENT,
        re.compile(
            r"^(?:ok(?:ay)?|k|cool|nice|great|good|fine|lol|haha+|hah|hmm+|wow|i\s+see|got\s+it|right|sure"
            r"|interesting|alright|yes|no|yep|nope|yeah)(?:\W+(?:ok(?:ay)?|cool|nice|great|lol|haha+|thanks?))*\W*$"
        ),
    ),
)
_OVERVIEW = re.compile(
    r"^(?:(?:what|which)\s+(?:are|is)\s+(?:the|these|your|those)\s+(?:articles?|stories|news|sources|texts?)"
    r"(?:\s+(?:about|on))?|what\s+(?:articles?|stories|news|sources)\s+(?:do\s+you\s+have|are\s+there)"
    r"|what\s+(?:do|can)\s+you\s+(?:know|tell\s+me)\s+about|(?:please\s+)?(?:summari[sz]e|sum\s+up)"
    r"(?:\s+(?:the|these|all)\s+(?:articles?|news|stories))?|(?:give\s+me\s+)?(?:a|an)\s+(?:overview|summary)"
    r"(?:\s+of\s+(?:the|these|all)\s+(?:articles?|news|stories))?|give\s+me\s+(?:a|an)\s+(?:overview|summary)"
    r"|what(?:'s|’s|\s+is)\s+(?:in\s+the\s+news|new|the\s+news)|what\s+is\s+(?:this|it)\s+all\s+about"
    r"|(?:overview|summary|news|headlines|tl;?dr|gist)|what\s+(?:topics|subjects)\s+(?:do\s+you\s+cover"
    r"|are\s+covered))\W*$"
)
# Words that name the collection or ask about it as a whole ("brief me on the news", "what do the articles say").
_COLLECTION_WORDS = frozenset(
    """article articles news story stories source sources text texts collection material materials headline
    headlines topic topics subject subjects overview summary summarize summarise brief briefing gist tldr tl dr main key
    point points highlight highlights everything all about cover covered covers say says contain contains
    read tell give me you have got""".split()
)
_COLLECTION_NOUNS = frozenset(
    "article articles news story stories source sources collection headlines topics overview summary gist".split()
)
# "Tell me more", "go on", "what else?": the last subject again, with what was not quoted yet.
_MORE = re.compile(
    r"^(?:(?:ok(?:ay)?|and|so|please|yes|great|interesting)\W+)*(?:(?:(?:can|could)\s+you\s+)?(?:tell\s+me|say"
    r"|give\s+me)\s+(?:some\s+)?more(?:\s+(?:details?|about\s+(?:it|that|this)))?|more(?:\s+(?:details?"
    r"|info(?:rmation)?|on\s+(?:it|that|this)))?|go\s+on|continue|keep\s+going|what\s+else|anything\s+else"
    r"|(?:and\s+)?then\s+what|(?:can|could)\s+you\s+elaborate|elaborate)(?:\W+please)?\W*$"
)
_LATEST = re.compile(r"\b(?:now|currently|current|latest|recent|recently|today|nowadays|still|newest|so far)\b")


def small_talk(message: str) -> SmallTalk | None:
    """Greetings, thanks, goodbyes and "what can you do?": messages to answer kindly, not to search for."""
    # "and thanks", "so, bye": a leading conjunction changes nothing.
    core = re.sub(r"^(?:and|so|but)\b\W*", "", message.lower().strip())
    for kind, pattern in _SMALL_TALK:
        if pattern.match(core):
            return kind
    return None


def asks_more(message: str) -> bool:
    """ "Tell me more", "go on", "what else?": a request to continue the last answer, not a question of its own."""
    return bool(_MORE.match(message.lower().strip()))


def asks_overview(message: str) -> bool:
    """ "What are the articles about?", "summarize", "brief me on the news": a request for an overview of the
    whole collection, naming nothing but the collection itself."""
    core = question_core(message)
    if _OVERVIEW.match(core):
        return True
    if re.match(r"^(?:who|whom|whose|when|where|why|which|how|and|what about)\b", core):
        return False  # "Who is the source?", "and the sources?": a question about something in the articles
    found = set(words(core)) - STOPWORDS - QUESTION_WORDS - AUXILIARIES
    return bool(found & _COLLECTION_NOUNS) and found <= _COLLECTION_WORDS | QUESTION_FRAME


def asks_latest(question: str) -> bool:
    """A question about the present state of things: newer articles answer it better."""
    return bool(_LATEST.search(question.lower()))


def date_sort_key(published: str | None) -> str:
    """A published date as text that sorts in time order: its ISO prefix ("2020-11-06", "2020-11"), or "" (the
    oldest) for a date written any other way."""
    match = re.match(r"\d{4}(?:-\d{2}(?:-\d{2})?)?", published or "")
    return match.group() if match else ""


def human_date(published: str | None) -> str | None:
    """ "2020-11-06" → "6 November 2020", "2020-11" → "November 2020"; anything else unchanged."""
    if not published:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", published):
        try:
            date = dt.date.fromisoformat(published)
        except ValueError:
            return published
        return f"{date.day} {date:%B %Y}"
    if re.fullmatch(r"\d{4}-\d{2}", published):
        year, month = published.split("-")
        if 1 <= int(month) <= 12:
            return f"{dt.date(int(year), int(month), 1):%B %Y}"
    return published
