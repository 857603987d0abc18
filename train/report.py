"""The evaluation report beside each exported model: JSON, Markdown and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(matrix: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # log scale so the few errors show next to the ~1,000 correct per class
    im = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if i == j else "black")
    ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10), title="Confusion matrix (test)")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], marker=".", label=label)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_misclassified(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: Path, limit: int = 100) -> None:
    """Grid of misclassified digits, captioned 'true→predicted (confidence)'."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)[:limit]
    cols = 10
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.25), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"{labels[i]}→{predicted[i]} ({probs[i].max():.2f})", fontsize=7)
    fig.suptitle(f"Misclassified test digits ({len(wrong)} shown of {int((predicted != labels).sum())})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(metrics: dict) -> str:
    lines = [
        f"# Evaluation report\n\nTest accuracy: **{metrics['accuracy']:.4%}** "
        f"({metrics['errors']} errors in {metrics['count']} images)\n",
        "| digit | precision | recall |\n|---|---|---|",
    ]
    for d in map(str, range(10)):
        lines.append(f"| {d} | {metrics['per_class_precision'][d]:.4f} | {metrics['per_class_accuracy'][d]:.4f} |")
    lines.append("\n![confusion](confusion.png)\n![curves](curves.png)\n![misclassified](misclassified.png)\n")
    return "\n".join(lines)


def write_report(
    out: Path, metrics: dict, history: dict, images: np.ndarray, labels: np.ndarray, probs: np.ndarray
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out / "README.md").write_text(_markdown(metrics))
    plot_confusion(np.asarray(metrics["confusion_matrix"]), out / "confusion.png")
    plot_curves(history, out / "curves.png")
    plot_misclassified(images, labels, probs, out / "misclassified.png")
