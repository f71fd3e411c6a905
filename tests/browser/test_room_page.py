"""The room page in real headless Chromium (Debian's chromium and chromedriver)."""

import os
import shutil
import signal
import tempfile
import urllib.parse

import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ROOM = "Café crème & <b>friends</b> / 会议"


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromedriver are missing; run: deploy/dev/install-system-deps.sh test")
    profile = tempfile.mkdtemp(prefix="chatscale-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # Passing the driver's path keeps Selenium Manager from trying to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, timeout=15, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message)


def replica_of(driver):
    """The replica this tab's socket reached, learnt by the page from its heartbeat pong."""
    return wait(
        driver,
        lambda d: d.execute_script("return document.body.dataset.replica || null"),
        message="the page never learnt its replica",
    )


def log_text(driver):
    return driver.find_element(By.ID, "chat-log").get_property("value")


def enter_room_from_picker(driver, base_url, room_name):
    driver.get(base_url + "/chat/")
    box = driver.find_element(By.ID, "room-name-input")
    box.send_keys(room_name)
    box.send_keys(Keys.ENTER)
    expected = "/chat/" + urllib.parse.quote(room_name, safe="") + "/"
    wait(
        driver,
        lambda d: urllib.parse.unquote(urllib.parse.urlsplit(d.current_url).path) == urllib.parse.unquote(expected),
        message=f"Enter did not lead to {expected}",
    )
    wait(driver, lambda d: d.find_element(By.ID, "connection-status").text == "Connected")


def open_tab_on_other_replica(driver, url, avoid, attempts=8):
    """Open tabs until one lands on a replica other than ``avoid``; return its handle and replica."""
    for _ in range(attempts):
        driver.switch_to.new_window("tab")
        driver.get(url)
        replica = replica_of(driver)
        if replica != avoid:
            return driver.current_window_handle, replica
        driver.close()
        driver.switch_to.window(driver.window_handles[0])
    pytest.fail(f"every new tab landed on {avoid}")


def send_from_tab(driver, text):
    box = driver.find_element(By.ID, "chat-message-input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    wait(
        driver,
        lambda d: d.find_element(By.ID, "chat-message-input").get_property("value") == "",
        message="the input was not cleared after sending",
    )


def test_two_tabs_on_two_replicas_chat(cluster, browser):
    enter_room_from_picker(browser, cluster.url, ROOM)
    first_tab, first_replica = browser.current_window_handle, replica_of(browser)
    assert browser.find_element(By.ID, "room-title").text == ROOM
    second_tab, second_replica = open_tab_on_other_replica(browser, browser.current_url, first_replica)
    assert {first_replica, second_replica} <= set(cluster.replica_names())

    browser.switch_to.window(first_tab)
    text = "<img src=x onerror=alert(1)> hello from tab one"
    send_from_tab(browser, text)
    browser.switch_to.window(second_tab)
    wait(browser, lambda d: text in log_text(d), message="the message never reached the other tab")
    assert browser.find_element(By.ID, "connection-replica").text == f"via {second_replica}"
    # Shown as text, never interpreted: no element was created from the message.
    assert browser.find_elements(By.CSS_SELECTOR, "#chat-log img, body > img") == []
    browser.save_screenshot(str(cluster.run_dir.parent / "two-tabs.png"))


def test_picker_explains_an_unusable_name(cluster, browser):
    browser.get(cluster.url + "/chat/")
    box = browser.find_element(By.ID, "room-name-input")
    box.send_keys("..")
    browser.find_element(By.ID, "room-name-submit").click()
    error = browser.find_element(By.ID, "room-name-error")
    wait(browser, lambda d: error.is_displayed() and "cannot be room names" in error.text)
    assert urllib.parse.urlsplit(browser.current_url).path == "/chat/"


def test_page_reconnects_after_its_replica_dies(own_cluster, browser):
    room_url = own_cluster.url + "/chat/reconnect/"
    browser.get(room_url)
    first_tab, first_replica = browser.current_window_handle, replica_of(browser)
    second_tab, second_replica = open_tab_on_other_replica(browser, room_url, first_replica)

    browser.execute_script("delete document.body.dataset.replica")
    os.kill(own_cluster.process(second_replica)["pid"], signal.SIGKILL)
    # Said while the second tab is away: it must arrive once the tab has resumed.
    browser.switch_to.window(first_tab)
    send_from_tab(browser, "said while you were away")
    browser.switch_to.window(second_tab)
    status = lambda d: d.find_element(By.ID, "connection-status").text  # noqa: E731
    wait(
        browser,
        lambda d: status(d).startswith("Connection lost") or status(d) == "Reconnecting…",
        message="the page did not show that it is reconnecting",
    )
    wait(browser, lambda d: status(d) == "Connected", timeout=30, message="the page did not reconnect")
    new_replica = replica_of(browser)
    assert new_replica != second_replica
    wait(browser, lambda d: "said while you were away" in log_text(d), message="the resumed tab missed a message")
    assert log_text(browser).count("said while you were away") == 1
    assert "missing" not in log_text(browser), "a resume that lost nothing showed a gap"

    browser.switch_to.window(first_tab)
    send_from_tab(browser, "still here after the replica died")
    browser.switch_to.window(second_tab)
    wait(browser, lambda d: "still here after the replica died" in log_text(d))


def test_history_on_join_and_a_gap_marker_after_redis_lost_it(own_cluster, browser):
    room_url = own_cluster.url + "/chat/history/"
    browser.get(room_url)
    first_tab, first_replica = browser.current_window_handle, replica_of(browser)
    send_from_tab(browser, "said before you came")
    wait(browser, lambda d: "said before you came" in log_text(d))
    second_tab, _ = open_tab_on_other_replica(browser, room_url, first_replica)
    wait(browser, lambda d: "said before you came" in log_text(d), message="a late joiner saw no history")

    redis.Redis(port=own_cluster.process("redis")["port"]).flushall()
    for tab in (first_tab, second_tab):
        browser.switch_to.window(tab)
        wait(browser, lambda d: "some messages may be missing" in log_text(d), message="no gap marker after a flush")
    send_from_tab(browser, "said after the flush")
    browser.switch_to.window(first_tab)
    wait(browser, lambda d: "said after the flush" in log_text(d), message="the room stayed deaf after a flush")
    browser.save_screenshot(str(own_cluster.run_dir.parent / "gap-marker.png"))
