"""The execution monitor's picture: what each path was expected to sound like against what the
microphone heard, with the anomalies the monitor raised (``make demo``, the README).

    monitor_timeline(audio, sr, audio_start_ns, paths, anomalies, out_png, faults=...)

``paths``: ``[(start_ns, end_ns, label, [ContactEvent])]``; ``anomalies``:
``[(start_ns, Anomaly)]``; ``heard``: onset stamps [ns]; ``faults``: ``[(time_ns, label)]`` from
a ground truth, if any.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

NS = 1_000_000_000
COLOURS = {'MISSING': '#d62728', 'UNEXPECTED': '#ff7f0e', 'LOUDER': '#9467bd',
           'QUIETER': '#8c564b', 'WRONG_MATERIAL': '#e377c2'}


def _envelope_db(x: np.ndarray, sr: int, hop_s: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    hop = max(1, int(hop_s * sr))
    n = len(x) // hop
    peak = np.abs(x[:n * hop]).reshape(n, hop).max(1) if n else np.zeros(0)
    return np.arange(n) * hop / sr, 20 * np.log10(np.maximum(peak, 1e-6))


def monitor_timeline(audio: np.ndarray, sr: int, audio_start_ns: int, paths: list, anomalies: list,
                     out_png: Path, faults: list = (), heard: list = (), title: str = '',
                     min_probability: float = 0.2) -> Path:
    """Draw the microphone's level over time, each path's span and its expected contacts (a bar
    per expected window at least ``min_probability`` likely, opaque as it is likely), the onsets
    heard, and each anomaly; save a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t0 = min([audio_start_ns] + [p[0] for p in paths])
    t, env = _envelope_db(np.asarray(audio, np.float32), sr)
    t = t + (audio_start_ns - t0) / NS
    fig, ax = plt.subplots(figsize=(12, 3.6))
    ax.plot(t, env, color='0.45', lw=0.7, label='microphone level (peak per 5 ms)')
    lo, hi = -75.0, 0.0
    for i, (start, end, label, events) in enumerate(paths):
        s, e = (start - t0) / NS, (end - t0) / NS
        ax.axvspan(s, e, ymin=0.0, ymax=0.06, color='C0' if i % 2 else 'C2', alpha=0.5)
        ax.text(s, lo + 1.0, label, fontsize=7, va='bottom')
        for ev in events:
            if ev.probability < min_probability:
                continue
            c = s + ev.time
            w = 0.05 + 3 * ev.time_std
            ax.add_patch(plt.Rectangle((c - w, ev.peak_db - 3), 2 * w, 6, color='C0',
                                       alpha=0.15 + 0.6 * ev.probability, lw=0))
    for when in heard:                                   # onsets heard [ns]
        ax.plot([(when - t0) / NS], [lo + 8], marker='|', color='k', ms=10)
    ax.plot([], [], color='k', marker='|', ls='', label='onset heard')
    for start, a in anomalies:
        x = (start - t0) / NS + (a.heard_time if a.heard_time is not None else a.time)
        ax.axvline(x, color=COLOURS.get(a.kind, 'k'), lw=1.5, ls='--')
        ax.text(x, hi - 2, f'{a.kind} {a.confidence:.2f}', rotation=90, fontsize=7, va='top',
                ha='right', color=COLOURS.get(a.kind, 'k'))
    for when, label in faults:
        x = (when - t0) / NS
        ax.plot([x], [hi - 1], marker='v', color='k', ms=8)
        ax.text(x, hi - 6, f'fault: {label}', fontsize=7, ha='left', va='top')
    ax.plot([], [], color='C0', alpha=0.6, lw=6, label='expected contact (window, level)')
    ax.plot([], [], color='k', ls='--', label='anomaly')
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, max(t[-1] if len(t) else 1.0, max(((p[1] - t0) / NS for p in paths), default=1.0)))
    ax.set_xlabel('time [s]')
    ax.set_ylabel('dBFS')
    ax.set_title(title or 'expected vs heard contacts')
    ax.legend(loc='lower right', fontsize=7)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
