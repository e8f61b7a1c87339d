"""The writers' contract (writers.py): each sees only a narrow Context, never the session, and no writer reads or
changes another's data, so that their order does not change what a run writes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dcgan_faces import models, tblog, writers
from dcgan_faces.config import TrainConfig
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.writers import Context, Evaluation, Previews, Reporter

FIGURES = {"swd": 12.0, "swd_real_floor": None, "face_rate_fake": 0.25, "face_rate_real": 0.5}


def _generate(seeds: np.ndarray) -> np.ndarray:
    return np.zeros((len(seeds), 8, 8, 3), np.float32)


def test_a_writer_runs_on_a_plain_context_without_a_session(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create()
    saved_log, said = [], []
    config = TrainConfig(res=16, preview_rows=2, preview_cols=2)
    context = Context(config, run, 0, 0.0, _generate, said.append, Reporter(run.path).attempt,
                      save_log=lambda: saved_log.append(True), preview_seeds=np.zeros((4, config.seed_size)))
    Previews(10).on_train_begin(context)
    assert run.preview_path(0).is_file() and saved_log == [True] and said == []


def test_an_evaluation_returns_its_figures_and_touches_no_log(tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "evaluate_generator", lambda *args, **kwargs: dict(FIGURES))
    said = []
    context = SimpleNamespace(config=TrainConfig(eval_images=4), images=np.zeros((8, 8, 8, 3), np.uint8),
                              iteration=4, generate=_generate, say=said.append,
                              attempt=lambda what, write, optional=False: write() or True)
    evaluation = Evaluation(2)
    assert evaluation.measure(context) == FIGURES and said[0].startswith("iteration 4: SWD 12.0")
    context.iteration = 5
    assert evaluation.measure(context) == {}


class _FakeTrainer:
    """What a Session drives: one step per call, finite losses, a generator that saves a file."""

    def __init__(self):
        self.iteration, self.global_batch = 0, 4
        self.gan = SimpleNamespace(output_generator=SimpleNamespace(save=lambda path: Path(path).write_text("G")))

    @property
    def epoch(self) -> float:
        return self.iteration / 2

    def output_generator(self):
        return self.gan.output_generator

    def generate(self, seeds):
        return _generate(seeds)

    def step(self):
        self.iteration += 1
        return {"d_loss": 0.5 + self.iteration, "g_loss": 1.0 / self.iteration}


def _train(folder: Path, arrange, monkeypatch) -> list[dict]:
    """metrics.jsonl of a 6-iteration session on a fake trainer, its writers put in order by `arrange`."""
    from dcgan_faces import session as session_module

    monkeypatch.setattr(writers, "evaluate_generator", lambda *args, **kwargs: dict(FIGURES))
    monkeypatch.setattr(models, "stock_generator", lambda generator: generator)
    monkeypatch.setattr(tblog, "TensorBoardLog", lambda path: SimpleNamespace(
        scalars=lambda *a: None, image=lambda *a: None, flush=lambda: None))
    monkeypatch.setattr(session_module.Session, "save_checkpoint",
                        lambda self, staging=None: (self.run_folder.checkpoints /
                                                    f"ckpt-{self.trainer.iteration:08d}.npz").write_bytes(b"x"))
    config = TrainConfig(res=16, steps=6, save_every=3, checkpoint_every=2, eval_every=2, eval_images=4,
                         preview_rows=2, preview_cols=2)
    run = RunFolder(folder)
    run.create()
    dataset = SimpleNamespace(images=np.zeros((8, 16, 16, 3), np.uint8), check=None, fingerprint=None, listing=None)
    session = session_module.Session(config, run, _FakeTrainer(), dataset)
    seen = []

    class Spy(writers.Writer):
        def on_train_begin(self, context):
            seen.append(context)

        def on_train_batch_end(self, context):
            seen.append(context)

        def on_train_end(self, context):
            seen.append(context)

    session.writers.files = arrange([*session.writers.files, Spy()])
    session.writers.shows = arrange(session.writers.shows)
    assert session.run(SimpleNamespace(signal=None)) == 0
    assert seen and all(isinstance(context, Context) for context in seen), "a writer gets the Context alone"
    return [{k: v for k, v in row.items() if k != "seconds"} for row in map(json.loads, run.metrics_path.open())]


def test_the_order_of_the_writers_does_not_change_the_metrics_log(tmp_path, monkeypatch, capsys):
    as_made = _train(tmp_path / "as_made", lambda writers_: writers_, monkeypatch)
    reversed_ = _train(tmp_path / "reversed", lambda writers_: writers_[::-1], monkeypatch)
    assert [row["iteration"] for row in as_made] == [1, 2, 3, 4, 5, 6]
    assert [row.get("swd") for row in as_made] == [None, 12.0, None, 12.0, None, 12.0]
    assert reversed_ == as_made
    assert (tmp_path / "reversed/plots.png").is_file() and (tmp_path / "reversed/generator.keras").is_file()


def test_one_factory_decides_the_notebook_display_and_the_checkpoints_staging(tmp_path, monkeypatch):
    import tempfile

    from dcgan_faces.staging import SLOW_ENV

    monkeypatch.setattr(tblog, "TensorBoardLog", lambda path: None)
    made = writers.Writers.make(TrainConfig(), RunFolder(tmp_path / "local"), True, lambda staging: None)
    assert made.checkpoints.staging is None and made.shows == [made.progress]
    monkeypatch.setattr(writers, "in_kernel", lambda: True)
    monkeypatch.setenv(SLOW_ENV, str(tmp_path / "drive"))
    made = writers.Writers.make(TrainConfig(), RunFolder(tmp_path / "drive/run"), True, lambda staging: None)
    assert made.checkpoints.staging == Path(tempfile.gettempdir())
    assert isinstance(made.shows[-1], writers.NotebookDisplay), "shown after the files it shows are written"
    worker = writers.Writers.make(TrainConfig(), RunFolder(tmp_path / "local"), False, lambda staging: None)
    assert worker.files == [] and worker.shows == [worker.progress] and worker.checkpoints is None
