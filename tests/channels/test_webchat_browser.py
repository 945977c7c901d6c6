"""The web chat page in headless Chromium against the real Rasa and action servers."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.channels.stack import ChannelStack

pytestmark = pytest.mark.e2e


def bubbles(driver: WebDriver, kind: str) -> list[str]:
    return [b.text for b in driver.find_elements(By.CSS_SELECTOR, f".nw-message.nw-{kind}")]


def wait_for_bot(driver: WebDriver, count: int) -> list[str]:
    WebDriverWait(driver, 60).until(lambda d: len(bubbles(d, "bot")) >= count)
    return bubbles(driver, "bot")


def type_message(driver: WebDriver, text: str) -> None:
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".nw-status").text == "connected"
    )
    box = driver.find_element(By.CSS_SELECTOR, ".nw-form input")
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, ".nw-form button").click()


def test_chat_anonymously_then_as_a_customer_and_keep_the_history_on_reload(
    channels: ChannelStack, browser: WebDriver
) -> None:
    page = channels.settings.webchat_url
    browser.get(page)
    type_message(browser, "hi")
    assert "Sign in on our website" in wait_for_bot(browser, 1)[0]

    # Markup and script are shown as the text they are, never run or parsed.
    type_message(browser, "<b id='injected'>bold</b><img src=x onerror=\"window.pwned=1\">")
    wait_for_bot(browser, 2)
    assert bubbles(browser, "user")[-1].startswith("<b id='injected'>bold</b>")
    assert browser.find_elements(By.ID, "injected") == []
    assert browser.execute_script("return window.pwned === undefined")

    # The host page of a signed-in customer passes the token the website minted.
    session_id = browser.find_element(By.CSS_SELECTOR, ".nw-chat").get_attribute("data-session-id")
    browser.get(f"{page}#token={channels.token('C-1001')}")
    browser.refresh()
    type_message(browser, "hello")
    greeting = wait_for_bot(browser, 3)[-1]
    assert "Hi Ana" in greeting
    buttons = browser.find_elements(By.CSS_SELECTOR, ".nw-choices button")
    assert [b.text for b in buttons[-2:]] == ["Repeat my last order", "Talk to a person"]
    buttons[-2].click()  # the button sends its payload and shows its title
    proposal = wait_for_bot(browser, 4)[-1]
    assert "Your last order" in proposal and "Shall I place the same order again?" in proposal
    assert bubbles(browser, "user")[-1] == "Repeat my last order"

    # A reload keeps the session and shows the whole conversation again...
    shown_before = bubbles(browser, "bot") + bubbles(browser, "user")
    browser.refresh()
    WebDriverWait(browser, 60).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".nw-status"), "connected"
        )
    )
    assert bubbles(browser, "bot") + bubbles(browser, "user") == shown_before
    chat = browser.find_element(By.CSS_SELECTOR, ".nw-chat")
    assert chat.get_attribute("data-session-id") == session_id
    # ...and Rasa's side of it: the pending proposal is answered in the same conversation.
    type_message(browser, "no")
    assert "I haven't ordered anything" in wait_for_bot(browser, 5)[-1]
