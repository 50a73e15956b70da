"""Stopping and resuming a fine-tuning run: Ctrl-C keeps the best epoch, resume ends the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.train.conftest import TEXTURES
from vigil.errors import ConfigError

torch = pytest.importorskip("torch", reason="fine-tuning needs torch (vigil[train])")

from vigil.train.finetune import EpochStats, FinetuneOptions, finetune  # noqa: E402

CLASSES = list(TEXTURES)
QUICK: dict[str, Any] = {
    "backbone": "tiny_cnn",
    "image_size": 64,
    "batch_size": 16,
    "workers": 0,
    "threads": 1,
    "lr_full": 0.003,
}
TIMING = {
    "seconds",
    "images_per_second",
    "load_ms_median",
    "load_ms_p95",
    "load_share",
    "load_first_ms",
    "step_ms_median",
    "step_ms_p95",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights_file(textures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weights of a tiny network trained for one epoch: 'pretrained' for a head-first run."""
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    folder = tmp_path_factory.mktemp("pretrained")
    return finetune(textures, CLASSES, options, folder, progress=False).checkpoint


def last_weights(run: Path) -> dict[str, Any]:
    stored: dict[str, Any] = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    return stored["model"]


def without_timing(stats: EpochStats) -> dict[str, Any]:
    return {k: v for k, v in stats.to_dict().items() if k not in TIMING}


def stop_after(epoch: int) -> Any:
    def callback(stats: EpochStats) -> None:
        if stats.epoch == epoch:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("stopped_after", [2, 3], ids=["at-phase-change", "mid-phase"])
def test_a_resumed_run_ends_with_the_weights_of_an_unbroken_one(
    textures: Path, weights_file: Path, tmp_path: Path, stopped_after: int
) -> None:
    options = FinetuneOptions(**QUICK, weights=weights_file, epochs=4, head_epochs=2)
    whole = finetune(textures, CLASSES, options, tmp_path / "whole", progress=False)

    broken = finetune(
        textures,
        CLASSES,
        options,
        tmp_path / "broken",
        progress=False,
        on_epoch_end=stop_after(stopped_after),
    )
    assert broken.interrupted and len(broken.history) == stopped_after
    resumed = finetune(textures, CLASSES, options, tmp_path / "broken", resume=True, progress=False)

    assert not resumed.interrupted
    assert [without_timing(s) for s in resumed.history] == [
        without_timing(s) for s in whole.history
    ]
    expected, found = last_weights(tmp_path / "whole"), last_weights(tmp_path / "broken")
    assert expected.keys() == found.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(found[key], tensor, rtol=1e-5, atol=1e-6, msg=key)
    assert resumed.best_epoch == whole.best_epoch


def test_resuming_a_finished_run_trains_no_more(textures: Path, tmp_path: Path) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=2)
    first = finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    again = finetune(textures, CLASSES, options, tmp_path / "run", resume=True, progress=False)
    assert again.history == first.history and again.best_epoch == first.best_epoch
    assert again.onnx_path.is_file()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"lr_full": 0.01}, "lr_full: 0.003 -> 0.01"),
        ({"epochs": 5}, "epochs: 2 -> 5"),
        ({"image_size": 48}, "image_size: 64 -> 48"),
    ],
)
def test_resume_refuses_other_settings(
    textures: Path, tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=2)
    finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    changed = options.model_copy(update=change)
    with pytest.raises(ConfigError, match="started with other settings") as raised:
        finetune(textures, CLASSES, changed, tmp_path / "run", resume=True, progress=False)
    assert says in str(raised.value)


def test_resume_with_other_loader_workers_is_allowed(textures: Path, tmp_path: Path) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=2)
    finetune(
        textures, CLASSES, options, tmp_path / "run", progress=False, on_epoch_end=stop_after(1)
    )
    more = options.model_copy(update={"workers": 1})
    result = finetune(textures, CLASSES, more, tmp_path / "run", resume=True, progress=False)
    assert [s.epoch for s in result.history] == [1, 2]


def test_refuses_to_start_over_a_run_or_to_resume_nothing(textures: Path, tmp_path: Path) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    with pytest.raises(ConfigError, match="nothing to resume"):
        finetune(textures, CLASSES, options, tmp_path / "run", resume=True, progress=False)
    finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="already holds a training run: resume it"):
        finetune(textures, CLASSES, options, tmp_path / "run", progress=False)


def test_a_callback_interrupting_the_first_epoch_keeps_that_epoch(
    textures: Path, tmp_path: Path
) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=5)
    result = finetune(
        textures, CLASSES, options, tmp_path / "run", progress=False, on_epoch_end=stop_after(1)
    )
    assert result.interrupted and result.best_epoch == 1 and len(result.history) == 1
    assert result.onnx_path.is_file() and result.checkpoint.is_file()


CHILD = """
import json, sys
from pathlib import Path
from vigil.train.finetune import FinetuneOptions, finetune

if __name__ == "__main__":
    options = FinetuneOptions(**json.loads(sys.argv[3]))
    result = finetune(Path(sys.argv[1]), {classes!r}, options, Path(sys.argv[2]), progress=False)
    print(json.dumps({{"interrupted": result.interrupted, "best_epoch": result.best_epoch,
                      "epochs": len(result.history), "onnx": str(result.onnx_path)}}))
"""


def test_ctrl_c_stops_after_the_batch_and_keeps_the_best_epoch(
    textures: Path, tmp_path: Path
) -> None:
    settings = {**QUICK, "from_scratch": True, "epochs": 500, "patience": 500}
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(classes=CLASSES))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [sys.executable, str(script), str(textures), str(run), json.dumps(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(run / "checkpoints" / "best.pt", child, seconds=120)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    found = json.loads(out.strip().splitlines()[-1])
    assert found["interrupted"] and found["best_epoch"] >= 1
    assert found["epochs"] < 500 and Path(found["onnx"]).is_file()
    assert "stopping after this batch" in err and "Traceback" not in err
    resumed = finetune(
        textures,
        CLASSES,
        FinetuneOptions(**{**settings, "epochs": 500}),
        run,
        resume=True,
        progress=False,
        on_epoch_end=stop_after(found["epochs"] + 1),
    )
    assert resumed.history[-1].epoch == found["epochs"] + 1  # went on where it stopped


def wait_for(path: Path, child: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.05)
