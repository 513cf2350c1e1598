"""The live view in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium, on the contoso lab live at BROWSER_PACE. A trainer's branch outage: cut
wan-seattle with the page's button, read carol at the SBA and sbc-sea no longer active from the
page, restore, read them back. Screenshots before, during and after go to the test's folder and
to runs/screenshots/ for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.control.helpers import ROOT, LabThread, module_fixtures

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = shutil.which("chromium")
SCREENSHOTS = ROOT / "runs" / "screenshots"
#: wall seconds for the page to show a change (the cloud demotes a silent gateway after minutes
#: of lab time: at TEST_PACE that is seconds, on a busy machine a little more)
PAGE_WAIT_S = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or not CHROMEDRIVER.exists(),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromedriver)"),
]

#: the cloud demotes the silent sbc-sea after demotion_window_s (5 min) of lab time: 5 s of wall
#: time at this pace, which the page follows as well as at TEST_PACE (its redraws are event-driven)
BROWSER_PACE = 60.0

certs, live = module_fixtures(pace=BROWSER_PACE)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1920,1080"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(driver: webdriver.Chrome, selector: str) -> str:
    """The text of the first element that matches, read in one go (the page redraws as it likes)."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : ''", selector))


def carol_on_the_page(driver: webdriver.Chrome) -> str:
    return text_of(driver, '#topology g.node[data-node="carol"] .word')


def sbc_sea_health(driver: webdriver.Chrome) -> str:
    return text_of(driver, '#gateways tr[data-gateway="sbc-sea.contoso.com"] .health')


def wait_until(driver: webdriver.Chrome, what: str, holds: Callable[[webdriver.Chrome], bool]) -> None:
    try:
        WebDriverWait(driver, PAGE_WAIT_S, poll_frequency=0.2).until(holds)
    except TimeoutException:
        raise AssertionError(f"the page did not show {what} within {PAGE_WAIT_S:g} s: carol "
                             f"{carol_on_the_page(driver)!r}, sbc-sea {sbc_sea_health(driver)!r}") from None


def screenshot(driver: webdriver.Chrome, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = driver.get_screenshot_as_png()
    for where in (folder, SCREENSHOTS):
        (where / f"live-view-{name}.png").write_bytes(png)


def test_a_wan_cut_from_the_page_shows_the_branch_at_the_sba_and_back(
        live: LabThread, browser: webdriver.Chrome, tmp_path: Path) -> None:
    browser.get(live.url + "/")
    wait_until(browser, "carol in the cloud and sbc-sea active",
               lambda d: carol_on_the_page(d).startswith("cloud") and sbc_sea_health(d) == "active")
    screenshot(browser, tmp_path, "1-before-the-cut")

    browser.find_element(By.CSS_SELECTOR, 'button[data-link="wan-seattle"][data-action="cut"]').click()
    wait_until(browser, "wan-seattle down", lambda d: text_of(d, '#links tr[data-link="wan-seattle"] .state') == "down")
    wait_until(browser, "carol at the SBA and sbc-sea no longer active",
               lambda d: carol_on_the_page(d) == "SBA (sba1)" and sbc_sea_health(d) in ("demoted", "inactive"))
    assert "DOWN" in text_of(browser, '#topology g.link[data-link="wan-seattle"] text')
    assert "registered at the SBA" in text_of(browser, "#timeline")
    # the cloud's OPTIONS to the silent SBC fail every minute until it is demoted: one line, counted
    folded = browser.execute_script(
        "return [...document.querySelectorAll('#timeline li')].filter(li => !li.querySelector('.count').hidden)"
        ".map(li => li.textContent)")
    assert any("OPTIONS to sbc-sea failed×" in line for line in folded), folded
    screenshot(browser, tmp_path, "2-during-the-outage")

    browser.find_element(By.CSS_SELECTOR, 'button[data-link="wan-seattle"][data-action="restore"]').click()
    wait_until(browser, "carol back in the cloud and sbc-sea active",
               lambda d: carol_on_the_page(d).startswith("cloud") and sbc_sea_health(d) == "active")
    assert text_of(browser, '#links tr[data-link="wan-seattle"] .state') == "up"
    screenshot(browser, tmp_path, "3-after-the-restore")


def test_the_clock_pauses_steps_and_resumes_from_the_page(live: LabThread, browser: webdriver.Chrome) -> None:
    browser.get(live.url + "/")
    wait_until(browser, "the clock running", lambda d: text_of(d, "#clock-state").startswith("running"))
    browser.find_element(By.ID, "pause").click()
    wait_until(browser, "the clock paused", lambda d: text_of(d, "#clock-state") == "PAUSED")
    assert live.client.state()["time"]["paused"] is True
    before = live.client.state()["time"]["virtual_s"]
    browser.find_element(By.ID, "step").click()
    wait_until(browser, "a step", lambda d: live.client.state()["time"]["virtual_s"] > before)
    assert live.client.state()["time"]["paused"] is True
    browser.find_element(By.ID, "resume").click()
    wait_until(browser, "the clock running again", lambda d: text_of(d, "#clock-state").startswith("running"))
