"""Words as search terms: one tokenizer for lexical search, key-term matching and follow-up detection."""

from __future__ import annotations

import re
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
    anything something nothing thing things know one two many much besides regarding although though together
    instead else another other others among amongst already still even ever never always often whereas""".split()
)
# Words that frame a question rather than name its subject ("Can you explain ...", "What does the article say").
QUESTION_FRAME = frozenset(
    """explain describe description tell mean means meaning happen happened happens think know mention mentioned
    talk summarize summarise summary detail details info information article articles story stories report
    reported text source sources question answer kind sort type give find show list""".split()
)
# "one" and "two" are stopwords for matching ("one of the activists"), but numbers as answers are detected
# separately (see answer.py), so they are not lost.

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
    result = []
    for match in _WORD.finditer(text.lower()):
        word = re.sub(r"['’]s$", "", match.group()).replace("’", "'")
        result.append(word)
    return result


def terms(text: str) -> list[str]:
    """Stemmed content words, in order, with repeats: the unit of lexical search."""
    return [stem(word) for word in words(text) if word not in STOPWORDS]


def content_words(text: str) -> list[str]:
    """Distinct unstemmed content words, for comparing words by meaning."""
    return list(dict.fromkeys(w for w in words(text) if w not in STOPWORDS and not w.isdigit()))
