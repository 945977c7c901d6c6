"""Is the customer clearly frustrated, and what should the bot do about it? Pure Python.

Used inside Rasa by `rasa_ext.frustration` (the NLU component marks a message, the policy offers
a person), and importable without Rasa so the rules are unit-tested on their own
(tests/rasa_ext/test_frustration.py). Each signal has a weight; a message is frustrated when
the weights reach `THRESHOLD`, so one mild sign ("thanks!!!") is not enough but swearing,
an insult, shouting or an exasperated "?!?!" is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THRESHOLD = 2

# Words that mark frustration wherever they appear (matched as whole words, lower case).
SWEAR_WORDS = frozenset(
    {
        "fuck",
        "fucking",
        "fucked",
        "fck",
        "fkn",
        "fu",
        "wtf",
        "ffs",
        "stfu",
        "shit",
        "shitty",
        "bullshit",
        "bs",
        "crap",
        "crappy",
        "damn",
        "dammit",
        "goddamn",
        "bloody",
        "effing",
        "piss",
        "pissed",
        "arse",
        "ass",
        "bastard",
        "omfg",
    }
)
# Insults aimed at the bot or the service. Words that also name products or everyday things
# ("joke", "trash", "garbage") are left out on purpose: "tell me a joke" is not anger.
INSULT_WORDS = frozenset(
    {
        "useless",
        "stupid",
        "idiot",
        "idiotic",
        "moron",
        "pathetic",
        "worthless",
        "incompetent",
        "hopeless",
        "ridiculous",
        "rubbish",
        "clueless",
        "braindead",
    }
)
EXASPERATED_PHRASES = (
    "waste of time",
    "wasting my time",
    "going in circles",
    "fed up",
    "sick of this",
    "sick and tired",
    "not helping",
    "you don't understand",
    "you dont understand",
    "for the last time",
    "are you kidding me",
)

WORD = re.compile(r"[a-z']+")
LETTER_WORD = re.compile(r"[^\W\d_]+")
# "?!", "!?" mixed in a run of three or more ("?!?", "!?!?!").
MIXED_PUNCTUATION = re.compile(r"(?=[?!]*\?)(?=[?!]*!)[?!]{3,}")
REPEATED_PUNCTUATION = re.compile(r"[?!]{3,}")

# Shouting: enough upper-case letters in enough words that it is not an acronym ("VAT", "OK").
SHOUT_MIN_LETTERS = 10
SHOUT_MIN_WORDS = 3
SHOUT_UPPER_SHARE = 0.9


@dataclass(frozen=True)
class Frustration:
    """What was found in one message: the signals and their total weight."""

    signals: tuple[str, ...]
    score: int

    @property
    def is_frustrated(self) -> bool:
        return self.score >= THRESHOLD

    @property
    def label(self) -> str:
        """The entity value: the signals joined, e.g. "shouting+exasperated_punctuation"."""
        return "+".join(self.signals)


def _is_shouting(text: str) -> bool:
    words = [w for w in LETTER_WORD.findall(text) if len(w) >= 2]
    letters = [c for w in words for c in w]
    if len(words) < SHOUT_MIN_WORDS or len(letters) < SHOUT_MIN_LETTERS:
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper / len(letters) >= SHOUT_UPPER_SHARE


def assess(text: str) -> Frustration:
    """The frustration signals in `text`, each with its weight (2: strong, 1: mild)."""
    lowered = text.lower()
    words = set(WORD.findall(lowered))
    found: list[tuple[str, int]] = []
    if words & SWEAR_WORDS:
        found.append(("swearing", 2))
    if words & INSULT_WORDS:
        found.append(("insult", 2))
    if any(phrase in lowered for phrase in EXASPERATED_PHRASES):
        found.append(("exasperation", 2))
    if _is_shouting(text):
        found.append(("shouting", 2))
    if MIXED_PUNCTUATION.search(text):
        found.append(("exasperated_punctuation", 2))
    elif REPEATED_PUNCTUATION.search(text):
        found.append(("repeated_punctuation", 1))
    return Frustration(tuple(name for name, _ in found), sum(weight for _, weight in found))


OFFER = "offer"
LISTEN = "listen"


def next_step(
    latest_action: str | None,
    offer_action: str,
    intent: str | None,
    frustrated: bool,
    offered_since_message: bool,
    offered_recently: bool,
    handoff_open: bool,
    no_offer_intents: frozenset[str],
) -> str | None:
    """What the frustration policy predicts: OFFER, LISTEN, or None (leave it to the others).

    Right after the offer, LISTEN: the offer action itself marks "listening" when the message
    still needs its own answer, so this is reached only when it does not (a frustrated
    message the NLU did not understand) and the turn must end there. Otherwise, right after a
    customer message that is frustrated, OFFER once, unless the customer already asked for a
    person, a person already owns the conversation, or the offer was made a moment ago.
    """
    if latest_action == offer_action:
        return LISTEN
    if latest_action != "action_listen" or not frustrated:
        return None
    if offered_since_message or offered_recently or handoff_open or intent in no_offer_intents:
        return None
    return OFFER
