"""The predictor's spectrogram figure: recorded and generated log-mels of one window, stacked,
with the ground-truth contacts marked (``evaluate predictor`` and ``hearing-hands demo``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hearing_hands_ros.audio import log_mel
from hearing_hands_ros.eval.predictor_metrics import true_onsets


def spectrogram_figure(path: Path, real: np.ndarray, preds: dict[str, np.ndarray], contacts,
                       title: str, sr: int = 16000) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [('recorded', real)] + list(preds.items())
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 * len(rows)), sharex=True)
    for ax, (name, x) in zip(axes, rows):
        lm = log_mel(x, sr)
        ax.imshow(lm, origin='lower', aspect='auto', extent=(0, len(x) / sr, 0, lm.shape[0]),
                  vmin=-14, vmax=2, cmap='magma')
        for c in true_onsets(contacts):
            ax.axvline(c, color='c', lw=0.6, alpha=0.8)
        ax.set_ylabel(name, fontsize=8)
        ax.set_yticks([])
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel('time from plan start [s] (cyan: ground-truth contacts)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
