"""The networks have torchvision's layout, so standard checkpoint files load; bad files do not.

The layouts below are written from torchvision's ``mobilenetv2.py`` and ``resnet.py``, apart
from Vigil's modules. Their digests (SHA-256 of the sorted ``name:shape`` lines of the
state_dict) were taken from ``torchvision.models.mobilenet_v2()`` and ``resnet18()`` of
torchvision 0.28.0, the release built for torch 2.13.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.train.conftest import TEXTURES
from vigil.errors import ConfigError, ModelError

torch = pytest.importorskip("torch", reason="the networks need torch (vigil[train])")

from vigil.train.backbones import (  # noqa: E402
    BACKBONES,
    backbone,
    build_backbone,
    load_body_weights,
    pretrained_state,
    read_state_dict,
)
from vigil.train.finetune import FinetuneOptions, finetune  # noqa: E402

Layout = dict[str, tuple[int, ...]]

TORCHVISION_DIGESTS = {
    "mobilenet_v2": "8e46697c9016e57631f74477e7ee4b63a909bd7e783f9ea3a69c85d6cbc23e15",
    "resnet18": "1dcde4b21afa712c037af64d17efe776540d499d3d7132eb8f51461ebb5361d4",
}
HEADS = {"mobilenet_v2": "classifier.1.", "resnet18": "fc.", "tiny_cnn": "classifier."}


def batch_norm(layout: Layout, prefix: str, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        layout[f"{prefix}.{name}"] = (channels,)
    layout[f"{prefix}.num_batches_tracked"] = ()


def conv_norm(layout: Layout, prefix: str, cin: int, cout: int, kernel: int, *, groups: int = 1):
    """torchvision's Conv2dNormActivation: .0 convolution, .1 batch norm, .2 activation."""
    layout[f"{prefix}.0.weight"] = (cout, cin // groups, kernel, kernel)
    batch_norm(layout, f"{prefix}.1", cout)


def torchvision_mobilenet_v2(classes: int = 1000) -> Layout:
    layout: Layout = {}
    conv_norm(layout, "features.0", 3, 32, 3)
    cin, index = 32, 1
    for expand, cout, repeats, _ in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for _ in range(repeats):
            hidden, prefix, at = cin * expand, f"features.{index}.conv", 0
            if expand != 1:
                conv_norm(layout, f"{prefix}.0", cin, hidden, 1)
                at = 1
            conv_norm(layout, f"{prefix}.{at}", hidden, hidden, 3, groups=hidden)
            layout[f"{prefix}.{at + 1}.weight"] = (cout, hidden, 1, 1)
            batch_norm(layout, f"{prefix}.{at + 2}", cout)
            cin, index = cout, index + 1
    conv_norm(layout, f"features.{index}", cin, 1280, 1)
    layout["classifier.1.weight"] = (classes, 1280)
    layout["classifier.1.bias"] = (classes,)
    return layout


def torchvision_resnet18(classes: int = 1000) -> Layout:
    layout: Layout = {"conv1.weight": (64, 3, 7, 7)}
    batch_norm(layout, "bn1", 64)
    stages = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
    for stage, (cin, cout, stride) in enumerate(stages, start=1):
        for block in (0, 1):
            prefix, first_in = f"layer{stage}.{block}", cin if block == 0 else cout
            layout[f"{prefix}.conv1.weight"] = (cout, first_in, 3, 3)
            batch_norm(layout, f"{prefix}.bn1", cout)
            layout[f"{prefix}.conv2.weight"] = (cout, cout, 3, 3)
            batch_norm(layout, f"{prefix}.bn2", cout)
            if block == 0 and (stride != 1 or cin != cout):
                layout[f"{prefix}.downsample.0.weight"] = (cout, cin, 1, 1)
                batch_norm(layout, f"{prefix}.downsample.1", cout)
    layout["fc.weight"] = (classes, 512)
    layout["fc.bias"] = (classes,)
    return layout


TORCHVISION: dict[str, Callable[..., Layout]] = {
    "mobilenet_v2": torchvision_mobilenet_v2,
    "resnet18": torchvision_resnet18,
}


def digest(layout: Layout) -> str:
    lines = "\n".join(f"{key}:{shape}" for key, shape in sorted(layout.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def random_state(layout: Layout, seed: int = 0) -> dict[str, Any]:
    """Random values of the sizes trained weights have (so activations stay in range)."""
    generator = torch.Generator().manual_seed(seed)

    def value(key: str, shape: tuple[int, ...]) -> Any:
        noise = torch.randn(shape, generator=generator) if shape else torch.tensor(0.0)
        if not shape:
            return torch.tensor(7)
        if len(shape) == 4:
            return noise * (2 / (shape[1] * shape[2] * shape[3])) ** 0.5
        if len(shape) == 2:
            return noise * 0.05
        if key.endswith(("running_var", "weight")):
            return 1 + 0.1 * noise.abs()
        return 0.1 * noise

    return {key: value(key, shape) for key, shape in layout.items()}


@pytest.fixture(autouse=True)
def one_torch_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_networks_have_torchvision_names_and_shapes(name: str) -> None:
    assert digest(TORCHVISION[name]()) == TORCHVISION_DIGESTS[name]  # the layout as written here
    ours = build_backbone(name, 1000).state_dict()
    assert digest({k: tuple(v.shape) for k, v in ours.items()}) == TORCHVISION_DIGESTS[name]


@pytest.mark.parametrize(
    ("name", "wrap"),
    [
        ("mobilenet_v2", lambda s: s),
        ("resnet18", lambda s: s),
        ("mobilenet_v2", lambda s: {"state_dict": s, "epoch": 90}),
        ("mobilenet_v2", lambda s: {"model": {f"module.{k}": v for k, v in s.items()}}),
        ("resnet18", lambda s: {k: v for k, v in s.items() if "num_batches" not in k}),
    ],
    ids=["plain", "plain-resnet18", "wrapped", "data-parallel", "old-file-resnet18"],
)
def test_a_torchvision_checkpoint_loads_into_every_layer_but_the_head(
    name: str, wrap: Callable[[dict[str, Any]], Any], tmp_path: Path
) -> None:
    state = random_state(TORCHVISION[name]())
    path = tmp_path / "weights.pth"
    torch.save(wrap(state), path)
    network = build_backbone(name, 3)
    head = HEADS[name]
    found, source = pretrained_state(name, path) or ({}, "")
    count = load_body_weights(network, found, source)
    loaded = network.state_dict()
    body = [k for k in state if not k.startswith(head) and not k.endswith("num_batches_tracked")]
    assert count >= len(body)
    for key in body:
        assert torch.equal(loaded[key], state[key]), key
    assert loaded[f"{head}weight"].shape[0] == 3  # a new head, one output per class


def test_standard_file_in_torchs_hub_cache_is_found(empty_torch_hub: Path) -> None:
    checkpoints = empty_torch_hub / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(random_state(torchvision_mobilenet_v2()), checkpoints / "mobilenet_v2-b0353104.pth")
    found = pretrained_state("mobilenet_v2", None)
    assert found is not None and found[1].endswith("mobilenet_v2-b0353104.pth")
    assert pretrained_state("resnet18", None) is None  # none cached, no torchvision here


def test_finetuning_from_a_torchvision_file_keeps_its_body_while_the_head_trains(
    textures: Path, tmp_path: Path
) -> None:
    state = random_state(torchvision_mobilenet_v2(), seed=3)
    torch.save(state, tmp_path / "mobilenet_v2-b0353104.pth")
    options = FinetuneOptions(
        backbone="mobilenet_v2",
        weights=tmp_path / "mobilenet_v2-b0353104.pth",
        epochs=1,
        head_epochs=1,
        image_size=32,
        batch_size=32,
        workers=0,
        threads=1,
    )
    result = finetune(textures, list(TEXTURES), options, tmp_path / "run", progress=False)
    assert [s.phase for s in result.history] == ["head"]
    trained = torch.load(result.checkpoint, weights_only=True)["state_dict"]
    for key in ("features.0.0.weight", "features.17.conv.2.weight", "features.18.1.running_var"):
        assert torch.equal(trained[key], state[key]), key
    assert trained["classifier.1.weight"].shape == (3, 1280)


def write_bad_file(kind: str, path: Path) -> Path:
    """Write a weights file that is wrong in the way ``kind`` says."""
    mobilenet = random_state(torchvision_mobilenet_v2())
    if kind == "garbage":
        path.write_bytes(b"GIF89a not a checkpoint")
    elif kind == "truncated":
        torch.save(mobilenet, path)
        path.write_bytes(path.read_bytes()[:5000])
    elif kind == "a list":
        torch.save([1, 2, 3], path)
    elif kind == "empty":
        torch.save({}, path)
    elif kind == "a folder":
        path.mkdir()
    elif kind == "resnet18":
        torch.save(random_state(torchvision_resnet18()), path)
    elif kind == "wrong shape":
        torch.save({**mobilenet, "features.0.0.weight": torch.zeros(16, 3, 3, 3)}, path)
    return path


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("missing", "weights file not found"),
        ("garbage", "not a PyTorch checkpoint"),
        ("truncated", "not a PyTorch checkpoint"),
        ("a list", "holds no state_dict"),
        ("empty", "holds no state_dict"),
        ("a folder", "weights file not found"),
        ("resnet18", "weights are missing (first: 'features.0.0.weight')"),
        ("wrong shape", "'features.0.0.weight' has shape (16, 3, 3, 3) where mobilenet_v2 has"),
    ],
)
def test_a_wrong_or_damaged_weights_file_is_one_clear_error(
    kind: str, says: str, tmp_path: Path
) -> None:
    path = write_bad_file(kind, tmp_path / "weights.pth")
    network = build_backbone("mobilenet_v2", 2)
    with pytest.raises(ModelError) as raised:
        found = read_state_dict(path)
        load_body_weights(network, found, str(path))
    message = str(raised.value)
    assert says in message and "\n" not in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("name", "says"),
    [("mobilenetv2", "did you mean 'mobilenet_v2'?"), ("vgg16", "choose one of mobilenet_v2")],
)
def test_unknown_backbone(name: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        backbone(name)


@pytest.mark.parametrize("name", list(BACKBONES))
@pytest.mark.parametrize("side", [32, 75])
def test_every_network_gives_one_score_per_class(name: str, side: int) -> None:
    network = build_backbone(name, 5).eval()
    with torch.no_grad():
        scores = network(torch.zeros(2, 3, side, side))
    assert scores.shape == (2, 5)
    children = dict(network.named_children())
    assert network.head is children[network.head_name]
    assert len(network.body_modules()) == len(children) - 1
