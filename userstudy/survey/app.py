"""The survey app. Run it with `fourdfy survey serve BUNDLE`, or directly:

    FOURDFY_SURVEY_BUNDLE=bundle streamlit run userstudy/survey/app.py

Settings (environment, or `.streamlit/secrets.toml` keys in brackets):
FOURDFY_SURVEY_BUNDLE (bundle folder, required), FOURDFY_SURVEY_DB [db_url] (default: SQLite file
`survey.sqlite` in the bundle), FOURDFY_SURVEY_COMPLETION_CODE [completion_code],
FOURDFY_SURVEY_ADMIN_PASSWORD [admin_password] (none set -> the admin page is off).

Pages: `/` consent, questions and completion; `/?t=<token>` resumes a rater (so does `/` again in the
same browser tab, e.g. after Back, and a platform link `/?PROLIFIC_PID=...` already started); `/?view=admin`
the admin page. The browser only ever sees the prompt, opaque media URLs and the rater's token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
import time
import traceback
from datetime import datetime, timezone
from urllib.parse import urlsplit

import streamlit as st
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from streamlit.runtime.media_file_storage import MediaFileStorageError

from userstudy.survey import store
from userstudy.survey.bundle import MEDIA_DIR, load_bundle
from userstudy.survey.texts import CRITERIA_TEXT

# Streamlit autoplays a video only the first time its element mounts in a page; a remount (reruns
# shuffle the element tree) leaves it paused at 0. This constant script starts every new video
# element once, muted; a rater may still pause it with the controls.
# Streamlit also keeps the page's scroll position across reruns, so after Submit the next question would
# open where the last one's Submit button was, its "Question k of n" and prompt out of view: the same
# script scrolls the page (Streamlit scrolls its <main data-testid="stMain">, not the window) to the top
# whenever the progress text changes, i.e. whenever another question is shown.
_PAGE_SCRIPT = """<script>
(function () {
  const start = () => document.querySelectorAll('video[data-testid="stVideo"]').forEach((v) => {
    if (v.dataset.started) return;
    v.dataset.started = "1";
    v.muted = true;
    const p = v.play();
    if (p) p.catch(() => {});
  });
  const toTop = () => {
    const main = document.querySelector('[data-testid="stMain"]');
    if (main) main.scrollTo(0, 0);
    window.scrollTo(0, 0);
  };
  const question = () => {
    const bar = document.querySelector('[data-testid="stProgress"]');
    return bar ? bar.innerText : null;
  };
  const check = () => {
    start();
    const q = question();
    if (q !== null && q !== window.__surveyQuestion) {
      window.__surveyQuestion = q;
      toTop();
    }
  };
  check();
  if (!window.__surveyObserver) {
    window.__surveyObserver = new MutationObserver(check);
    window.__surveyObserver.observe(document.body, {childList: true, subtree: true, characterData: true});
  }
})();
</script>"""
# Streamlit stacks columns below 640 px, which would put the "Left" video above the "Right" one on a
# phone: the row of the two videos (the container keyed VIDEO_ROW) stays side by side at any width.
VIDEO_ROW = "survey_videos"
_VIDEO_ROW_CSS = f"""<style>
.st-key-{VIDEO_ROW} [data-testid="stHorizontalBlock"] {{ flex-wrap: nowrap !important; }}
.st-key-{VIDEO_ROW} [data-testid="stColumn"] {{
  flex: 1 1 0 !important; min-width: 0 !important; width: auto !important;
}}
</style>"""
# session_state keys of one browser tab: the rater's token, the question shown last, the question submitted
# last, a question shown because the one before was answered in another tab, and the choices (radio key ->
# side) made on the question shown when the database failed, shown again once it is back
TOKEN_KEY, SHOWN_KEY, SUBMITTED_KEY, MOVED_KEY = "rater_token", "shown_question", "submitted_question", "moved_question"
KEPT_KEY = "kept_choices"
RETRY_KEY = "retry"
SIDE_LABELS = {"Left": "left", "Right": "right"}
EXTERNAL_ID_PARAMS = ("pid", "PROLIFIC_PID", "workerId")  # crowd platforms append one of these to the link
ANSWERED_ELSEWHERE = ("That question was already answered (in another tab or window); this is the next one. "
                      "Nothing you chose on it here was recorded.")
UNAVAILABLE = ("The study is unavailable for a moment. The answers you have submitted are saved, and this page keeps "
               "the choices you made on the question you were answering. Please wait a minute, then press "
               "*Try again* to continue where you left off (reloading the page continues too, without those choices).")


VIDEO_UNAVAILABLE = ("This video is unavailable; the study is being updated. The answers you have submitted are saved: "
                     "please come back in a few minutes with your personal link below, or press *Try again*.")
SETTINGS_BROKEN = ("Your completion code cannot be shown right now (a setting of the study server cannot be read). "
                   "Please reopen your personal link below in a few minutes, or contact the researchers.")


class SettingError(Exception):
    """A secrets file that cannot be read (`serve` checked it at start; edited since)."""


def _setting(env: str, secret: str) -> str:
    """An environment variable, else a key of the secrets files (read as `serve` and `export` read `db_url`),
    else ''. SettingError when the secrets files must be read and cannot (logged here, one line)."""
    value = os.environ.get(env, "").strip()
    if value:
        return value
    try:
        return store.secret(secret)
    except store.StoreError as err:
        print(f"survey: error: {err}", file=sys.stderr, flush=True)
        raise SettingError(str(err)) from None


@st.cache_resource(show_spinner=False)
def _bundle(path: str):
    return load_bundle(path)


@st.cache_resource(show_spinner=False)
def _engine(url: str, bundle_id: str, question_ids: tuple[str, ...]):
    engine = store.make_engine(url)
    store.init_db(engine, bundle_id, question_ids)
    return engine


def _escape_markdown(text: str) -> str:
    """Show prompt text verbatim (no emphasis, links, LaTeX or HTML from its characters)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# A crowd platform's id placeholder left in the link ({{%PROLIFIC_PID%}}, ${workerId}, [pid], <pid>): the platform
# did not fill it in, so every participant would carry the same text. (A comment, not a string under the assignment:
# Streamlit runs this file as the page script, and its "magic" would show a bare string to every rater.)
_PLACEHOLDER = re.compile(r"\{\{.*\}\}|\{.*\}|%.*%|\$\{.*\}|\[.*\]|<.*>")


def external_id_of(params) -> str:
    """The crowd platform's participant id among the link's query `params` ('' when none, or when it is a
    placeholder the platform left unfilled: one id shared by all would merge every participant into one rater; or
    when `store.external_id_problem` refuses it: a control character, or a first character a spreadsheet would
    take for a formula in the exported votes.csv)."""
    value = next((str(params[p]) for p in EXTERNAL_ID_PARAMS if p in params), "").strip()[:200]
    if _PLACEHOLDER.fullmatch(value):
        print(f"survey: the participant id on a link is a placeholder ({value!r}), not an id: the rater gets no "
              "crowd id; check the study link on the crowd platform", file=sys.stderr, flush=True)
        return ""
    problem = store.external_id_problem(value)
    if problem:
        print(f"survey: the participant id on a link {problem} ({value!r}), so it is not taken: the rater gets no "
              "crowd id", file=sys.stderr, flush=True)
        return ""
    return value


def _external_id() -> str:
    return external_id_of(st.query_params)


def _consent(engine, bundle) -> None:
    st.title("Video comparison study")
    n = len(bundle.questions)
    st.markdown(
        f"You will see **{n} question{'' if n == 1 else 's'}**. Each shows a text prompt and two short looping "
        "videos generated from it. For each question, choose the better video (left or right) for each of "
        "five criteria:")
    for title, text in CRITERIA_TEXT.values():
        st.markdown(f"- **{title}:** {text}")
    st.markdown(
        "All five choices are required. There are no right or wrong answers except for a few check "
        "questions with an obvious answer. Your progress is saved after every question: the question pages "
        "show your personal link, keep it to continue later. We record your choices and the time you spend "
        "per question, nothing else; participation is voluntary and you may stop at any time.")
    agreed = st.checkbox("I have read the instructions and agree to take part.", key="consent")
    if st.button("Start", key="start", disabled=not agreed, type="primary"):
        # found or created in one transaction: two Start clicks of one participant (two tabs) make one rater
        rater = store.rater_for_participant(engine, bundle.questions, _now(), _external_id())
        st.session_state[TOKEN_KEY] = rater.token
        st.query_params.clear()
        st.query_params["t"] = rater.token
        st.rerun()


def _question_key(rater, item) -> str:
    """Widget-key part naming this rater's question: a question shown in place of another (answered in a
    second tab) gets fresh widgets, and no choice carries over. A digest, so that the page's HTML (Streamlit
    writes keys into class names) carries no question id."""
    digest = hashlib.sha256(f"{rater.token}\0{item.question_id}".encode("utf-8")).hexdigest()[:12]
    return f"{item.position}_{digest}"


def _question(engine, bundle, rater, item, n_done: int, n_all: int) -> None:
    question = bundle.by_id[item.question_id]
    qkey = _question_key(rater, item)
    timer = f"shown_{qkey}"
    st.session_state.setdefault(timer, time.monotonic())
    # This browser tab showed another question of this rater last and did not submit it: it was answered
    # elsewhere (a second tab). Say so for as long as this question is shown (a notice vanishing at the next
    # click would shift the choices under the rater's finger).
    shown = st.session_state.get(SHOWN_KEY)  # (token, question key)
    if (shown is not None and shown[0] == rater.token and shown[1] != qkey
            and shown[1] != st.session_state.get(SUBMITTED_KEY)):
        st.session_state[MOVED_KEY] = qkey
    st.session_state[SHOWN_KEY] = (rater.token, qkey)
    st.progress(n_done / n_all, text=f"Question {n_done + 1} of {n_all}")
    if st.session_state.get(MOVED_KEY) == qkey:
        st.info(ANSWERED_ELSEWHERE)
    st.markdown(f"**Prompt:** {_escape_markdown(question.prompt)}")
    videos = {question.method_a: question.video_a, question.method_b: question.video_b}
    # A video gone from media/ (the bundle folder deleted or rebuilt under the running server, e.g. by `dvc repro`):
    # nothing to judge, so the rater is told and keeps their link; the server log names the file.
    gone = [name for name in videos.values() if not bundle.video_path(name).is_file()]
    if not gone:
        # the row's style before the row: sent after it, a slow connection shows a phone the videos stacked first
        st.html(_VIDEO_ROW_CSS)
        with st.container(key=VIDEO_ROW):
            left, right = st.columns(2, gap="medium")
        for col, side, method in ((left, "Left", item.method_left), (right, "Right", item.method_right)):
            with col:
                st.caption(side)
                try:
                    st.video(str(bundle.video_path(videos[method])), format="video/mp4", loop=True, muted=True,
                             autoplay=True)
                except (MediaFileStorageError, OSError):  # removed between the check and Streamlit's read
                    gone.append(videos[method])
    if gone:
        for name in gone:
            print(f"survey: error: video {MEDIA_DIR}/{name} of the bundle {bundle.root} cannot be read (the bundle "
                  "folder was removed or rebuilt while serving? serve a copy that nothing rebuilds); raters are told "
                  "it is unavailable", file=sys.stderr, flush=True)
        st.warning(VIDEO_UNAVAILABLE)
        st.button("Try again", key=RETRY_KEY, type="primary")  # a click reruns the page
        st.caption("Your personal link to continue later (your answers so far are saved):")
        st.code(_personal_link(rater.token), language=None)
        return
    st.html(_PAGE_SCRIPT, unsafe_allow_javascript=True)
    st.markdown("Choose the video you prefer for each criterion:")
    picks = {}
    kept = st.session_state.get(KEPT_KEY, {})  # choices made here before a database outage (this question's keys only)
    for crit, (title, text) in CRITERIA_TEXT.items():
        key = f"r_{qkey}_{crit}"
        index = list(SIDE_LABELS).index(kept[key]) if kept.get(key) in SIDE_LABELS else None
        picks[crit] = st.radio(title, list(SIDE_LABELS), index=index, horizontal=True, help=text, key=key)
    missing = [CRITERIA_TEXT[c][0] for c, v in picks.items() if v is None]
    if missing:
        st.caption(f"Still to answer: {', '.join(missing)}.")
    if st.button("Submit and continue", key=f"submit_{qkey}", disabled=bool(missing), type="primary"):
        choices = {c: SIDE_LABELS[v] for c, v in picks.items()}
        seconds = time.monotonic() - st.session_state[timer]
        if store.submit_answer(engine, rater, question, choices, seconds=seconds, now=_now()):
            st.session_state[SUBMITTED_KEY] = qkey
        else:
            # Another tab's answer to this question was committed first (both tabs showed it when their Submit
            # arrived): the first answer stays, and this tab's next question says that these choices were not
            # recorded (the notice is shown for a question left without this tab's submit).
            st.session_state.pop(SUBMITTED_KEY, None)
        st.session_state.pop(KEPT_KEY, None)
        st.rerun()
    st.caption("Your personal link to continue later (your answers so far are saved):")
    st.code(_personal_link(rater.token), language=None)


def _personal_link(token: str) -> str:
    """The rater's link as their browser reaches the app (through any proxy); relative where unknown."""
    base = st.context.url or ""  # scheme, host and path, without the query
    if base and not urlsplit(base).path:
        base += "/"
    return f"{base}?t={token}"


def _completion(rater) -> None:
    st.title("Thank you!")
    st.success("All your answers are saved.")
    try:
        code = _setting("FOURDFY_SURVEY_COMPLETION_CODE", "completion_code")
    except SettingError:  # the page still says the answers are saved, and how to get the code later
        st.warning(SETTINGS_BROKEN)
        st.code(_personal_link(rater.token), language=None)
        return
    if code:
        st.markdown("Your completion code:")
        st.code(code, language=None)


def _tally_table(t: dict, design) -> "pd.DataFrame":
    """The admin table as people read it: the design's labels, percentages to one decimal."""
    import pandas as pd

    primary = design.label(design.primary)
    table = t["table"]
    return pd.DataFrame({
        "Comparison": [f"{primary} vs {design.label(m)}" for m in table["comparison"]],
        "Criterion": [CRITERIA_TEXT.get(c, (c,))[0] for c in table["criterion"]],
        "Judgments": table["n"].astype(int),
        f"For {primary}": table["for_primary"].astype(int),
        f"% for {primary}": table["pct_primary"].astype(float).round(1),
    })


def _admin(engine, bundle) -> None:
    st.title("Survey admin")
    try:
        expected = _setting("FOURDFY_SURVEY_ADMIN_PASSWORD", "admin_password")
    except SettingError:  # the file's path and reason go to the server log only: this page is not logged in yet
        st.error("The admin page is off: the server's .streamlit/secrets.toml cannot be read (the server log says "
                 "why).")
        return
    if not expected:
        st.error("The admin page is off: no admin password is configured "
                 "(set FOURDFY_SURVEY_ADMIN_PASSWORD or admin_password in .streamlit/secrets.toml).")
        return
    if not st.session_state.get("admin_ok"):
        with st.form("admin_login_form", border=False):  # Enter in the field submits the form
            given = st.text_input("Password", type="password", key="admin_password")
            submitted = st.form_submit_button("Log in", key="admin_login")
        if submitted:
            if hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
                st.session_state["admin_ok"] = True
                st.rerun()
            time.sleep(1.0)  # slows down guessing
            st.error("Wrong password.")
        return
    design = bundle.design
    t = store.tally(engine, design)
    a, b, c, d = st.columns(4)
    a.metric("Raters started", t["raters_started"])
    b.metric("Raters completed", t["raters_completed"])
    c.metric("Judgments", t["judgments"])
    d.metric("Median s / question", "-" if t["median_seconds"] != t["median_seconds"] else f"{t['median_seconds']:.1f}")
    primary = design.label(design.primary)
    if t["exclusion_error"]:
        st.subheader(f"Preference for {_escape_markdown(primary)}: all raters, before exclusions")
        st.caption(f"The attention-check rule of `fourdfy analyze` could not be applied: {t['exclusion_error']}")
    else:
        n_out = len(t["excluded"])
        st.subheader(f"Preference for {_escape_markdown(primary)}")
        st.caption(f"Attention checks left out, and the {n_out} rater(s) that `fourdfy analyze` excludes by "
                   f"default ({t['rule']}); `fourdfy analyze` gives the final numbers and their intervals.")
    st.dataframe(_tally_table(t, design), hide_index=True, key="admin_table",
                 column_config={f"% for {primary}": st.column_config.NumberColumn(format="%.1f")})
    st.subheader("Raters who failed attention checks")
    failures = t["check_failures"].rename(columns={"rater_id": "Rater", "failed": "Failed judgments",
                                                   "checks": "Check judgments", "excluded": "Excluded"})
    st.dataframe(failures, hide_index=True, key="admin_checks")
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
    try:
        url = store.default_url(bundle.root)  # $FOURDFY_SURVEY_DB (`serve --db`), else secrets, else SQLite
    except store.StoreError as err:  # a secrets file broken since `serve` checked it
        print(f"survey: error: {err}", file=sys.stderr, flush=True)
        st.warning(UNAVAILABLE)
        st.button("Try again", key=RETRY_KEY, type="primary")
        return
    notice = st.container()  # at the top of the page, above whatever was drawn before an error
    try:
        _page(_engine(url, bundle.bundle_id, tuple(q.question_id for q in bundle.questions)), bundle)
    except (OperationalError, InterfaceError, DisconnectionError, PoolTimeout) as err:
        # the database is down, unreachable or locked (not a bug: those reach Streamlit's error page): a rater
        # gets a plain note and a button to retry; every submitted answer was committed, and the same link
        # resumes once it is back. The question's radios may not have been drawn in this run, so Streamlit
        # drops their values at its end: they are kept here and given back when the question is shown again.
        kept = {k: v for k, v in st.session_state.items() if str(k).startswith("r_") and v in SIDE_LABELS}
        st.session_state[KEPT_KEY] = {**st.session_state.get(KEPT_KEY, {}), **kept}
        _log_database_error(err, url)
        with notice:
            st.warning(UNAVAILABLE)
            st.button("Try again", key=RETRY_KEY, type="primary")  # a click reruns the page


def _log_database_error(err: BaseException, url: str) -> None:
    """One server-log line per database error (the password of the URL masked); the traceback too with
    FOURDFY_VERBOSE=1 (what `fourdfy --verbose survey serve` sets)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    print(store.redact(f"survey: database error: {type(err).__name__}: {text}", url), file=sys.stderr, flush=True)
    if os.environ.get("FOURDFY_VERBOSE") == "1":
        traceback.print_exception(err, file=sys.stderr)


def _page(engine, bundle) -> None:
    """The page a request asks for: admin, consent, a question or the completion code."""
    if st.query_params.get("view") == "admin":
        _admin(engine, bundle)
        return
    token = st.query_params.get("t")
    if not token:
        rater = _known_rater(engine)
        if rater is None:
            _consent(engine, bundle)
            return
        # a rater who started already continues (no second consent, no second rater): the link gets
        # their token back
        token = rater.token
        st.query_params.clear()
        st.query_params["t"] = token
    rater = store.get_rater(engine, token)
    if rater is None:
        st.error("This link is not valid. Open the study link you were given without the part after '?'.")
        return
    st.session_state[TOKEN_KEY] = rater.token
    item, n_done, n_all = store.next_assignment(engine, rater)
    if item is None:
        _completion(rater)
        return
    _question(engine, bundle, rater, item, n_done, n_all)


def _known_rater(engine):
    """The rater a link without a token belongs to, or None (consent first): the crowd platform's id on
    the link names one; without one, the rater this browser tab was showing (the browser's Back button
    returns to the link without the token, in the same Streamlit session)."""
    external = _external_id()
    if external:  # a platform id decides, so that another participant on this tab is never continued as the last
        return store.rater_for_external_id(engine, external)
    remembered = st.session_state.get(TOKEN_KEY)
    return store.get_rater(engine, remembered) if remembered else None


if __name__ == "__main__":  # streamlit runs this file as __main__; importing it does nothing
    main()
