"""The console in headless Chromium: log in, see the queue live, open, claim, reply."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as when
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

from tests.handoff.conftest import PASSWORDS, ConsoleServer, RecordingRasa
from tests.handoff.test_console_api import new_handoff


@pytest.mark.parametrize("cdp_url", ["sqlite"], indirect=True)
def test_agent_logs_in_claims_and_replies(
    browser: WebDriver, console: ConsoleServer, rasa_api: RecordingRasa, demo_engine: Engine
) -> None:
    wait = WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,))
    first = new_handoff(demo_engine, "web-browser-1", None)
    browser.get(console.url)
    wait.until(when.visibility_of_element_located((By.ID, "username"))).send_keys("ava")
    browser.find_element(By.ID, "password").send_keys("wrong password")
    browser.find_element(By.ID, "login").click()
    wait.until(
        when.text_to_be_present_in_element((By.ID, "login-error"), "wrong username or password")
    )
    browser.find_element(By.ID, "password").clear()
    browser.find_element(By.ID, "password").send_keys(PASSWORDS["ava"])
    browser.find_element(By.ID, "login").click()
    wait.until(when.text_to_be_present_in_element((By.ID, "whoami"), "Ava (agent)"))
    wait.until(
        when.presence_of_element_located((By.CSS_SELECTOR, f'#waiting li[data-id="{first}"]'))
    )

    # A new handoff shows up without reloading the page (server-sent events).
    wait.until(when.visibility_of_element_located((By.CSS_SELECTOR, "#live.on")))
    second = new_handoff(demo_engine, "web-browser-2", "C-1001")
    console.internal(f"/api/internal/handoffs/{second}/notify")
    wait.until(when.element_to_be_clickable((By.CSS_SELECTOR, f'#waiting li[data-id="{second}"]')))
    # The gold member is more urgent than the anonymous visitor who waited longer.
    ids = [
        li.get_attribute("data-id") for li in browser.find_elements(By.CSS_SELECTOR, "#waiting li")
    ]
    assert ids == [second, first]

    # The queue re-renders on live updates: find the item again if it was replaced.
    wait.until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, f'#waiting li[data-id="{second}"]').click() or True
        )
    )
    wait.until(
        when.text_to_be_present_in_element((By.ID, "summary"), "Customer asked for a person")
    )
    customer = browser.find_element(By.ID, "customer").text
    assert "a***@example.com" in customer and "gold" in customer
    assert "vip" in browser.find_element(By.ID, "routing").text
    assert "can I talk to a person" in browser.find_element(By.ID, "transcript").text
    browser.find_element(By.ID, "claim").click()
    wait.until(when.text_to_be_present_in_element((By.ID, "conv-state"), "accepted by ava"))
    wait.until(when.element_to_be_clickable((By.ID, "send-reply")))

    browser.find_element(By.ID, "reply-text").send_keys("Hello Ana, Ava here!")
    send = browser.find_element(By.ID, "send-reply")
    browser.execute_script("arguments[0].click(); arguments[0].click();", send)  # a double click
    wait.until(
        when.text_to_be_present_in_element((By.CSS_SELECTOR, "#transcript li.agent"), "sent")
    )
    replies = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#transcript li.agent")]
    assert len(replies) == 1 and "Hello Ana, Ava here!" in replies[0] and "sent" in replies[0]
    assert rasa_api.sent == [("web-browser-2", "Hello Ana, Ava here!")]

    # A customer message arrives live in the open conversation.
    console.internal(
        "/api/internal/messages",
        {"conversation_id": "web-browser-2", "message_id": "b-1", "text": "great, thanks"},
    )
    wait.until(when.text_to_be_present_in_element((By.ID, "transcript"), "great, thanks"))
