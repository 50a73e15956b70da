"""Drawing results onto frames: skeletons, boxes and a text panel. RGB images in, RGB out."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vigil.results import Classifications, Detections, Embeddings, Poses

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREEN: Color = (46, 204, 113)
ORANGE: Color = (243, 156, 18)
RED: Color = (231, 76, 60)
GREY: Color = (149, 165, 166)
BLUE: Color = (52, 152, 219)

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scale(image: np.ndarray) -> float:
    """Line and text scale that reads well from 320 px up to 4K frames."""
    return max(0.5, float(min(image.shape[0], image.shape[1])) / 720.0)


def draw_skeleton(
    image: np.ndarray, poses: Poses, min_confidence: float = 0.3, color: Color = BLUE
) -> None:
    """Draw every person's confident joints and the skeleton edges between them, in place."""
    s = _scale(image)
    thickness = max(1, round(2 * s))
    radius = max(2, round(4 * s))
    for person in range(len(poses)):
        points = poses.keypoints[person]
        visible = poses.confidence[person] >= min_confidence
        for a, b in poses.schema.edges:
            if visible[a] and visible[b]:
                cv2.line(image, _pt(points[a]), _pt(points[b]), color, thickness, cv2.LINE_AA)
        for index in np.flatnonzero(visible):
            cv2.circle(image, _pt(points[index]), radius, WHITE, -1, cv2.LINE_AA)
            cv2.circle(
                image, _pt(points[index]), radius, color, max(1, thickness // 2), cv2.LINE_AA
            )


def draw_box(
    image: np.ndarray, box: Sequence[float], color: Color, label: str | None = None
) -> None:
    """Draw an xyxy box with an optional label above it, in place."""
    s = _scale(image)
    x1, y1, x2, y2 = (round(v) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, max(1, round(2 * s)), cv2.LINE_AA)
    if label:
        draw_label(image, label, (x1, max(0, y1 - round(28 * s))), color)


def draw_label(
    image: np.ndarray, text: str, origin: tuple[int, int], background: Color, color: Color = WHITE
) -> int:
    """Draw ``text`` on a filled background at ``origin`` (top-left); return the label height."""
    s = _scale(image)
    font_scale, thickness = 0.6 * s, max(1, round(1.5 * s))
    (w, h), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    pad = round(6 * s)
    x, y = origin
    cv2.rectangle(image, (x, y), (x + w + 2 * pad, y + h + baseline + 2 * pad), background, -1)
    cv2.putText(
        image, text, (x + pad, y + pad + h), _FONT, font_scale, color, thickness, cv2.LINE_AA
    )
    return h + baseline + 2 * pad


def draw_panel(
    image: np.ndarray, lines: Sequence[tuple[str, Color]], corner: tuple[int, int] = (8, 8)
) -> None:
    """Draw labels stacked from ``corner`` downwards, in place."""
    x, y = corner
    gap = max(2, round(4 * _scale(image)))
    for text, background in lines:
        y += draw_label(image, text, (x, y), background) + gap


def _pt(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


PALETTE: tuple[Color, ...] = (BLUE, ORANGE, GREEN, RED, (155, 89, 182), (26, 188, 156), GREY)
"""Box colours, picked by class id so each class keeps its colour from frame to frame."""


def class_color(class_id: int) -> Color:
    """Return the colour that boxes of ``class_id`` are drawn in."""
    return PALETTE[class_id % len(PALETTE)]


def draw_detections(image: np.ndarray, detections: Detections) -> None:
    """Draw every detected object's box with its label and score, in place."""
    for i in range(len(detections)):
        label = f"{detections.labels[i]} {float(detections.confidence[i]):.2f}"
        draw_box(image, detections.xyxy[i], class_color(int(detections.class_id[i])), label)


def draw_classifications(
    image: np.ndarray, classifications: Classifications, max_lines: int = 5
) -> None:
    """Draw the best classes with their scores as a panel in the top-left corner, in place."""
    shown = classifications.top_k(max_lines)
    lines = [
        (f"{shown.labels[i]} {float(shown.scores[i]):.2f}", GREEN if i == 0 else GREY)
        for i in range(len(shown))
    ]
    draw_panel(image, lines or [("no class above the threshold", GREY)])


def draw_prediction(image: np.ndarray, prediction: object) -> None:
    """Draw any task's results in place: boxes, classes, skeletons, or an embedding's size."""
    if isinstance(prediction, Detections):
        draw_detections(image, prediction)
    elif isinstance(prediction, Classifications):
        draw_classifications(image, prediction)
    elif isinstance(prediction, Poses):
        draw_skeleton(image, prediction)
        boxes = prediction.xyxy if prediction.xyxy is not None else prediction.boxes()
        for box, score in zip(boxes, prediction.scores, strict=True):
            draw_box(image, box, BLUE, f"person {float(score):.2f}")
    elif isinstance(prediction, Embeddings):
        draw_panel(image, [(f"embedding: {len(prediction)} x {prediction.dim}", GREY)])
