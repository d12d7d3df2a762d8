"""Pictures of what a model sees and gets wrong, as uint8 arrays (matplotlib, Agg backend):
the stem's output beside the input, a grid of validation images, a confusion matrix. Shared by the
training callbacks and ``hdvision predict``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from hdvision.models.layers import resize

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no screen), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_uint8(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Normalised (B, 3, H, W) → uint8 (B, H, W, 3), values outside the image range clipped."""
    pixels = (images.float() * std + mean).clamp(0, 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def stem_views(pl_module: Any, images: torch.Tensor) -> dict[str, np.ndarray]:
    """For prepared input ``images``: the area-downsampled input and the stem output, as uint8."""
    model = cast("HDClassifier", pl_module)
    was_training = model.training
    model.eval()
    seen = model.stem(images)
    model.train(was_training)
    area = resize(images, seen.shape[-2:], "area")
    mean, std = model.mean, model.std
    # A stem that normalises its input itself was handed pixel values.
    given = (torch.zeros_like(mean), torch.ones_like(std)) if model.stem_normalizes else (mean, std)
    return {"area": to_uint8(area, *given), "stem": to_uint8(seen, mean, std)}


def figure_to_array(fig: Any) -> np.ndarray:
    """The figure's pixels as uint8 (H, W, 3); the figure is closed."""
    plt = pyplot()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def plot_grid(
    views: dict[str, np.ndarray], labels: torch.Tensor, preds: torch.Tensor, names: list[str]
) -> np.ndarray:
    """Two rows per image set: area-downsampled input, stem output; titles true / predicted."""
    plt = pyplot()
    n = len(labels)
    h, w = views["stem"].shape[1:3]
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 2 * 2.2 * h / w + 0.6), squeeze=False)
    for i in range(n):
        true, pred = names[int(labels[i])], names[int(preds[i])]
        for row, key in enumerate(("area", "stem")):
            ax = axes[row, i]
            ax.imshow(views[key][i])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel("area resize" if key == "area" else "stem output")
        colour = "green" if true == pred else "red"
        axes[0, i].set_title(f"true {true}\npred {pred}", color=colour, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)


def plot_confusion(confusion: np.ndarray, names: list[str]) -> np.ndarray:
    """A (true × predicted) count matrix with the class names on its axes."""
    plt = pyplot()
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * k, 0.6 + 0.45 * k))
    ax.imshow(confusion, cmap="Blues")
    for (r, c), count in np.ndenumerate(confusion):
        if count:
            ax.text(c, r, str(count), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(k), names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return figure_to_array(fig)


def plot_view(image: np.ndarray, seen: np.ndarray, title: str) -> np.ndarray:
    """One image: the decoded input beside the stem's output, under ``title``."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
    for ax, view, name in ((axes[0], image, "input"), (axes[1], seen, "stem output")):
        ax.imshow(view)
        ax.set_title(f"{name} {view.shape[0]}x{view.shape[1]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)
