"""Classifier networks in plain PyTorch whose weights use torchvision's layout.

MobileNetV2 and ResNet-18 are written out here (torchvision and timm are not needed) with the
module names and shapes of torchvision's ``mobilenet_v2`` and ``resnet18``, so the standard
ImageNet checkpoint files load unchanged: ``mobilenet_v2-b0353104.pth``,
``mobilenet_v2-7ebf99e0.pth``, ``resnet18-f37072fd.pth`` (from ``download.pytorch.org/models``
or torch's hub cache). Every weight but the classifier head is taken from the file; the head is
new, one output per class. ``tiny_cnn`` is a small network for tests and quick checks; it has no
published weights.

Where pretrained weights come from, in order (:func:`pretrained_state`):

1. a file the caller names (``FinetuneOptions.weights``);
2. one of the standard files already in torch's hub cache (``$TORCH_HOME/hub/checkpoints``,
   where torchvision keeps what it downloaded);
3. torchvision, when it is installed and works: its default weights for the backbone
   (downloaded into that cache on first use, so it needs a network once).

This module imports torch; import it inside the function that needs it.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from vigil.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_OPTIONAL_SUFFIX = "num_batches_tracked"


class Classifier(nn.Module):
    """A network whose last module, named ``head_name``, maps features to class scores."""

    head_name: ClassVar[str]

    @property
    def head(self) -> nn.Module:
        """The classifier head: new for every fine-tuning, trained first on its own."""
        return self.get_submodule(self.head_name)

    def body_modules(self) -> list[nn.Module]:
        """Return the direct children that are not the head (frozen while the head trains)."""
        return [module for name, module in self.named_children() if name != self.head_name]


def conv_bn_act(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution, batch norm, ReLU6: torchvision's ``Conv2dNormActivation`` (keys .0, .1)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand (1x1), depthwise (3x3), project (1x1), skip when it fits."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [conv_bn_act(cin, hidden, 1)] if expand != 1 else []
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_residual else out


MOBILENET_V2_BLOCKS = (
    # expansion, channels, repeats, first stride
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(Classifier):
    """MobileNetV2 (width 1.0), module for module as torchvision builds it."""

    head_name = "classifier"

    def __init__(self, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2)]
        channels = 32
        for expand, out, repeats, stride in MOBILENET_V2_BLOCKS:
            for index in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if index == 0 else 1, expand))
                channels = out
        layers.append(conv_bn_act(channels, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (logits)."""
        features = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        logits: torch.Tensor = self.classifier(torch.flatten(features, 1))
        return logits


class BasicBlock(nn.Module):
    """ResNet-18's block: two 3x3 convolutions and a skip (projected when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = self.relu(out + identity)
        return result


class ResNet18(Classifier):
    """ResNet-18, module for module as torchvision builds it."""

    head_name = "fc"

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _resnet_stage(64, 64, 1)
        self.layer2 = _resnet_stage(64, 128, 2)
        self.layer3 = _resnet_stage(128, 256, 2)
        self.layer4 = _resnet_stage(256, 512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (logits)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        logits: torch.Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return logits


def _resnet_stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class TinyCNN(Classifier):
    """Four small convolution blocks and a linear head (about 25 thousand weights)."""

    head_name = "classifier"

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_act(3, 16, 3, 2),
            conv_bn_act(16, 32, 3, 2),
            conv_bn_act(32, 48, 3, 2),
            conv_bn_act(48, 64, 3, 1),
        )
        self.classifier = nn.Linear(64, num_classes)
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (logits)."""
        features = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        logits: torch.Tensor = self.classifier(torch.flatten(features, 1))
        return logits


def _init_like_torchvision(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class Backbone:
    """A network Vigil can fine-tune, and where its standard pretrained weights are.

    Attributes:
        name: What users write (``--backbone``).
        build: Makes the network with a head of the given number of classes.
        files: Names of the standard ImageNet checkpoint files, preferred first.
        url: Where the first of them can be downloaded.
        summary: One line for help texts.

    """

    name: str
    build: Callable[[int], Classifier]
    files: tuple[str, ...] = ()
    url: str | None = None
    summary: str = ""


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v2": Backbone(
        "mobilenet_v2",
        MobileNetV2,
        ("mobilenet_v2-7ebf99e0.pth", "mobilenet_v2-b0353104.pth"),
        "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth",
        "MobileNetV2 1.0 (3.5 M weights), torchvision layout",
    ),
    "resnet18": Backbone(
        "resnet18",
        ResNet18,
        ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        "ResNet-18 (11.7 M weights), torchvision layout",
    ),
    "tiny_cnn": Backbone(
        "tiny_cnn", TinyCNN, summary="four convolution blocks, for tests (no pretrained weights)"
    ),
}
"""Every backbone by name."""


def backbone(name: str) -> Backbone:
    """Return the backbone called ``name``.

    Raises:
        ConfigError: no such backbone (with the closest name).

    """
    if name in BACKBONES:
        return BACKBONES[name]
    close = difflib.get_close_matches(name, BACKBONES, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ConfigError(f"unknown backbone '{name}': {hint}choose one of {', '.join(BACKBONES)}")


def build_backbone(name: str, num_classes: int) -> Classifier:
    """Make the network ``name`` with a new head of ``num_classes`` outputs (random weights)."""
    return backbone(name).build(num_classes)


def read_state_dict(path: Path) -> StateDict:
    """Read the tensors of a checkpoint file (a plain state_dict or one wrapped in a dict).

    Accepts ``{"state_dict": ...}``, ``{"model": ...}`` wrappers and the ``module.`` prefix that
    ``DataParallel`` adds. Only tensors and plain containers are unpickled, never code.

    Raises:
        ModelError: the file is missing, unreadable, or holds no state_dict.

    """
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise ModelError(
            f"cannot read weights file {path}: not a PyTorch checkpoint ({type(exc).__name__}); "
            "pass a .pth file saved with torch.save(model.state_dict(), ...)"
        ) from None
    state = _unwrap(loaded)
    if state is None:
        raise ModelError(
            f"{path} holds no state_dict (a mapping of weight names to tensors); "
            "pass a .pth file saved with torch.save(model.state_dict(), ...)"
        )
    return state


def _unwrap(loaded: Any) -> StateDict | None:
    if isinstance(loaded, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(loaded.get(key), Mapping):
                return _unwrap(loaded[key])
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return {str(k).removeprefix("module."): v for k, v in loaded.items()}
    return None


def load_body_weights(model: Classifier, state: StateDict, source: str) -> int:
    """Copy every weight of ``state`` except the head's into ``model``; return how many.

    Raises:
        ModelError: a weight of the network is missing from ``state`` or has another shape.

    """
    name = _backbone_name(model)
    head = f"{model.head_name}."
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    if missing:
        raise ModelError(
            f"{source} does not fit {name}: {len(missing)} of {len(expected)} weights are "
            f"missing (first: '{missing[0]}'); pass a {name} checkpoint in torchvision's layout"
        )
    for key, tensor in expected.items():
        found = state.get(key)
        if found is not None and found.shape != tensor.shape:
            raise ModelError(
                f"{source} does not fit {name}: '{key}' has shape {tuple(found.shape)} where "
                f"{name} has {tuple(tensor.shape)}; pass a {name} checkpoint"
            )
    chosen = {k: state[k] for k in expected if k in state}
    model.load_state_dict(chosen, strict=False)
    return len(chosen)


def _backbone_name(model: Classifier) -> str:
    for entry in BACKBONES.values():
        if type(model) is entry.build:
            return entry.name
    return type(model).__name__


def pretrained_state(name: str, weights: Path | None) -> tuple[StateDict, str] | None:
    """Find pretrained weights for backbone ``name`` (see the module docstring for the order).

    Returns:
        The state_dict and where it came from, or None when there is none.

    Raises:
        ModelError: ``weights`` is given but cannot be read.

    """
    if weights is not None:
        return read_state_dict(weights), str(weights)
    entry = backbone(name)
    cached = cached_weights(entry)
    if cached is not None:
        return read_state_dict(cached), str(cached)
    return torchvision_weights(entry)


def cached_weights(entry: Backbone) -> Path | None:
    """Return a standard checkpoint of ``entry`` already in torch's hub cache, if any."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for file_name in entry.files:
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def torchvision_weights(entry: Backbone) -> tuple[StateDict, str] | None:
    """Ask torchvision for its default weights of ``entry``; None without torchvision or network.

    torchvision downloads the file into torch's hub cache the first time; later runs find it
    there without torchvision (:func:`cached_weights`).
    """
    if not entry.files:
        return None
    try:
        models = importlib.import_module("torchvision.models")
    except Exception as exc:  # not installed, or built for another torch
        logger.debug("torchvision is not usable (%s): no hub weights", exc)
        return None
    try:
        weights = models.get_model_weights(entry.name).DEFAULT
        state = weights.get_state_dict(progress=False)
    except Exception as exc:  # no network, or a download that failed
        logger.warning("cannot get %s weights through torchvision: %s", entry.name, exc)
        return None
    return dict(state), f"torchvision {weights}"


__all__ = [
    "BACKBONES",
    "Backbone",
    "Classifier",
    "MobileNetV2",
    "ResNet18",
    "StateDict",
    "TinyCNN",
    "backbone",
    "build_backbone",
    "cached_weights",
    "load_body_weights",
    "pretrained_state",
    "read_state_dict",
    "torchvision_weights",
]
