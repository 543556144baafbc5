"""In a real browser (Playwright + Chromium against a live `streamlit run`): after Submit the next question opens
at the top of the page; Back after a submit continues the same rater (one rater in the database); a second tab
on the same link whose question was answered in the first shows a notice and records nothing; on a 390 px phone
the two videos stay side by side; Enter in the admin password field logs in. Skips only without Chromium."""

import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from userstudy.survey import store
from userstudy.survey.app import ANSWERED_ELSEWHERE

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
                 if p and Path(p).is_file()), None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 30_000
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (install Debian's `chromium`); "
                                "browser test not run")

FRESH = ("() => { const g = [...document.querySelectorAll('[role=radiogroup]')];"
         " return g.length === 5 && g.every(x => !x.querySelector('input:checked')); }")
READY = ("() => [...document.querySelectorAll('button')].some(b => b.innerText.includes('Submit and continue')"
         " && !b.disabled) && !document.body.innerText.includes('Still to answer')")
# where the "Question k of n" bar is, against the window, and how far Streamlit's scroll container is scrolled
HEADING = ("() => { const r = document.querySelector('[data-testid=stProgress]').getBoundingClientRect();"
           " return {top: r.top, bottom: r.bottom, height: window.innerHeight,"
           " scrolled: document.querySelector('[data-testid=stMain]').scrollTop}; }")
VIDEOS = ("() => [...document.querySelectorAll('video')].map(v => { const r = v.getBoundingClientRect();"
          " return {x: r.x, y: r.y, w: r.width, right: r.right}; })")


def _wait_question(page, k: int) -> None:
    page.get_by_text(re.compile(rf"Question {k} of \d+")).first.wait_for(timeout=TIMEOUT_MS)


def _pick_all(page, side: str) -> None:
    page.wait_for_function(FRESH, timeout=TIMEOUT_MS)
    groups = page.locator('[role="radiogroup"]')
    for i in range(5):
        groups.nth(i).get_by_text(side, exact=True).click()
    page.wait_for_function(READY, timeout=TIMEOUT_MS)


def _submit(page, k: int) -> None:
    """Submit question k (the page scrolled down to its button, as a rater's is) and wait for question k + 1."""
    button = page.get_by_role("button", name="Submit and continue")
    button.scroll_into_view_if_needed()
    assert page.evaluate(HEADING)["scrolled"] > 0  # the test means something: the page was scrolled down
    button.click()
    _wait_question(page, k + 1)
    page.wait_for_function(FRESH, timeout=TIMEOUT_MS)


def _at_top(page) -> dict:
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]').scrollTop === 0",
                           timeout=TIMEOUT_MS)
    pos = page.evaluate(HEADING)
    assert 0 <= pos["top"] and pos["bottom"] <= pos["height"], pos
    return pos


def _raters(db: str) -> int:
    engine = store.make_engine(db)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(store.raters)).scalar_one()
    finally:
        engine.dispose()


def test_browser_back_scroll_tabs_and_phone(live_server, bundle):
    from playwright.sync_api import sync_playwright

    url, db = live_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 600})
            page = ctx.new_page()
            page.goto(url, timeout=TIMEOUT_MS)
            page.get_by_text("I have read the instructions").click(timeout=TIMEOUT_MS)
            page.get_by_role("button", name="Start").click()
            _wait_question(page, 1)
            link = page.url
            token = re.search(r"[?&]t=([^&]+)", link).group(1)
            page.locator("code", has_text=f"{url}/?t={token}").first.wait_for(timeout=TIMEOUT_MS)  # personal link

            # a second tab on the same link, showing question 1 too
            tab_b = ctx.new_page()
            tab_b.goto(link, timeout=TIMEOUT_MS)
            _wait_question(tab_b, 1)

            _pick_all(page, "Left")
            _submit(page, 1)
            _at_top(page)  # "Question 2 of n" and the prompt in view, not the bottom of the page

            # Back after the submit: the same rater continues at question 2 (no consent page, no new rater)
            page.go_back()
            _wait_question(page, 2)
            # the token back on the link
            page.wait_for_url(re.compile(rf"[?&]t={re.escape(token)}"), timeout=TIMEOUT_MS)
            assert not page.get_by_text("I have read the instructions").count()
            assert _raters(db) == 1

            # tab B's click on question 1 (answered in the first tab): question 2 with a notice, nothing recorded
            tab_b.locator('[role="radiogroup"]').first.get_by_text("Right", exact=True).click()
            tab_b.get_by_text(ANSWERED_ELSEWHERE).wait_for(timeout=TIMEOUT_MS)
            _wait_question(tab_b, 2)
            tab_b.wait_for_function(FRESH, timeout=TIMEOUT_MS)  # no choice carried over
            tab_b.close()
            votes = store.export_votes(store.make_engine(db))
            assert len(votes) == 5 and set(votes["choice"]) == {"left"}

            _pick_all(page, "Right")
            _submit(page, 2)
            _at_top(page)
            ctx.close()

            # a phone, 390 px wide, on the same link: videos side by side, and the next question at the top
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        device_scale_factor=2)
            mobile = phone.new_page()
            mobile.goto(link, timeout=TIMEOUT_MS)
            _wait_question(mobile, 3)
            mobile.wait_for_function("() => { const v = [...document.querySelectorAll('video')];"
                                     " return v.length === 2 && v.every(x => x.getBoundingClientRect().width > 0); }",
                                     timeout=TIMEOUT_MS)
            left, right = mobile.evaluate(VIDEOS)
            assert abs(left["y"] - right["y"]) < 1, (left, right)  # one row
            assert left["right"] <= right["x"] and right["right"] <= 390, (left, right)
            assert left["w"] > 100 and abs(left["w"] - right["w"]) < 1, (left, right)
            _pick_all(mobile, "Left")
            _submit(mobile, 3)
            _at_top(mobile)
            phone.close()
        finally:
            browser.close()
    assert _raters(db) == 1
    votes = store.export_votes(store.make_engine(db))
    assert len(votes) == 15 and votes["question_id"].nunique() == 3


def test_browser_admin_enter_logs_in(live_server, tmp_path):
    """The live server runs in tmp_path, so its ./.streamlit/secrets.toml holds the admin password."""
    from playwright.sync_api import sync_playwright

    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('admin_password = "from-file"\n')
    url, _ = live_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/?view=admin", timeout=TIMEOUT_MS)
            field = page.locator("input[type=password]")
            field.fill("wrong", timeout=TIMEOUT_MS)
            field.press("Enter")
            page.get_by_text("Wrong password.").wait_for(timeout=TIMEOUT_MS)
            assert not page.get_by_text("Raters started").count()
            field.fill("from-file")
            field.press("Enter")
            page.get_by_text("Raters started").wait_for(timeout=TIMEOUT_MS)
        finally:
            browser.close()
