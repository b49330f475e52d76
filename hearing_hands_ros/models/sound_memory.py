"""Object sound memory: what each object in view sounded like when it alone was touched.

At an ambiguous touch (two objects at the fingertips) the look match has to guess which look goes
with the sound. A robot that has touched each of them alone before has heard them: the nearest
remembered sound names the object. This module keeps those sounds and recalls them:

    touch with one candidate at the fingertips -> ``observe``: remember (where it is, its look,
        the sound)
    touch with several -> ``recall``: for each candidate, the remembered sounds of the object
        that is there, cosine-compared with the sound now

Identity is by place when the caller can place things (objects stay put while the camera moves
with the hand). A lone touch is remembered at the contact point (the TCP: the touched object is
under the fingers). At an ambiguous touch the candidates lie on either side of the contact point
(``where``: each segment's centre back-projected onto the table plane through the camera pose,
good to a few centimetres, so only its direction is used): an entry within
``identity_radius_m`` of the contact point counts for the candidate in whose direction it lies
(cosine of the bearings, clearly higher than for any other: ``identity_margin``). Without places
it is by look (the colour statistics of ``look_match.look_features``, standardised over the
candidates and the memory together), which is weaker: the same object looks different from
another side. Sounds are the look match's fine log-mel (``sound_features``), centred and
unit-normalised. No training: the memory is filled while the robot works.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np


@dataclass
class MemoryConfig:
    size: int = 32                 # entries kept, oldest dropped (0: no memory)
    identity_radius_m: float = 0.15  # with places: entries this near the contact point count ...
    identity_margin: float = 0.5   # ... for the candidate whose bearing is this much more alike
    identity_ratio: float = 0.7    # without places: look distance < ratio * the next one's
    identity_features: int = 6     # without places: the first look statistics (colour mean and
    #                                spread; texture and area change with the view)
    sharpness: float = 20.0        # P within the contact set = softmax(sharpness * cosine)


def _unit(sound: np.ndarray) -> np.ndarray:
    v = np.asarray(sound, np.float64).ravel()
    v = v - v.mean()
    return v / max(np.linalg.norm(v), 1e-9)


def _placed(where) -> bool:
    return where is not None and np.isfinite(np.asarray(where, float)).all()


class SoundMemory:
    """A bounded memory of lone touches: (look (F,), sound (A,), place (3,) or None)."""

    def __init__(self, cfg: MemoryConfig | None = None):
        self.cfg = cfg or MemoryConfig()
        self.entries: collections.deque = collections.deque(maxlen=max(1, int(self.cfg.size)))

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        """Forget everything (a new scene)."""
        self.entries.clear()

    def remember(self, look: np.ndarray, sound: np.ndarray, where: np.ndarray | None = None) -> None:
        """Keep what one object, touched alone, sounded like (and where it was)."""
        self.entries.append((np.asarray(look, np.float64).ravel(), _unit(sound),
                             np.asarray(where, np.float64).ravel() if _placed(where) else None))

    def observe(self, cands: list[dict], sound: np.ndarray) -> bool:
        """After an answer: remember the sound if exactly one candidate was at the fingertips
        (``contact`` set by ``ContactRule.apply``) and it has a look, at the contact point
        (``at``) when known. Returns whether it did."""
        near = [c for c in cands if c.get('contact')]
        if len(near) != 1 or near[0].get('look') is None:
            return False
        self.remember(near[0]['look'], sound, near[0].get('at'))
        return True

    def _owners(self, looks: np.ndarray, where, at) -> tuple[list, np.ndarray]:
        """The entries usable here and, for each, the candidate it is of (-1: none clearly)."""
        c = self.cfg
        if _placed(where) and _placed(at):
            at = np.asarray(at, float)[:2]
            used = [e for e in self.entries if e[2] is not None
                    and np.linalg.norm(e[2][:2] - at) <= c.identity_radius_m]
            if not used:
                return [], np.zeros(0, int)
            v = np.stack([e[2][:2] for e in used]) - at                            # (M, 2)
            u = np.asarray(where, float)[:, :2] - at                               # (N, 2)
            cos = (v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)) @ \
                (u / (np.linalg.norm(u, axis=1, keepdims=True) + 1e-9)).T         # (M, N)
            top = np.sort(cos, axis=1)
            clear = (top[:, -1] - top[:, -2] > c.identity_margin) & (np.linalg.norm(v, axis=1) > 0.003)
            return used, np.where(clear, np.argmax(cos, axis=1), -1)
        else:
            used = list(self.entries)
            n = int(c.identity_features)
            mine = np.asarray(looks, np.float64)[:, :n]
            theirs = np.stack([e[0][:n] for e in used])
            scale = np.concatenate([mine, theirs]).std(axis=0) + 1e-6
            d = np.linalg.norm((theirs[:, None] - mine[None]) / scale, axis=-1)
            near = np.ones(len(used), bool)
        order = np.sort(d, axis=1)
        clear = near & (order[:, 0] < c.identity_ratio * order[:, 1])
        return used, np.where(clear, np.argmin(d, axis=1), -1)

    def recall(self, looks: np.ndarray, sound: np.ndarray, where: np.ndarray | None = None,
               at: np.ndarray | None = None) -> np.ndarray | None:
        """looks (N,F) of the candidates at the fingertips (and, if known, their places (N,3) and
        the contact point ``at`` (3,)), sound (A,) of the touch now -> (N,) cosine of the sound
        with the closest remembered sound of each candidate's object; None unless every
        candidate has one."""
        if len(self.entries) == 0 or len(looks) < 2:
            return None
        used, owner = self._owners(looks, where, at)
        s = _unit(sound)
        best = np.full(len(looks), -np.inf)
        for (_, snd, _), j in zip(used, owner):
            if j >= 0:
                best[j] = max(best[j], float(snd @ s))
        return best if np.isfinite(best).all() else None

    def probabilities(self, looks: np.ndarray, sound: np.ndarray, where: np.ndarray | None = None,
                      at: np.ndarray | None = None) -> np.ndarray | None:
        """``recall`` as a distribution over the candidates (softmax of ``sharpness`` * cosine)."""
        sim = self.recall(looks, sound, where, at)
        if sim is None:
            return None
        z = self.cfg.sharpness * sim
        q = np.exp(z - z.max())
        return q / q.sum()
