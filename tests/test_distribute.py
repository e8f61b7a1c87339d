"""--strategy: 2 logical CPU replicas, a 2-process multi-worker run, and the auto choice (each in a subprocess)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcgan_faces import distribute, train

SCRIPT = Path(__file__).with_name("distribute_script.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _result(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored")
    done = subprocess.run([sys.executable, str(SCRIPT), "mirrored", str(out)], capture_output=True, text=True,
                          env=ENV, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return _result(done.stdout)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_trains_like_one_device(mirrored):
    assert mirrored["replicas"] == 2 and mirrored["global_batch"] == 4  # --batch-size 2 per replica
    assert all(np.isfinite(list(row.values())).all() for row in mirrored["losses"])
    assert (mirrored["d_steps"], mirrored["combined_steps"]) == (6, 3)
    assert mirrored["penalty_steps_moving_d"] == [True, True], "--r1-every 2: iterations 0 and 2"
    assert all(mirrored["d_moves_on_d_steps"]), "every D weight moves on D's steps"
    assert all(mirrored["d_frozen_on_combined"]), "D's weights (moving statistics too) stay on combined steps"
    assert all(mirrored["g_moves_on_combined"]), "every G weight moves on combined steps"


@pytest.mark.slow
def test_the_replicas_copies_stay_identical(mirrored):
    assert mirrored["copies_per_variable"] == [2]
    assert len(mirrored["replica_devices"]) == 2
    assert mirrored["replicas_differ"] == []


@pytest.mark.slow
def test_a_checkpoint_written_under_the_strategy_resumes_on_one_device(mirrored):
    assert mirrored["restored_equal"]
    assert mirrored["recalibrated_faces_equal"] and mirrored["recalibration_changed_faces"]
    assert mirrored["single_global_batch"] == 2
    assert mirrored["single_iteration"] == 5
    assert all(np.isfinite(list(row.values())).all() for row in mirrored["single_losses"])


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    faces = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "faces.npy", faces)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        folder = tmp_path / f"w{index}"
        folder.mkdir()
        (folder / "faces.npy").symlink_to(tmp_path / "faces.npy")
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen([sys.executable, str(SCRIPT), "worker", str(folder)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**ENV, "TF_CONFIG": tf_config}))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=120))
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
        pytest.fail("the 2-worker run did not finish in 120 s")
    for (stdout, stderr), worker in zip(outputs, workers, strict=True):
        if worker.returncode and "collective" in stderr.lower() and "unimplemented" in stderr.lower():
            pytest.skip("collective ops are not available on this platform")
        assert worker.returncode == 0, stdout[-2000:] + stderr[-3000:]
        assert _result(stdout)["code"] == 0
    chief, other = tmp_path / "w0" / "run", tmp_path / "w1" / "run"
    rows = [json.loads(line) for line in (chief / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [1, 2]
    assert all(np.isfinite(row[k]) for row in rows for k in ("d_loss", "g_loss", "swd"))  # evaluated on the chief
    assert (chief / "generator.keras").exists() and list((chief / "checkpoints").glob("ckpt-*.npz"))
    written = [p for p in other.rglob("*") if p.is_file()] if other.exists() else []
    assert written == [], f"a non-chief worker wrote {written}"


def test_auto_picks_a_strategy_only_for_several_devices():
    import tensorflow as tf

    several = len(tf.config.list_logical_devices("GPU")) > 1 or distribute.tpu_runtime()
    assert (distribute.choose_strategy("auto") is not None) == several
    assert distribute.replicas(None) == 1 and distribute.is_chief("none") and distribute.is_chief("auto")


def test_the_chief_is_worker_0_or_the_chief_task(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    for task, chief in (({"type": "worker", "index": 0}, True), ({"type": "worker", "index": 1}, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        assert distribute.is_chief("multiworker") == chief
        assert distribute.is_chief("mirrored")  # only a multi-worker run has other workers
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {**cluster, "chief": ["c:3"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief("multiworker")


def test_help_states_the_per_replica_batch_and_the_learning_rate_rule():
    text = " ".join(train.parser().format_help().split())
    assert "images per replica" in text and "global batch is this × the number of replicas" in text
    assert "the learning rate is kept as given, not scaled" in text
