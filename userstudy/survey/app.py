"""The survey app. Run it with `fourdfy survey serve BUNDLE`, or directly:

    FOURDFY_SURVEY_BUNDLE=bundle streamlit run userstudy/survey/app.py

Settings (environment, or `.streamlit/secrets.toml` keys in brackets):
FOURDFY_SURVEY_BUNDLE (bundle folder, required), FOURDFY_SURVEY_DB [db_url] (default: SQLite file
`survey.sqlite` in the bundle), FOURDFY_SURVEY_COMPLETION_CODE [completion_code],
FOURDFY_SURVEY_ADMIN_PASSWORD [admin_password] (none set -> the admin page is off).

Pages: `/` consent, questions and completion; `/?t=<token>` resumes a rater; `/?view=admin` the
admin page. The browser only ever sees the prompt, opaque media URLs and the rater's token.
"""

from __future__ import annotations

import hmac
import os
import re
import sys
import time
import traceback
from datetime import datetime, timezone

import streamlit as st
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from userstudy.survey import store
from userstudy.survey.bundle import load_bundle
from userstudy.survey.texts import CRITERIA_TEXT

# Streamlit autoplays a video only the first time its element mounts in a page; a remount (reruns
# shuffle the element tree) leaves it paused at 0. This constant script starts every new video
# element once, muted; a rater may still pause it with the controls.
_START_VIDEOS = """<script>
(function () {
  const start = () => document.querySelectorAll('video[data-testid="stVideo"]').forEach((v) => {
    if (v.dataset.started) return;
    v.dataset.started = "1";
    v.muted = true;
    const p = v.play();
    if (p) p.catch(() => {});
  });
  start();
  if (!window.__startVideos) {
    window.__startVideos = new MutationObserver(start);
    window.__startVideos.observe(document.body, {childList: true, subtree: true});
  }
})();
</script>"""
SIDE_LABELS = {"Left": "left", "Right": "right"}
EXTERNAL_ID_PARAMS = ("pid", "PROLIFIC_PID", "workerId")  # crowd platforms append one of these to the link
UNAVAILABLE = ("The study is unavailable for a moment. The answers you have submitted are saved. Please wait a "
               "minute, then press the button again or reload this page to continue where you left off.")


def _setting(env: str, secret: str) -> str:
    """An environment variable, else a key of the secrets files (read as `serve` and `export` read `db_url`),
    else ''."""
    return os.environ.get(env, "").strip() or store.secret(secret)


@st.cache_resource(show_spinner=False)
def _bundle(path: str):
    return load_bundle(path)


@st.cache_resource(show_spinner=False)
def _engine(url: str, bundle_id: str):
    engine = store.make_engine(url)
    store.init_db(engine, bundle_id)
    return engine


def _escape_markdown(text: str) -> str:
    """Show prompt text verbatim (no emphasis, links, LaTeX or HTML from its characters)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _consent(engine, bundle) -> None:
    st.title("Video comparison study")
    st.markdown(
        f"You will see **{len(bundle.questions)} questions**. Each shows a text prompt and two short looping "
        "videos generated from it. For each question, choose the better video (left or right) for each of "
        "five criteria:")
    for title, text in CRITERIA_TEXT.values():
        st.markdown(f"- **{title}:** {text}")
    st.markdown(
        "All five choices are required. There are no right or wrong answers except for a few check "
        "questions with an obvious answer. Your progress is saved after every question: keep the link of "
        "the next page to continue later. We record your choices and the time you spend per question, "
        "nothing else; participation is voluntary and you may stop at any time.")
    agreed = st.checkbox("I have read the instructions and agree to take part.", key="consent")
    if st.button("Start", key="start", disabled=not agreed, type="primary"):
        external = next((str(st.query_params[p]) for p in EXTERNAL_ID_PARAMS if p in st.query_params), "")
        external = external[:200]
        rater = (store.rater_for_external_id(engine, external)
                 or store.create_rater(engine, bundle.questions, _now(), external_id=external))
        st.query_params.clear()
        st.query_params["t"] = rater.token
        st.rerun()


def _question(engine, bundle, rater, item, n_done: int, n_all: int) -> None:
    question = bundle.by_id[item.question_id]
    timer = f"shown_{rater.token}_{item.position}"
    st.session_state.setdefault(timer, time.monotonic())
    st.progress(n_done / n_all, text=f"Question {n_done + 1} of {n_all}")
    st.markdown(f"**Prompt:** {_escape_markdown(question.prompt)}")
    videos = {question.method_a: question.video_a, question.method_b: question.video_b}
    left, right = st.columns(2, gap="medium")
    for col, side, method in ((left, "Left", item.method_left), (right, "Right", item.method_right)):
        with col:
            st.caption(side)
            st.video(str(bundle.video_path(videos[method])), format="video/mp4", loop=True, muted=True,
                     autoplay=True)
    st.html(_START_VIDEOS, unsafe_allow_javascript=True)
    st.markdown("Choose the video you prefer for each criterion:")
    picks = {}
    for crit, (title, text) in CRITERIA_TEXT.items():
        picks[crit] = st.radio(title, list(SIDE_LABELS), index=None, horizontal=True, help=text,
                               key=f"r_{item.position}_{crit}")
    missing = [CRITERIA_TEXT[c][0] for c, v in picks.items() if v is None]
    if missing:
        st.caption(f"Still to answer: {', '.join(missing)}.")
    if st.button("Submit and continue", key=f"submit_{item.position}", disabled=bool(missing), type="primary"):
        choices = {c: SIDE_LABELS[v] for c, v in picks.items()}
        seconds = time.monotonic() - st.session_state[timer]
        store.submit_answer(engine, rater, question, choices, seconds=seconds, now=_now())
        st.rerun()


def _completion(code: str) -> None:
    st.title("Thank you!")
    st.success("All your answers are saved.")
    if code:
        st.markdown("Your completion code:")
        st.code(code, language=None)


def _admin(engine, bundle) -> None:
    st.title("Survey admin")
    expected = _setting("FOURDFY_SURVEY_ADMIN_PASSWORD", "admin_password")
    if not expected:
        st.error("The admin page is off: no admin password is configured "
                 "(set FOURDFY_SURVEY_ADMIN_PASSWORD or admin_password in .streamlit/secrets.toml).")
        return
    if not st.session_state.get("admin_ok"):
        given = st.text_input("Password", type="password", key="admin_password")
        if st.button("Log in", key="admin_login"):
            if hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
                st.session_state["admin_ok"] = True
                st.rerun()
            time.sleep(1.0)  # slows down guessing
            st.error("Wrong password.")
        return
    t = store.tally(engine, bundle.design)
    a, b, c, d = st.columns(4)
    a.metric("Raters started", t["raters_started"])
    b.metric("Raters completed", t["raters_completed"])
    c.metric("Judgments", t["judgments"])
    d.metric("Median s / question", "-" if t["median_seconds"] != t["median_seconds"] else f"{t['median_seconds']:.1f}")
    st.subheader(f"Preference for {bundle.design.primary} (attention checks excluded)")
    st.dataframe(t["table"], hide_index=True, key="admin_table")
    st.subheader("Raters who failed attention checks")
    st.dataframe(t["check_failures"], hide_index=True, key="admin_checks")
    if t["judgments"]:
        st.download_button("Export votes.csv", store.export_votes(engine).to_csv(index=False).encode("utf-8"),
                           file_name="votes.csv", mime="text/csv", key="admin_export")
    if st.button("Refresh", key="admin_refresh"):
        st.rerun()


def main() -> None:
    st.set_page_config(page_title="Video comparison study", layout="centered")  # videos and choices fit one screen
    bundle_path = os.environ.get("FOURDFY_SURVEY_BUNDLE", "").strip()
    if not bundle_path:
        st.error("No survey bundle configured (set FOURDFY_SURVEY_BUNDLE or use `fourdfy survey serve BUNDLE`).")
        st.stop()
    bundle = _bundle(bundle_path)
    url = store.default_url(bundle.root)  # $FOURDFY_SURVEY_DB (what `serve` sets), else secrets, else SQLite
    notice = st.empty()  # at the top of the page, above whatever was drawn before an error
    try:
        _page(_engine(url, bundle.bundle_id), bundle)
    except (OperationalError, InterfaceError, DisconnectionError, PoolTimeout):
        # the database is down, unreachable or locked (not a bug: those reach Streamlit's error page): a rater
        # gets a plain note; every submitted answer was committed, and the same link resumes once it is back
        print("survey: database error:", file=sys.stderr)
        traceback.print_exc()
        notice.warning(UNAVAILABLE)


def _page(engine, bundle) -> None:
    """The page a request asks for: admin, consent, a question or the completion code."""
    if st.query_params.get("view") == "admin":
        _admin(engine, bundle)
        return
    token = st.query_params.get("t")
    if not token:
        _consent(engine, bundle)
        return
    rater = store.get_rater(engine, token)
    if rater is None:
        st.error("This link is not valid. Open the study link you were given without the part after '?'.")
        return
    item, n_done, n_all = store.next_assignment(engine, rater)
    if item is None:
        _completion(_setting("FOURDFY_SURVEY_COMPLETION_CODE", "completion_code"))
        return
    _question(engine, bundle, rater, item, n_done, n_all)


if __name__ == "__main__":  # streamlit runs this file as __main__; importing it does nothing
    main()
