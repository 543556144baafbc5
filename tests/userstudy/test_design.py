"""Design files: the paper's design, the short form, JSON, and clear errors."""

import json

import pytest

from userstudy.design import DesignError, design_from_dict, load_design


def test_paper_design_has_table2_and_table3(paper_design):
    d = paper_design
    assert d.primary == "4dfy"
    assert d.comparisons == ("mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane",
                             "single_stage", "single_grid")
    assert [t.name for t in d.tables] == ["table2", "table3"]
    t2 = d.tables[0]
    assert [s.prompt_set for s in t2.sections] == ["mav3d_28", "ablation_5"]
    assert t2.sections[0].rows == ("mav3d", "4dfy")  # the paper prints MAV3D above 4D-fy
    assert t2.sections[1].heading == "Ablation Study"
    assert d.label("mav3d") == "MAV3D" and "nabla" in d.label("wo_3d", latex=True)
    assert d.check.correct_method == "4dfy" and d.check.decoys == ("attention_decoy",)


def test_short_form_and_json(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"primary": "4dfy", "comparisons": ["mav3d"]}))
    d = load_design(path)
    assert d.comparisons == ("mav3d",) and d.check.correct_method == "4dfy"
    assert d.label("wo_3d", latex=True) == r"wo\_3d"  # unlabeled names are escaped for LaTeX


@pytest.mark.parametrize("data,message", [
    ({"comparisons": ["mav3d"]}, "'primary'"),
    ({"primary": "4dfy"}, "exactly one of"),
    ({"primary": "4dfy", "comparisons": ["mav3d", "mav3d"]}, "more than once"),
    ({"primary": "4dfy", "comparisons": ["mav3d"], "colour": 1}, "unknown key(s) colour"),
    ({"primary": "4dfy", "comparisons": ["mav3d"], "attention_check": {"decoys": ["mav3d"]}}, "decoys"),
    ({"primary": "4dfy", "comparisons": ["mav3d"], "methods": {"ghost": "G"}}, "labels for methods not in"),
    ({"primary": "4dfy", "tables": {"t": {"sections": [{"rows": ["4dfy"]}]}}}, "no comparisons"),
    ({"primary": "4dfy", "tables": {"t": {"sections": [{"rows": ["mav3d"], "n_prompts": 0}]}}}, "n_prompts"),
    ({"primary": "4dfy", "comparisons": ["mav3d"], "n_prompts": 0}, "'n_prompts' must be a positive integer"),
    ({"primary": "4dfy", "tables": {"t": {"sections": [{"rows": ["mav3d"]}]}}, "n_prompts": 5},
     "top-level n_prompts belong(s) to the short form"),
    ({"primary": "4dfy", "tables": {"table": {"sections": [{"rows": ["mav3d"]}]}}}, "fixed output"),
    ({"primary": "4dfy", "tables": {"report": {"sections": [{"rows": ["mav3d"]}]}}}, "fixed output"),
    ({"primary": "4dfy", "tables": {"../t": {"sections": [{"rows": ["mav3d"]}]}}}, "a table name is a file stem"),
    ({"primary": "4dfy", "comparisons": ["mav3d"], "methods": ["mav3d"]}, "'methods' must map a method"),
    ({"primary": "4dfy", "comparisons": ["mav3d"], "methods": {"mav3d": "4dfy"}}, "two rows labelled '4dfy'"),
])
def test_bad_designs_are_explained(data, message):
    with pytest.raises(DesignError) as info:
        design_from_dict(data)
    assert message in str(info.value)


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(DesignError, match="not found"):
        load_design(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("primary: [unclosed\n")
    with pytest.raises(DesignError, match="cannot parse"):
        load_design(bad)
    bad.write_bytes("primary: 4dfy\ncomparisons: [mav3d]\nname: \u00e9tude\n".encode("latin-1"))
    with pytest.raises(DesignError, match=r"bad\.yaml: not UTF-8 text"):
        load_design(bad)


def test_short_form_table_and_prompts():
    d = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "ablation_5", "n_prompts": 3})
    assert [t.name for t in d.tables] == ["comparisons"]
    assert d.tables[0].sections[0].prompt_set == "ablation_5" and d.tables[0].sections[0].n_prompts == 3


def test_the_papers_survey_is_table2s_53_questions(paper_design):
    """S2: "a single survey consisting of 53 questions" (28 against MAV3D, 5 per ablation of Table 2);
    Table 3's comparisons are another 10. `select_tables` gives the survey of the named tables."""
    from prompts import PROMPT_DIR, load_prompts

    def n_questions(design):
        return sum(len(load_prompts(PROMPT_DIR / f"{s.prompt_set}.txt")) * sum(m != design.primary for m in s.rows)
                   for t in design.tables for s in t.sections)

    table2 = paper_design.select_tables(["table2"])
    assert n_questions(table2) == 53 and n_questions(paper_design) == 63
    assert table2.comparisons == paper_design.comparisons[:6] and table2.check == paper_design.check
    assert paper_design.select_tables(["table3"]).comparisons == ("single_stage", "single_grid")


def test_a_selected_table_is_a_valid_design_of_its_own(paper_design):
    """`survey build --tables table2` stores the selection in its bundle as a design, which is checked when read
    back: Table 3's labels must not stay behind (they did, and the bundle could be neither built nor served)."""
    from userstudy.design import design_from_dict
    from userstudy.survey.bundle import _design_data

    for name in ("table2", "table3"):
        chosen = paper_design.select_tables([name])
        back = design_from_dict(_design_data(chosen), source="bundle")
        assert set(back.labels) <= set(back.methods) and back.comparisons == chosen.comparisons
        assert all(back.label(m) == paper_design.label(m) for m in chosen.methods)


def test_two_rows_of_one_table_with_one_label_are_refused_naming_both_and_where_each_label_is():
    """The sections of a table together: the rows, CLIP cells and votes of two methods with one label could not be
    told apart (only the pipeline's `methods` stage refused it, so `analyze` and `survey build` printed such tables)."""
    data = {"primary": "4dfy", "methods": {"wo_3d": "w/o 3D", "wo_img": {"label": "w/o 3D", "latex": "x"}},
            "tables": {"t2": {"sections": [{"rows": ["mav3d", "4dfy"]}, {"rows": ["4dfy", "wo_3d", "wo_img"]}]}}}
    with pytest.raises(DesignError) as info:
        design_from_dict(data, source="mine.yaml")
    assert str(info.value) == ("mine.yaml: t2 would have two rows labelled 'w/o 3D': 'wo_3d' (methods.wo_3d.label) "
                               "and 'wo_img' (methods.wo_img.label); give one of them another label: under methods: "
                               "in the design (methods.<name>.label)")
    # a label equal to another row's name, in another section of the table
    data["methods"] = {"wo_img": "mav3d"}
    with pytest.raises(DesignError, match=r"t2 would have two rows labelled 'mav3d': 'mav3d' \(its name\) and "
                                          r"'wo_img' \(methods.wo_img.label\)"):
        design_from_dict(data)
    # a caller putting a design together from other sources words where each label comes from, and where to fix it
    with pytest.raises(DesignError) as info:
        design_from_dict(data, source="d", label_origins={"wo_img": "overrides.wo_img.label"}, relabel="elsewhere")
    assert str(info.value).endswith("'mav3d' (its name) and 'wo_img' (overrides.wo_img.label); give one of them "
                                    "another label: elsewhere")


def test_one_label_in_two_tables_and_a_method_in_two_sections_are_allowed():
    data = {"primary": "4dfy", "methods": {"single_grid": "w/o 3D", "wo_3d": "w/o 3D"},
            "tables": {"t2": {"sections": [{"rows": ["4dfy", "wo_3d"]}]},
                       "t3": {"sections": [{"rows": ["4dfy"]}, {"rows": ["4dfy", "single_grid"]}]}}}
    d = design_from_dict(data)
    assert d.label("wo_3d") == d.label("single_grid") == "w/o 3D"
