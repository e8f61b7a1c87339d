"""A run folder knows itself (its mark), its metrics log survives a torn line, and a start that fails before
training takes back what it wrote. No TensorFlow: forged folders and logs."""

import json

from dcgan_faces.runfolder import MARK, Claim, RunFolder, is_run_folder
from dcgan_faces.sources.folder import find_images
from tests.conftest import draw_faces


def _rows(first, last):
    return [{"iteration": k, "d_loss": 0.5} for k in range(first, last + 1)]


def test_a_folder_is_a_run_by_its_mark_not_by_a_config_json(tmp_path):
    photos = draw_faces(tmp_path / "photos", count=3)
    (photos / "config.json").write_text('{"camera": "mine"}')
    (photos / "previews").mkdir()
    assert not is_run_folder(photos)
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_mark("abc")
    assert is_run_folder(run.path)
    mark = json.loads((run.path / MARK).read_text())
    assert mark["run_id"] == "abc" and mark["version"] and mark["created"]


def test_a_run_of_an_earlier_version_is_recognised_by_its_weights_or_rows(tmp_path):
    run = RunFolder(tmp_path / "old")
    run.path.mkdir()
    run.config_path.write_text("{}")
    assert not run.is_run(), "a config.json alone is anybody's"
    run.metrics_path.write_bytes(b"\0\0\0 not a row\n")
    assert not run.is_run(), "nor is a log without a single row"
    run.append_metrics(_rows(1, 2))
    assert run.is_unmarked_run() and run.is_run()
    run.metrics_path.unlink()
    run.checkpoints.mkdir()
    (run.checkpoints / "ckpt-00000002.npz").write_bytes(b"cut")
    assert run.is_unmarked_run()
    run.write_mark("x", earlier_version=True)
    assert run.is_run() and not run.is_unmarked_run() and run.mark()["made_by_an_earlier_version"]


def test_a_data_scan_skips_marked_and_earlier_runs_but_reads_a_photo_folder_with_a_config(tmp_path):
    parent = draw_faces(tmp_path / "parent", count=4)
    photos = draw_faces(parent / "phc", count=4, seed=1)
    (photos / "config.json").write_text("{}")
    (photos / "previews").mkdir()  # the old rule (config.json beside previews/) took this for a run
    marked = RunFolder(parent / "marked_run")
    marked.previews.mkdir(parents=True)
    marked.write_mark("a")
    (marked.previews / "iter-00000000.png").write_bytes((parent / "face02.png").read_bytes())
    earlier = RunFolder(parent / "earlier_run")
    earlier.previews.mkdir(parents=True)
    earlier.config_path.write_text("{}")
    earlier.append_metrics(_rows(1, 2))
    (earlier.previews / "iter-00000002.png").write_bytes((parent / "face02.png").read_bytes())
    found = find_images(parent)
    assert len(found) == 8 and sum(photos in path.parents for path in found) == 4
    assert not any("_run" in str(path) for path in found)


def test_one_torn_line_hides_no_later_row(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics(_rows(1, 6))
    with open(run.metrics_path, "a") as log:
        log.write('{"iteration": 7, "d_lo')  # a kill in the middle of an append
    log = run.read_metrics_log()
    assert [row["iteration"] for row in log.rows] == list(range(1, 7)) and log.unreadable == 1 and log.torn_tail
    run.append_metrics(_rows(7, 10))  # the resumed run goes on
    log = run.read_metrics_log()
    assert [row["iteration"] for row in log.rows] == list(range(1, 11))
    assert log.unreadable == 1 and not log.torn_tail
    assert run.metrics_path.read_text().splitlines()[6] == '{"iteration": 7, "d_lo'


def test_a_log_with_nul_bytes_in_front_keeps_its_later_rows(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics(_rows(1, 5))
    run.metrics_path.write_bytes(b"\0" * 12 + run.metrics_path.read_bytes())
    log = run.read_metrics_log()
    assert [row["iteration"] for row in log.rows] == [2, 3, 4, 5] and log.unreadable == 1


def test_truncating_the_log_keeps_earlier_rows_and_removes_a_log_left_empty(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics(_rows(1, 6))
    run.truncate_metrics(4)
    assert [row["iteration"] for row in run.read_metrics()] == [1, 2, 3, 4]
    run.truncate_metrics(0)
    assert not run.metrics_path.exists()  # an empty log would read as a damaged one


def test_a_failed_start_takes_back_the_folders_it_made_and_what_it_wrote(tmp_path):
    run = RunFolder(tmp_path / "a" / "b" / "run")
    claim = Claim(run)
    run.path.mkdir(parents=True)
    claim.note()
    run.write_mark("x")
    run.create()
    run.config_path.write_text("{}")
    claim.undo()
    assert not (tmp_path / "a").exists() and tmp_path.exists()


def test_a_failed_start_leaves_an_empty_folder_it_did_not_make_and_every_file_that_was_there(tmp_path):
    empty = RunFolder(tmp_path / "empty")
    empty.path.mkdir()
    claim = Claim(empty)
    claim.note()
    empty.write_mark("x")
    empty.create()
    claim.undo()
    assert empty.path.is_dir() and not any(empty.path.iterdir())

    resumed = RunFolder(tmp_path / "resumed")
    resumed.create()
    resumed.write_mark("y")
    resumed.config_path.write_text("{}")
    resumed.append_metrics(_rows(1, 2))
    before = sorted(p.relative_to(resumed.path) for p in resumed.path.rglob("*"))
    claim = Claim(resumed)
    claim.note()
    claim.undo()
    assert sorted(p.relative_to(resumed.path) for p in resumed.path.rglob("*")) == before


def test_only_a_run_is_moved_aside_and_deciding_a_fresh_start_moves_nothing(tmp_path):
    from dcgan_faces.resolve import Request, resolve_run

    photos = draw_faces(tmp_path / "photos", count=2)
    assert RunFolder(photos).move_aside() is None and photos.is_dir(), "a photo folder stays where it is"
    run = RunFolder(tmp_path / "run")
    run.create()
    run.write_mark("r")
    plan = resolve_run(Request({}, out=run.path, fresh=True))
    assert plan.fresh and run.is_marked() and sorted(tmp_path.iterdir()) == [tmp_path / "photos", run.path]
    aside = run.move_aside()
    assert aside.name.startswith("run-") and RunFolder(aside).is_marked() and not run.path.exists()
