"""The detector's debug picture: the frame with its candidate objects and the event's sound."""
from __future__ import annotations

import cv2
import numpy as np


def debug_overlay(rgb: np.ndarray, cands: list, mel: np.ndarray, sx: float, sy: float,
                  scale: int = 3) -> np.ndarray:
    """Frame (upscaled) with the top candidate tinted, every box with its score, and the event's
    log-mel spectrogram as a strip underneath."""
    img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    h, w = img.shape[:2]
    if cands:
        m = cv2.resize(cands[0]['mask'].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        img[m] = (0.55 * img[m] + 0.45 * np.array([255, 40, 40])).astype(np.uint8)
    for i, c in enumerate(cands):
        x0, y0, x1, y1 = c['bbox']
        p0 = (int(x0 * sx * scale), int(y0 * sy * scale))
        p1 = (int(x1 * sx * scale) - 1, int(y1 * sy * scale) - 1)
        colour = (255, 60, 60) if i == 0 else (255, 255, 0)
        cv2.rectangle(img, p0, p1, colour, 1)
        cv2.putText(img, f"{c['score']:.2f}", (p0[0] + 2, p0[1] + 12), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, colour, 1)
    m = mel - mel.min()
    m = (255 * m / max(float(m.max()), 1e-6)).astype(np.uint8)[::-1]
    strip = cv2.applyColorMap(cv2.resize(m, (w, max(16, h // 4)), interpolation=cv2.INTER_NEAREST),
                              cv2.COLORMAP_MAGMA)[..., ::-1]
    return np.ascontiguousarray(np.concatenate([img, strip], axis=0))
