"""End to end in a real browser: Playwright drives Chromium against a live `streamlit run`.

Consent, two answered questions, reload -> same position, both videos load and play, and no method
name or prompt slug in the page or in any requested URL. Skips (printing why) only when no Chromium
binary exists; `.ci/run` installs Debian's `chromium` so CI runs it."""

import re
import shutil
from urllib.parse import urlparse
from pathlib import Path

import pytest

from userstudy.survey import store

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
                 if p and Path(p).is_file()), None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 60_000  # generous: the CI machine may be busy (30 s timed out once with a dvc repro beside the suite)

PLAYING = """() => {
  const v = [...document.querySelectorAll('video')];
  return v.length === 2 && v.every(x => x.readyState >= 2 && x.currentTime > 0.3 && !x.paused);
}"""


LOOPED = """() => {
  const v = [...document.querySelectorAll('video')];
  window.__prev = window.__prev || {}; window.__wrapped = window.__wrapped || {};
  v.forEach((x, i) => {
    if (window.__prev[i] !== undefined && x.currentTime + 0.2 < window.__prev[i]) window.__wrapped[i] = true;
    window.__prev[i] = x.currentTime;
  });
  return v.length === 2 && v.every((x, i) => window.__wrapped[i] && !x.paused);
}"""


def _wait_playing(page) -> None:
    # Chromium pauses muted autoplaying videos that are off screen (after Start, or a reload that
    # restores the scroll position): bring them into view as a rater would.
    page.locator("video").first.scroll_into_view_if_needed(timeout=TIMEOUT_MS)
    try:
        page.wait_for_function(PLAYING, timeout=TIMEOUT_MS)
    except Exception as err:
        state = page.eval_on_selector_all("video", "vs => vs.map(v => [v.readyState, v.currentTime, v.paused, "
                                          "v.muted, v.error && v.error.message, v.currentSrc])")
        raise AssertionError(f"videos not playing: {state}") from err


def _wait_question(page, k: int) -> None:
    page.get_by_text(re.compile(rf"Question {k} of \d+")).first.wait_for(timeout=TIMEOUT_MS)


def _answer_current(page, k: int) -> None:
    # Streamlit keeps the previous question's widgets a moment while it reruns: wait for five fresh ones.
    page.wait_for_function("() => { const g = [...document.querySelectorAll('[role=radiogroup]')];"
                           " return g.length === 5 && g.every(x => !x.querySelector('input:checked')); }",
                           timeout=TIMEOUT_MS)
    groups = page.locator('[role="radiogroup"]')
    submit = page.get_by_role("button", name="Submit and continue")
    for i in range(5):
        assert submit.is_disabled()  # forced choice: not before all five are answered
        groups.nth(i).get_by_text("Left" if i % 2 else "Right", exact=True).click()
    page.wait_for_function("() => [...document.querySelectorAll('button')].some("
                           "b => b.innerText.includes('Submit and continue') && !b.disabled)", timeout=TIMEOUT_MS)
    submit.click()
    _wait_question(page, k + 1)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (install Debian's `chromium`); browser test not run")
def test_browser_flow(live_server, bundle):
    from playwright.sync_api import sync_playwright

    url, db = live_server
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("request", lambda r: requested.append(r.url))
            page.goto(url, timeout=TIMEOUT_MS)
            page.get_by_text("I have read the instructions").click(timeout=TIMEOUT_MS)
            page.get_by_role("button", name="Start").click()
            _wait_question(page, 1)
            assert "t=" in page.url

            _wait_playing(page)
            videos = page.eval_on_selector_all(
                "video", "vs => vs.map(v => ({muted: v.muted, loop: v.loop, w: v.getBoundingClientRect().width,"
                         " src: v.currentSrc, t: v.currentTime}))")
            assert all(v["muted"] for v in videos), videos
            assert abs(videos[0]["w"] - videos[1]["w"]) < 1 and videos[0]["w"] > 100  # side by side, same size
            assert all(re.search(r"/media/[0-9a-f]+\.mp4$", v["src"]) for v in videos)
            # Streamlit loops by seeking back on 'ended' (no loop attribute): wait until both wrapped.
            page.wait_for_function(LOOPED, timeout=TIMEOUT_MS, polling=100)

            _answer_current(page, 1)
            _answer_current(page, 2)
            page.reload()
            _wait_question(page, 3)
            _wait_playing(page)
            html = page.content()
        finally:
            browser.close()

    methods = {m for q in bundle.questions for m in (q.method_a, q.method_b)}
    slugs = {q.prompt_id for q in bundle.questions}
    for word in methods | slugs | {q.question_id for q in bundle.questions}:
        assert word not in html, word
        assert not [u for u in requested if word in u], word
    media = [u for u in requested if urlparse(u).path.startswith("/media/")]
    assert media and all(re.search(r"/media/[0-9a-f]+\.mp4$", u) for u in media)

    engine = store.make_engine(db)
    votes = store.export_votes(engine)
    assert len(votes) == 10 and votes["question_id"].nunique() == 2
    assert list(votes["choice"][:5]) == ["right", "left", "right", "left", "right"]
