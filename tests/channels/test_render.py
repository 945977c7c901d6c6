"""Channel rendering: one response, shaped for Messenger and SMS within their limits."""

from __future__ import annotations

import pytest

from rasa_ext.channels.render import (
    MESSENGER_MAX_QUICK_REPLIES,
    SMS_CHOICE_HINT,
    SMS_MAX_CHARS,
    Choice,
    choice_for_reply,
    choices_from_buttons,
    messenger_messages,
    numbered_choices,
    sms_bodies,
    split_text,
)

TWO = [
    Choice("Repeat my last order", "/repeat_order"),
    Choice("Talk to a person", "/human_handoff"),
]


def test_buttons_without_title_or_payload_are_not_offered() -> None:
    buttons = [
        {"title": " Yes ", "payload": "/affirm"},
        {"title": "", "payload": "/deny"},
        {"title": "No payload"},
        {"title": 3, "payload": "/x"},
    ]
    assert choices_from_buttons(buttons) == [Choice("Yes", "/affirm")]
    assert choices_from_buttons(None) == []


@pytest.mark.parametrize("limit", [1, 7, 20, 160, SMS_MAX_CHARS])
def test_split_text_keeps_every_word_whole_and_within_the_limit(limit: int) -> None:
    text = " ".join(f"word{n}" for n in range(2000))
    parts = split_text(text, limit)
    assert all(len(part) <= limit for part in parts)
    if limit >= len("word1999"):
        assert " ".join(parts).split() == text.split()
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")


def test_split_text_cuts_inside_only_a_word_longer_than_the_limit() -> None:
    url = "https://example.com/" + "a" * 30
    assert split_text(f"see {url} now", 20) == ["see", url[:20], url[20:40], url[40:] + " now"]
    assert split_text("  short  ", 20) == ["short"]
    assert split_text("", 20) == []
    with pytest.raises(ValueError, match="at least 1"):
        split_text("x", 0)


def test_sms_numbers_the_choices_and_says_how_to_answer() -> None:
    [body] = sms_bodies("Hi Ana, what would you like?", TWO)
    assert body == (
        "Hi Ana, what would you like?\n\n1. Repeat my last order\n2. Talk to a person\n"
        + SMS_CHOICE_HINT
    )
    assert sms_bodies("Plain text.", []) == ["Plain text."]


def test_long_sms_is_split_at_1600_characters_without_breaking_words() -> None:
    text = "Your order lines: " + " ".join(["espresso-beans-1kg"] * 300)
    bodies = sms_bodies(text, TWO)
    assert len(bodies) > 1
    assert all(len(body) <= SMS_MAX_CHARS for body in bodies)
    assert " ".join(bodies).split() == numbered_choices(text, TWO).split()
    whole_words = set(numbered_choices(text, TWO).split())
    assert {word for body in bodies for word in body.split()} == whole_words
    assert bodies[-1].endswith(SMS_CHOICE_HINT)


@pytest.mark.parametrize(
    ("reply", "payload"),
    [
        ("1", "/repeat_order"),
        (" 2 ", "/human_handoff"),
        ("2.", "/human_handoff"),
        ("talk to a PERSON", "/human_handoff"),
        ("3", None),
        ("0", None),
        ("-1", None),
        ("\u0661", None),  # an Arabic-Indic digit is not "1"
        ("yes", None),
        ("", None),
    ],
)
def test_a_numbered_reply_selects_that_choice(reply: str, payload: str | None) -> None:
    assert choice_for_reply(reply, TWO) == payload


def test_no_choices_means_a_number_is_just_text() -> None:
    assert choice_for_reply("1", []) is None


def test_messenger_up_to_three_short_choices_are_a_button_template() -> None:
    [message] = messenger_messages("What would you like?", TWO)
    template = message["attachment"]["payload"]
    assert template["template_type"] == "button"
    assert template["text"] == "What would you like?"
    assert template["buttons"] == [
        {"type": "postback", "title": "Repeat my last order", "payload": "/repeat_order"},
        {"type": "postback", "title": "Talk to a person", "payload": "/human_handoff"},
    ]


def test_messenger_more_than_three_or_long_titles_become_quick_replies() -> None:
    many = [Choice(f"Option {n}", f'/pick{{"n": {n}}}') for n in range(1, 6)]
    [message] = messenger_messages("Pick one", many)
    assert message["text"] == "Pick one"
    assert [q["title"] for q in message["quick_replies"]] == [c.title for c in many]
    assert all(q["content_type"] == "text" for q in message["quick_replies"])
    long_title = [Choice("This title is far too long for a button", "/a")]
    assert messenger_messages("Pick", long_title) == [
        {"text": "Pick\n\n1. This title is far too long for a button\n" + SMS_CHOICE_HINT}
    ]


def test_messenger_more_than_thirteen_choices_become_numbered_text() -> None:
    many = [Choice(f"Item {n}", f"/i{n}") for n in range(MESSENGER_MAX_QUICK_REPLIES + 1)]
    messages = messenger_messages("Which item?", many)
    assert all("quick_replies" not in m and "attachment" not in m for m in messages)
    assert "14. Item 13" in "\n".join(m["text"] for m in messages)


def test_messenger_long_text_goes_out_in_parts_with_the_quick_replies_on_the_last() -> None:
    text = " ".join(["word"] * 1000)
    many = [Choice(f"Option {n}", f"/o{n}") for n in range(4)]
    messages = messenger_messages(text, many)
    assert len(messages) == 3
    assert all(len(m["text"]) <= 2000 for m in messages)
    assert "quick_replies" in messages[-1] and "quick_replies" not in messages[0]
    assert messenger_messages(text, []) == [{"text": m["text"]} for m in messages]
