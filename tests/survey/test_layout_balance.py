"""Left/right balance of the raters' layouts with an odd number of questions: the odd question's side is
drawn from the rater's seed, so no question (and not the only question of a 1-question survey) shows the
primary on the same side to every rater."""

from collections import Counter

import pytest
from survey_helpers import at

from userstudy.survey import store
from userstudy.survey.bundle import Question

N_SEEDS = 2000


def _swapped(n: int, seed: int) -> dict[str, bool]:
    return dict(store.draw_layout([f"q{i}" for i in range(n)], seed))


@pytest.mark.parametrize("n", [1, 5])
def test_odd_question_counts_are_balanced_per_rater_and_across_raters(n):
    per_rater = Counter()
    per_question = Counter()
    for seed in range(N_SEEDS):
        layout = _swapped(n, seed)
        assert layout == _swapped(n, seed)  # deterministic per seed
        k = sum(layout.values())
        assert k in (n // 2, n // 2 + 1)  # each rater balanced to within the odd question
        per_rater[k] += 1
        per_question.update(q for q, sw in layout.items() if sw)
    # Each question is swapped for half the raters in expectation: Binomial(2000, 1/2) has sd 22.4, so a
    # share outside 1000 +- 100 (4.5 sd) would be a real bias (the old rule swapped each of 5 questions
    # for 2/5 of the raters, ~800, and the only question of a 1-question survey for none).
    for i in range(n):
        assert abs(per_question[f"q{i}"] - N_SEEDS / 2) <= 100, (n, per_question)
    # and the raters who see the extra swap are about half of them, not none
    assert abs(per_rater[n // 2 + 1] - N_SEEDS / 2) <= 100, per_rater


@pytest.mark.parametrize("n", [2, 4, 6])
def test_even_question_counts_swap_exactly_half(n):
    for seed in range(200):
        assert sum(_swapped(n, seed).values()) == n // 2


def test_a_one_question_survey_does_not_show_the_primary_on_one_side_to_everyone(tmp_path):
    """Through the store, as the app assigns raters: method_left is not the primary for every rater."""
    engine = store.make_engine(f"sqlite:///{tmp_path / 'one.sqlite'}")
    store.init_db(engine, "one-question")
    q = Question(question_id="myvid__a_panda_dancing", prompt_id="a_panda_dancing", prompt="A panda dancing.",
                 method_a="mymethod", method_b="myvid", video_a="a.mp4", video_b="b.mp4")
    left = Counter()
    for seed in range(40):
        rater = store.create_rater(engine, [q], at(0), seed=seed)
        items, _ = store.progress(engine, rater)
        assert len(items) == 1 and {items[0].method_left, items[0].method_right} == {"mymethod", "myvid"}
        left[items[0].method_left] += 1
    engine.dispose()
    # 40 fair draws: each method is on the left for some raters (all on one side has probability 2**-39)
    assert left["mymethod"] > 0 and left["myvid"] > 0, left
