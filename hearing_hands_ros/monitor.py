"""Execution monitor core: the contacts a path was expected to make against those heard while it
runs, decided as soon as the evidence allows.

A :class:`PathMonitor` holds one path's expected events (``events.ContactEvent``, times from the
path start) and is fed what the microphone hears (``heard(t, peak_db, material=None)``, times
from the path start, in order) and the clock (``tick(t)``). It reports :class:`Anomaly` records:

* ``MISSING``: an expected contact was not heard by the time its window closed;
* ``UNEXPECTED``: a contact was heard where none was expected;
* ``LOUDER`` / ``QUIETER``: a matched contact beyond the expected level's margin (its
  confidence grows from 0 at the margin to the event's probability at twice the margin);
* ``WRONG_MATERIAL``: a matched contact whose heard material (from a sound classifier, when the
  caller has one) is not the expected one.

An expected event's window is ``time ± (tolerance_s + spread_k * time_std)``, for a slide from
that before its start to that after its end (where along a sliding motion the fingers begin to
sound is less sure than when the motion begins); a heard onset matches the open window whose
expected time is nearest. ``MISSING`` is decided at the window's end, an
``UNEXPECTED`` onset when it arrives outside every window. Each anomaly's ``confidence`` is the
expected event's probability (``MISSING``, level and material), or the chance that no expected
contact was there (``UNEXPECTED``: 1 - the nearest window's probability, 1 outside them all),
times ``near_weight`` when the other side is near (within ``near_s``): a ``MISSING`` while onsets
that close to its time matched other expected contacts (the path sounds as planned: more often a
contact the rule or model promised that was not real), an ``UNEXPECTED`` onset that close to a
required expected contact (more often a contact expected at a slightly wrong time). An onset
heard early, before an expected contact that then does not come, is what an obstacle on the path
sounds like, so it does not soften that ``MISSING``. While a path has stayed silent, each
``MISSING`` carries the evidence of all the expected contacts missed so far: ``1 - prod(1 - p)``
over them (a knock whose three strikes all stay silent is surer than one silent strike).

:class:`ExecutionMonitor` runs one :class:`PathMonitor` per planned path on a live microphone:
``add_path`` when a path (and its expected events) arrives, ``push_audio`` for every chunk. It
hears onsets with ``events.HeardStream``, gives each to the path running then (the latest one
started whose end, plus ``tail_s``, has not passed; an onset inside an open window of an earlier
path still moving goes to that one; a path's expected events after the next path's start are
dropped, since the next path's own prediction covers that time), ticks every path's clock with the audio's, and closes a
path once its end plus ``tail_s`` has passed: a :class:`PathOutcome`. The audio clock, not the
wall clock, decides, so a replayed recording gives what the live run gave. Onsets heard in the
last ``history_s`` are kept, so a path whose prediction arrives after its motion began still
gets them. Pure Python: the ``contact_monitor`` node and ``evaluate monitor`` both run it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hearing_hands_ros.audio import NS
from hearing_hands_ros.events import ContactEvent, HeardEvent, HeardStream

KINDS = ('MISSING', 'UNEXPECTED', 'LOUDER', 'QUIETER', 'WRONG_MATERIAL')


@dataclass
class MonitorConfig:
    """Tolerances of the monitor (the node's parameters)."""

    tolerance_s: float = 0.03            # [s] always added to an event's window
    spread_k: float = 1.5                # window half-width in time_std
    level_margin_db: float = 20.0        # a level beyond expected +- this is LOUDER / QUIETER
    min_probability: float = 0.5         # expected events below this are not required
    min_confidence: float = 0.8          # anomalies below this are not reported (chosen on validation)
    # A MISSING while onsets within near_s of its time matched other expected contacts (the path
    # sounds as planned), or an UNEXPECTED onset within near_s of a required expected contact, is
    # more often an expected contact that was not real, or a timing error, than a fault: its
    # confidence is multiplied by near_weight
    near_s: float = 10.0                 # [s] (chosen on validation: anywhere in the path)
    near_weight: float = 0.3

    def window(self, e: ContactEvent) -> tuple[float, float]:
        """The window [s from the path start] in which an onset matches expected event ``e``."""
        half = self.tolerance_s + self.spread_k * e.time_std
        return e.time - half, e.time + e.duration + half


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
    heard: tuple | None = None           # (time, peak dB) of the onset it matched
    dropped: bool = False                # belongs to the next path's time
    closed: bool = False


@dataclass
class PathMonitor:
    """The monitor of one path (module docstring)."""

    events: list
    cfg: MonitorConfig = field(default_factory=MonitorConfig)

    def __post_init__(self):
        c = self.cfg
        self._slots = [_Slot(e, *c.window(e)) for e in sorted(self.events, key=lambda e: e.time)]
        self.now = float('-inf')
        self.onsets: list[float] = []    # [s] onsets heard in this path
        self._silent: list[float] = []   # probabilities of the expected contacts missed in silence

    def drop_after(self, t: float) -> None:
        """Expected events from ``t`` on belong to another path (the next one started): they
        are no longer required."""
        for s in self._slots:
            if not s.closed and s.event.time >= t:
                s.closed = s.matched = s.dropped = True

    def _report(self, anomalies: list, a: Anomaly) -> None:
        if a.confidence >= self.cfg.min_confidence:
            anomalies.append(a)

    def tick(self, t: float, close_all: bool = False) -> list[Anomaly]:
        """Advance the clock to ``t``: windows that closed unmatched become ``MISSING`` (with
        ``close_all``, every window still open closes now)."""
        self.now = max(self.now, float(t))
        out: list[Anomaly] = []
        for s in self._slots:
            if not s.closed and (self.now > s.hi or close_all):
                s.closed = True
                if not s.matched and s.event.probability >= self.cfg.min_probability:
                    matched = [x.heard[0] for x in self._slots if x.heard is not None]
                    near = any(abs(o - s.event.time) <= self.cfg.near_s for o in matched)
                    w = self.cfg.near_weight if near else 1.0
                    p = s.event.probability
                    if not self.onsets:           # silent so far: each miss adds to the evidence
                        self._silent.append(p)
                        p = 1.0 - float(np.prod([1.0 - q for q in self._silent]))
                    self._report(out, Anomaly('MISSING', s.event.time, w * p,
                                              expected=s.event, decided_at=self.now))
        return out

    def results(self) -> list[tuple[ContactEvent, bool]]:
        """Each expected event of this path's own time and whether an onset matched it."""
        return [(s.event, s.heard is not None) for s in self._slots if not s.dropped]

    def accepts(self, t: float) -> bool:
        """Would an onset at ``t`` match an open, unmatched expected event?"""
        return any(not s.matched and s.lo <= t <= s.hi for s in self._slots)

    def heard(self, t: float, peak_db: float, material: str | None = None) -> list[Anomaly]:
        """A heard contact onset at ``t`` (from the path start) with its level and, if known,
        material; returns what it decides (and what the clock's advance to ``t`` closed)."""
        out = self.tick(t)
        open_slots = [s for s in self._slots if not s.matched and s.lo <= t <= s.hi]
        self.onsets.append(t)
        if not open_slots:
            near = [s for s in self._slots if s.lo <= t <= s.hi]
            p = max((s.event.probability for s in near), default=0.0)
            near = any(s.lo - self.cfg.near_s <= t <= s.hi + self.cfg.near_s for s in self._slots
                       if s.event.probability >= self.cfg.min_probability)
            w = self.cfg.near_weight if near else 1.0
            self._report(out, Anomaly('UNEXPECTED', t, w * (1.0 - p), heard_time=t, heard_db=peak_db,
                                      heard_material=material, decided_at=t))
            return out
        s = min(open_slots, key=lambda s: abs(s.event.time - t))
        s.matched = True
        s.heard = (t, peak_db)
        e = s.event
        diff = peak_db - e.peak_db
        margin = self.cfg.level_margin_db
        if abs(diff) > margin:              # sure at twice the margin
            sure = min(1.0, (abs(diff) - margin) / margin) if margin > 0 else 1.0
            self._report(out, Anomaly('LOUDER' if diff > 0 else 'QUIETER', t, e.probability * sure,
                                      expected=e, heard_time=t, heard_db=peak_db,
                                      heard_material=material, decided_at=t))
        if material:
            out += self.heard_material(t, material, decided_at=t)
        return out

    def heard_material(self, t: float, material: str, sure: float = 1.0,
                       decided_at: float | None = None) -> list[Anomaly]:
        """The material a sound classifier heard in the onset at ``t`` (told later, once it has
        heard enough), ``sure`` its probability: ``WRONG_MATERIAL`` when the expected event it
        matched names another one."""
        s = next((s for s in self._slots if s.heard is not None and abs(s.heard[0] - t) < 1e-9), None)
        if s is None or not s.event.material or material == s.event.material:
            return []
        e = s.event
        confidence = e.probability * (1.0 - e.material_probs.get(material, 0.0)) * float(sure)
        out: list[Anomaly] = []
        self._report(out, Anomaly('WRONG_MATERIAL', t, confidence, expected=e, heard_time=t,
                                  heard_db=s.heard[1], heard_material=material,
                                  decided_at=self.now if decided_at is None else decided_at))
        return out

    def finish(self, t: float | None = None) -> list[Anomaly]:
        """The path is over: at ``t`` every window still open closes (default: once the last
        window has closed)."""
        if t is None:
            return self.tick(max([s.hi for s in self._slots] + [self.now]) + 1e-9)
        return self.tick(t, close_all=True)

    @property
    def done(self) -> bool:
        """Every expected window has closed."""
        return all(s.closed for s in self._slots)


# --- on a live microphone ---------------------------------------------------------------------
@dataclass
class PathOutcome:
    """How one path went: every anomaly it raised, and what was expected and heard."""

    key: object                          # the caller's key of the path (e.g. its stamp)
    start_ns: int
    anomalies: list                      # [Anomaly]
    expected: int                        # expected events the monitor required
    heard: list                          # [HeardEvent] given to this path (time from its start)
    results: list = field(default_factory=list)   # [(ContactEvent, matched)] (PathMonitor.results)

    @property
    def ok(self) -> bool:
        return not self.anomalies


@dataclass
class _Running:
    key: object
    start_ns: int
    end_ns: int
    monitor: PathMonitor
    sliding: Callable[[float, float], bool] | None
    anomalies: list = field(default_factory=list)
    heard: list = field(default_factory=list)


class ExecutionMonitor:
    """Paths and a live microphone in, anomalies and per-path outcomes out (module docstring)."""

    def __init__(self, sample_rate: int, cfg: MonitorConfig | None = None, tail_s: float = 0.3,
                 history_s: float = 3.0, threshold_db: float = 12.0,
                 classify: Callable[[np.ndarray], dict] | None = None, classify_s: float = 0.42,
                 classify_pre_s: float = 0.02, calibration: 'Calibration | None' = None):
        self.cfg = cfg or MonitorConfig()
        self.calibration = calibration
        # the material of a matched onset: classify(samples from classify_pre_s before it,
        # classify_s long) -> {material: probability}, asked once that audio has been heard
        self.classify = classify
        self.classify_ns = int(classify_s * NS)
        self.classify_pre_ns = int(classify_pre_s * NS)
        self._to_classify: list = []                       # (run, onset ns, time from its start)
        self.tail_ns = int(tail_s * NS)
        self.history_ns = int(history_s * NS)
        self._paths: list[_Running] = []                   # by start time
        self._heard: deque = deque()                       # recent HeardEvent (time: stamp s)
        self._audio_ns: int | None = None                  # end of the audio heard so far
        self.stream = HeardStream(sample_rate, threshold_db=threshold_db, sliding=self._sliding)
        self.unattributed = 0                              # onsets while no path ran

    def _sliding(self, t0_ns: int, t1_ns: int) -> bool:
        p = self._path_at(t0_ns)
        if p is None or p.sliding is None:
            return True
        return bool(p.sliding((t0_ns - p.start_ns) / NS, (t1_ns - p.start_ns) / NS))

    def _path_at(self, t_ns: int) -> _Running | None:
        running = [p for p in self._paths if p.start_ns <= t_ns <= p.end_ns + self.tail_ns]
        return running[-1] if running else None

    @property
    def paths(self) -> list:
        """Keys of the paths being monitored, oldest first."""
        return [p.key for p in self._paths]

    def add_path(self, key, start_ns: int, end_ns: int, events: list[ContactEvent],
                 sliding: Callable[[float, float], bool] | None = None) -> list:
        """Start monitoring a path (stamps of its first and last pose, its expected events with
        times from its start; ``sliding(t0, t1)``: does the planned gripper slide then, seconds
        from its start). Returns ``[(key, Anomaly)]`` already decided from onsets heard since its
        start."""
        if self.calibration is not None:
            events = self.calibration.apply(events)
        run = _Running(key, int(start_ns), int(end_ns), PathMonitor(list(events), self.cfg),
                       sliding)
        for p in self._paths:                 # what they expected from now on is this path's
            if p.start_ns < run.start_ns:
                p.monitor.drop_after((run.start_ns - p.start_ns) / NS)
        self._paths.append(run)
        self._paths.sort(key=lambda p: p.start_ns)
        out = []
        for ev in self._heard:
            if self._path_for(ev.time) is run:
                out += self._give(run, ev)
        if self._audio_ns is not None:
            out += self._tick(run, self._audio_ns)
        return out

    def _path_for(self, t: float) -> _Running | None:
        t_ns = int(round(t * NS))
        for p in reversed(self._paths):       # an open window of a path still moving wins
            if p.start_ns <= t_ns <= p.end_ns and \
                    p.monitor.accepts((t_ns - p.start_ns) / NS):
                return p
        return self._path_at(t_ns)

    def _give(self, run: _Running, ev: HeardEvent) -> list:
        rel = HeardEvent((int(round(ev.time * NS)) - run.start_ns) / NS, ev.peak_db, ev.kind,
                         ev.duration)
        run.heard.append(rel)
        found = run.monitor.heard(rel.time, rel.peak_db)
        if self.classify is not None:
            self._to_classify.append((run, int(round(ev.time * NS)), rel.time))
        run.anomalies += found
        return [(run.key, a) for a in found]

    def _tick(self, run: _Running, t_ns: int) -> list:
        found = run.monitor.tick((t_ns - run.start_ns) / NS)
        run.anomalies += found
        return [(run.key, a) for a in found]

    def _classified(self, now: int) -> list:
        out, waiting = [], []
        for run, onset, rel in self._to_classify:
            if now < onset - self.classify_pre_ns + self.classify_ns:
                waiting.append((run, onset, rel))
                continue
            x = self.stream.window(onset - self.classify_pre_ns, onset - self.classify_pre_ns
                                   + self.classify_ns)
            probs = self.classify(x)
            material = max(probs, key=probs.get)
            found = run.monitor.heard_material(rel, material, probs[material],
                                               decided_at=(now - run.start_ns) / NS)
            run.anomalies += found
            out += [(run.key, a) for a in found]
        self._to_classify = waiting
        return out

    def push_audio(self, t0_ns: int, samples: np.ndarray) -> tuple[list, list]:
        """Feed one chunk. Returns (``[(key, Anomaly)]`` decided now, ``[PathOutcome]`` of the
        paths that ended)."""
        anomalies = []
        for ev in self.stream.push(t0_ns, samples):
            self._heard.append(ev)
            run = self._path_for(ev.time)
            if run is None:
                self.unattributed += 1
            else:
                anomalies += self._give(run, ev)
        self._audio_ns = now = self.stream.latest_ns
        anomalies += self._classified(now)
        while self._heard and now - int(self._heard[0].time * NS) > self.history_ns:
            self._heard.popleft()
        done = []
        for run in list(self._paths):
            anomalies += self._tick(run, now)
            if now > run.end_ns + self.tail_ns and not any(r is run for r, *_ in self._to_classify):
                final = run.monitor.finish((now - run.start_ns) / NS)
                run.anomalies += final
                anomalies += [(run.key, a) for a in final]
                self._paths.remove(run)
                done.append(PathOutcome(run.key, run.start_ns, run.anomalies,
                                        sum(e.probability >= self.cfg.min_probability
                                            for e in run.monitor.events), run.heard,
                                        run.monitor.results()))
        return anomalies, done


# --- calibration from the robot's own normal runs ----------------------------------------------
@dataclass
class Calibration:
    """How often each sort of expected contact is heard when nothing goes wrong, fitted on
    recordings of normal runs (no labels: a robot has many). An expected event's sort is its kind
    and its stated probability in tenths; :meth:`apply` replaces the probability by the rate at
    which events of that sort were heard (Laplace-smoothed), so a rule or model that promises more
    contacts than the microphone hears no longer raises ``MISSING`` on every normal run."""

    counts: dict = field(default_factory=dict)   # sort -> [heard, expected]
    source: str = ''                             # where the expected events came from

    @staticmethod
    def sort(e: ContactEvent) -> str:
        return f'{e.kind}:{min(9, max(0, int(e.probability * 10)))}'

    def add(self, results: list[tuple[ContactEvent, bool]]) -> None:
        """Count one path's expected events and whether each was heard."""
        for e, heard in results:
            c = self.counts.setdefault(self.sort(e), [0, 0])
            c[0] += int(heard)
            c[1] += 1

    def rate(self, e: ContactEvent) -> float:
        """P(heard) of an event of this sort in normal runs (its own probability if unseen)."""
        h, n = self.counts.get(self.sort(e), (0, 0))
        return e.probability if n == 0 else (h + e.probability) / (n + 1)

    def apply(self, events: list[ContactEvent]) -> list[ContactEvent]:
        """The events with calibrated probabilities."""
        from dataclasses import replace
        return [replace(e, probability=float(self.rate(e))) for e in events]

    def to_dict(self) -> dict:
        return {'version': 1, 'source': self.source, 'counts': self.counts}

    @classmethod
    def from_dict(cls, d: dict) -> 'Calibration':
        if d.get('version') != 1 or not isinstance(d.get('counts'), dict):
            raise ValueError('not a contact-monitor calibration (version 1)')
        return cls({str(k): [int(v[0]), int(v[1])] for k, v in d['counts'].items()}, str(d.get('source', '')))
