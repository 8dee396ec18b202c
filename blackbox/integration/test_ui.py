"""GET /ui in a real browser: Debian's chromium and chromium-driver through selenium (no download)."""

from __future__ import annotations

import shutil
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import REPO

SCREENSHOT = REPO / "docs" / "ui-dashboard.png"


@pytest.fixture
def browser():
    driver_path = shutil.which("chromedriver")
    assert driver_path, "chromedriver not found: make test-deps installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def wait_for(condition, timeout: float = 10, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_dashboard_shows_live_counters_and_drives_a_writeback_job(zramd_factory, tokens, corpus, browser):
    s = zramd_factory("--disksize", "64M", "--backing-dev", "bd.sqlite", "--mem-limit", "48M", "--admin-token-file", tokens["admin_file"])
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    r = s.http.get("/ui")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text  # self-contained: nothing from elsewhere

    browser.get(s.base + "/ui?refresh=0.1")
    wait_for(lambda: browser.find_elements(By.ID, "zram0-stored"), what="the zram0 card")
    def text(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    assert text("zram0-stored") == "0"
    path_before = browser.find_element(By.ID, "rate-path").get_attribute("d")

    # PUT pages: the counters and the request-rate chart change within seconds.
    pages = [corpus.page(i) for i in range(min(corpus.count, 14000))]
    for i in range(0, len(pages), 1024):
        assert s.http.put(f"/dev/zram0/pages?from={i}", data=b"".join(pages[i:i + 1024])).status_code == 204
    wait_for(lambda: text("zram0-stored") == str(len(pages)), what=f"stored pages to show {len(pages)}")
    wait_for(lambda: browser.find_element(By.ID, "zram0-ratio").text not in ("-", ""), what="the ratio")
    wait_for(lambda: browser.find_element(By.ID, "rate-path").get_attribute("d") not in ("", path_before),
             what="the request-rate chart")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#zram0-classes rect"), what="the size-class histogram")
    assert s.http.put("/sys/block/zram0/idle", data=b"all", headers=admin).status_code == 204
    assert s.http.put("/sys/block/zram0/writeback_batch_size", data=b"1", headers=admin).status_code == 204
    def idle_pages() -> str:
        lines = s.http.get("/sys/kernel/debug/zram/zram0/block_state").text.splitlines()
        return str(sum(1 for line in lines if line.split()[-1][3] == "i"))

    expected = idle_pages()
    assert int(expected) > 10_000
    wait_for(lambda: text("zram0-idle") == expected, what="the idle count")

    # No console errors while the page polled and drew everything above.
    assert severe(browser) == []
    # Without the token the server refuses, and the page says so; with it, the job starts.
    Select(browser.find_element(By.ID, "zram0-op")).select_by_visible_text("writeback")
    body = browser.find_element(By.ID, "zram0-body")
    body.clear()
    body.send_keys("type=idle page_indexes=0-6999")
    browser.find_element(By.ID, "zram0-start").click()
    wait_for(lambda: "a bearer token is required" in browser.find_element(By.ID, "job-error").text, what="the 401")
    browser.find_element(By.ID, "token").send_keys(tokens["admin"])
    browser.find_element(By.ID, "zram0-start").click()
    # The job list is redrawn at every refresh: read it in one script call each time.
    read_job = ("const j = document.getElementById('job-1');"
                "return j && [j.dataset.state, parseFloat(j.dataset.percent), j.querySelector('.bar > div').style.width];")
    wait_for(lambda: browser.execute_script(read_job), what="job 1")
    seen = []
    deadline = time.monotonic() + 60
    while True:
        state, percent, width = browser.execute_script(read_job)
        seen.append((state, percent, width))
        if state == "done":
            break
        assert state in ("queued", "running") and time.monotonic() < deadline, seen
        time.sleep(0.05)
    assert 0 < s.stat("zram0", "bd_stat")[0] <= 7000
    running = [p for state, p, width in seen if state == "running" and 0 < p < 100 and width == f"{p}%"]
    print("progress seen while running:", sorted(set(running)))
    assert running, seen
    assert seen[-1][2] == "100%"
    written = s.stat("zram0", "bd_stat")[0]
    assert written > 0 and s.http.get("/jobs/1").json()["result"] == written
    wait_for(lambda: text("zram0-wb") == str(written), what="written-back pages")
    expected = idle_pages()
    assert int(expected) < 10_000  # written-back pages are no longer idle
    wait_for(lambda: text("zram0-idle") == expected, what="the idle count after the writeback")
    # The one console error since is Chromium reporting the refused (401) request itself.
    assert all("writeback?async=1" in m and "401" in m for m in severe(browser)), severe(browser)
    browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
