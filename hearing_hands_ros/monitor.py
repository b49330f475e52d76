"""Execution monitor core: the contacts a path was expected to make against those heard while it
runs, decided as soon as the evidence allows.

A :class:`PathMonitor` holds one path's expected events (``events.ContactEvent``, times from the
path start) and is fed what the microphone hears (``heard(t, peak_db, material=None)``, times
from the path start, in order) and the clock (``tick(t)``). It reports :class:`Anomaly` records:

* ``MISSING``: an expected contact was not heard by the time its window closed;
* ``UNEXPECTED``: a contact was heard where none was expected;
* ``LOUDER`` / ``QUIETER``: a matched contact beyond the expected level's margin;
* ``WRONG_MATERIAL``: a matched contact whose heard material (from a sound classifier, when the
  caller has one) is not the expected one.

An expected event's window is ``time ± (tolerance_s + spread_k * time_std)``; a heard onset
matches the open window nearest its centre. ``MISSING`` is decided at the window's end, an
``UNEXPECTED`` onset when it arrives outside every window. Each anomaly's ``confidence`` is the
expected event's probability (``MISSING``, level and material), or the chance that no expected
contact was there (``UNEXPECTED``: 1 - the nearest window's probability, 1 outside them all).
Pure Python: the ``contact_monitor`` node and the evaluation both run it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hearing_hands_ros.events import ContactEvent

KINDS = ('MISSING', 'UNEXPECTED', 'LOUDER', 'QUIETER', 'WRONG_MATERIAL')


@dataclass
class MonitorConfig:
    """Tolerances of the monitor (the node's parameters)."""

    tolerance_s: float = 0.05            # [s] always added to an event's window
    spread_k: float = 3.0                # window half-width in time_std
    level_margin_db: float = 10.0        # a level beyond expected +- this is LOUDER / QUIETER
    min_probability: float = 0.5         # expected events below this are not required
    min_confidence: float = 0.5          # anomalies below this are not reported


@dataclass
class Anomaly:
    """One thing that went otherwise than expected."""

    kind: str                            # one of KINDS
    time: float                          # [s] from the path start: heard, or the expected time
    confidence: float
    expected: ContactEvent | None = None
    heard_time: float | None = None
    heard_db: float | None = None
    heard_material: str | None = None
    decided_at: float = 0.0              # [s] from the path start: when it could be told


@dataclass
class _Slot:
    event: ContactEvent
    lo: float
    hi: float
    matched: bool = False
    closed: bool = False


@dataclass
class PathMonitor:
    """The monitor of one path (module docstring)."""

    events: list
    cfg: MonitorConfig = field(default_factory=MonitorConfig)

    def __post_init__(self):
        c = self.cfg
        self._slots = [_Slot(e, e.time - (c.tolerance_s + c.spread_k * e.time_std),
                             e.time + (c.tolerance_s + c.spread_k * e.time_std))
                       for e in sorted(self.events, key=lambda e: e.time)]
        self.now = float('-inf')

    def _report(self, anomalies: list, a: Anomaly) -> None:
        if a.confidence >= self.cfg.min_confidence:
            anomalies.append(a)

    def tick(self, t: float) -> list[Anomaly]:
        """Advance the clock to ``t``: windows that closed unmatched become ``MISSING``."""
        self.now = max(self.now, float(t))
        out: list[Anomaly] = []
        for s in self._slots:
            if not s.closed and self.now > s.hi:
                s.closed = True
                if not s.matched and s.event.probability >= self.cfg.min_probability:
                    self._report(out, Anomaly('MISSING', s.event.time, s.event.probability,
                                              expected=s.event, decided_at=self.now))
        return out

    def heard(self, t: float, peak_db: float, material: str | None = None) -> list[Anomaly]:
        """A heard contact onset at ``t`` (from the path start) with its level and, if known,
        material; returns what it decides (and what the clock's advance to ``t`` closed)."""
        out = self.tick(t)
        open_slots = [s for s in self._slots if not s.matched and s.lo <= t <= s.hi]
        if not open_slots:
            near = [s for s in self._slots if s.lo <= t <= s.hi]
            p = max((s.event.probability for s in near), default=0.0)
            self._report(out, Anomaly('UNEXPECTED', t, 1.0 - p, heard_time=t, heard_db=peak_db,
                                      heard_material=material, decided_at=t))
            return out
        s = min(open_slots, key=lambda s: abs(s.event.time - t))
        s.matched = True
        e = s.event
        diff = peak_db - e.peak_db
        if abs(diff) > self.cfg.level_margin_db:
            self._report(out, Anomaly('LOUDER' if diff > 0 else 'QUIETER', t, e.probability,
                                      expected=e, heard_time=t, heard_db=peak_db,
                                      heard_material=material, decided_at=t))
        if material and e.material and material != e.material:
            confidence = e.probability * (1.0 - e.material_probs.get(material, 0.0))
            self._report(out, Anomaly('WRONG_MATERIAL', t, confidence, expected=e, heard_time=t,
                                      heard_db=peak_db, heard_material=material, decided_at=t))
        return out

    def finish(self, t: float | None = None) -> list[Anomaly]:
        """The path is over (at ``t``, default: after every window): close what is left."""
        end = max([s.hi for s in self._slots] + [self.now]) + 1e-9 if t is None else t
        return self.tick(end)

    @property
    def done(self) -> bool:
        """Every expected window has closed."""
        return all(s.closed for s in self._slots)
