"""The user's pages: every measured figure comes from scripts/make_docs.py, which reads the committed results,
and the generated pages are up to date; every link between the pages leads to a file that exists."""

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_docs  # noqa: E402

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "experiments").rglob("*.md"))]
# durations the README states that are settings or rough guidance, not measurements
NOT_MEASURED = {"5 minutes", "20 minutes"}  # bounds stated, not results


def test_the_generated_pages_are_up_to_date(capsys):
    assert make_docs.main(["--check"]) == 0, capsys.readouterr().err


def test_a_generated_page_out_of_date_is_named_with_the_command_that_rewrites_it(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copy(ROOT / "docs" / "results.md", tmp_path / "docs" / "results.md")
    readme = (tmp_path / "README.md").read_text()
    (tmp_path / "README.md").write_text(readme.replace("<!-- results:start -->\n", "<!-- results:start -->\nold\n"))

    assert make_docs.main(["--check"], root=tmp_path) == 1
    err = capsys.readouterr().err
    assert "README.md is out of date: run python scripts/make_docs.py" in err
    assert "docs/performance.md is out of date" in err and "docs/results.md" not in err

    assert make_docs.main([], root=tmp_path) == 0
    assert (tmp_path / "README.md").read_text() == readme
    assert make_docs.main(["--check"], root=tmp_path) == 0


def test_a_readme_without_the_markers_is_refused_in_one_line():
    with pytest.raises(SystemExit, match="README.md has no <!-- results:start -->"):
        make_docs.replace_marked("no markers here", "results", "table")


def test_the_readme_states_no_measured_figure_outside_the_generated_parts():
    text = (ROOT / "README.md").read_text()
    for name in ("caption", "results"):
        text = re.sub(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", "", text, flags=re.S)
    measured = re.findall(r"\d[\d,.]*\s?(?:s\b|seconds|minutes|hours|×(?!\d)|%)|SWD \d|0\.9\d+", text)
    assert set(measured) <= NOT_MEASURED, set(measured) - NOT_MEASURED


@pytest.mark.parametrize("res", [32, 64])
def test_the_shifts_rows_are_judged_at_its_budget_from_the_speed_check_beside_the_fourth_default(res):
    """The fourth default's iterations over the two's step ratio, timed in one process: the row's point."""
    iterations, ratio = make_docs.translation_budget(res)
    row = make_docs.SIZES[res]["rows"][make_docs.SHIFTED_ROW]
    assert ratio > 1 and row.at == iterations and make_docs.figures(row)["iterations"] == iterations


@pytest.mark.parametrize("res", [32, 64])
def test_the_pages_default_at_each_size_is_what_train_trains_there(res):
    sys.path.insert(0, str(ROOT / "experiments"))
    import compare_recipes

    candidate = make_docs.default_row(res).candidate
    assert "+bf16" in candidate and compare_recipes.is_default(candidate.replace("+bf16", ""), res)
    timed, _ = make_docs.default_speed_names(res)
    assert timed.replace("+bnr16", "") == candidate.replace("+bnr16", "")  # --bn-recalibration changes no step


def test_the_readme_caption_and_table_and_results_page_give_one_figure_for_the_default_at_64_px():
    swd = f"{make_docs.figures(make_docs.default_row(64))['swd_mean']:.1f}"
    readme = (ROOT / "README.md").read_text()
    assert f"SWD against the unseen photos is {swd}" in readme and f"| {swd} / " in readme
    assert f"| {swd} (" in (ROOT / "docs" / "results.md").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_image_leads_to_a_file(page):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    missing = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert not missing, missing


def test_the_pages_the_package_names_exist():
    named = {name for path in (ROOT / "dcgan_faces").rglob("*.py")
             for name in re.findall(r"docs/[a-z_]+\.md", path.read_text())}
    assert named and all((ROOT / m).is_file() for m in named), named


def test_the_full_default_run_says_which_points_are_not_reached_yet(monkeypatch):
    judged = {1000: {"iterations": 1000, "swd": 37.12, "face_rate": 0.897, "more_faces": {"face_rate": 0.901}}}
    monkeypatch.setattr(make_docs, "curve_points", lambda curve: judged)
    monkeypatch.setattr(make_docs, "default_run_points", lambda: (1000, 4467, 10000))
    table = "\n".join(make_docs.curve_table(make_docs.DEFAULT_RUN, (1000, 4467, 10000)))
    assert "| 1,000 | 37.1 | 0.897 | 0.9010 |" in table and "| 10,000 | not reached yet |" in table
    sentence = make_docs.default_run_sentence()
    assert "SWD 37.1 at 1,000 iterations, face share 0.897" in sentence and "10,000 not reached yet" in sentence


def test_the_64px_search_table_counts_each_seed_judged_at_the_budget_and_skips_the_unjudged(tmp_path, monkeypatch):
    search = tmp_path / make_docs.SEARCH_64
    (search / "results").mkdir(parents=True)
    for name in ("speed.json", "floor.json"):
        shutil.copy(make_docs.RECIPES / make_docs.SEARCH_64 / name, search / name)
    def judged(iterations: int, swd: float) -> dict:
        return {"iterations": iterations, "swd": swd, "face_rate": 0.97,
                "more_faces": {"images": 10000, "face_rate": 0.965}}

    for seed, swd in ((0, 15.0), (1, 17.0)):
        (search / "results" / f"default+bf16+gf128+ddrop0-seed{seed}.json").write_text(
            make_docs.json.dumps({"seed": seed, "budgets": {"equal_time": judged(4467, swd)}}))
    # a third seed judged on the way of a longer run: its point at the budget counts, its others do not
    (search / "curve-default+bf16+gf128+ddrop0-seed2.json").write_text(
        make_docs.json.dumps({"seed": 2, "points": [judged(1000, 40.0), judged(4467, 16.0), judged(10000, 1.0)]}))
    monkeypatch.setattr(make_docs, "RECIPES", tmp_path)
    monkeypatch.setattr(make_docs, "curve_points", lambda curve: {})
    table = "\n".join(make_docs.search_table())
    row = "(a generator half as wide) | 4.47× | 3 | 4,467 | 16.0 (15.0–17.0) | 0.970 (0.970–0.970)"
    assert row in table
    assert "hinge" not in table and "seed 0 only" not in table  # not judged: no row


def test_an_untimed_search_candidate_is_timed_as_the_recipe_it_changes():
    ratios = {"default+bf16+ddrop0": 2.55, "default+bf16+gf128+ddrop0": 4.47, "default+bf16+ddrop0+hinge": 2.56}
    assert make_docs.timed_speed("default+bf16+gf128+ddrop0+beta2_0.99", ratios) == 4.47
    assert make_docs.timed_speed("default+bf16+ddrop0+beta2_0.99", ratios) == 2.55
    assert make_docs.timed_speed("default+bf16+ddrop0+hinge", ratios) == 2.56  # measured itself


def test_the_ramps_table_pools_every_seeds_paired_draws_against_ramp_10(tmp_path, monkeypatch):
    folder = tmp_path / "ema-ramps-64px"
    folder.mkdir()
    for seed, (swd_3, swd_10) in enumerate(((15.0, 16.0), (18.0, 17.0), (None, 16.0))):
        judged = {"10": {"swd": swd_10, "swd_draws": [swd_10, swd_10], "more_faces": {"images": 10000,
                                                                                      "face_rate": 0.98}}}
        paired = {"10": {"mean_difference": 0.0, "lower_on": 0, "draws": 2}}
        if swd_3 is not None:  # seed 2's run did not keep ramp 3
            judged["3"] = {"swd": swd_3, "swd_draws": [swd_3, swd_3], "more_faces": {"images": 10000,
                                                                                   "face_rate": 0.96}}
            paired["3"] = {"mean_difference": swd_3 - swd_10, "lower_on": 2 * (swd_3 < swd_10), "draws": 2}
        (folder / f"ramps-{make_docs.RECALIBRATED}-seed{seed}.json").write_text(make_docs.json.dumps(
            {"seed": seed, "iterations": 4467, "ramps": judged, "paired_with_ramp_10": paired}))
    monkeypatch.setattr(make_docs, "RECIPES", tmp_path)
    section = "\n".join(make_docs.ramps_section())
    assert "| seed 0 | seed 1 | seed 2 | mean SWD |" in section
    assert "| 3 | 15.0 | 18.0 | — | 16.50 | 0.9600 | 2 of 4 | +0.00 |" in section
    assert "| **10** (the default) | 16.0 | 17.0 | 16.0 | 16.33 | 0.9800 |" in section
    assert "(4,467 iterations)" in section and "on 1 more draws" in section
    monkeypatch.setattr(make_docs, "RECIPES", tmp_path / "nothing")
    assert make_docs.ramps_section() == []
