"""The user-study survey: a bundle builder (videos under opaque names, questions from a design), a
Streamlit app that collects head-to-head votes, and its SQLAlchemy storage (SQLite or PostgreSQL)
whose export is the votes format `fourdfy analyze` reads.

Modules: `bundle` (build/load a bundle), `store` (schema, raters, answers, export, tally),
`app.py` (the Streamlit script; `streamlit run` it or use `fourdfy survey serve`)."""

from userstudy.survey.bundle import Bundle, BundleError, Question, build_bundle, load_bundle
from userstudy.survey.store import (
    CRITERIA,
    SCHEMA_VERSION,
    StoreError,
    export_votes,
    init_db,
    make_engine,
    write_votes_csv,
)

__all__ = ["Bundle", "BundleError", "Question", "build_bundle", "load_bundle", "CRITERIA", "SCHEMA_VERSION",
           "StoreError", "export_votes", "init_db", "make_engine", "write_votes_csv"]
