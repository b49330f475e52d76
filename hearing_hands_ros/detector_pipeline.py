"""The sounding-object detector's event pipeline, without ROS: audio in, onsets out, each onset
paired with a camera frame and answered with the frame's candidate objects.

The ``sounding_object_detector`` node is a thin shell around one :class:`DetectorPipeline`: its
callbacks convert messages and call ``set_format`` / ``push_audio`` / ``push_frame`` /
``set_camera`` / ``set_aperture``; its worker thread calls ``ready``, ``prepare`` and ``detect``.
Anything a message can get wrong raises :class:`InputError` (kind, message), which the node
reports on ``/diagnostics`` before dropping only that message or event.

Policies (the same for every caller):

* **pairing**: an onset waits until the audio window ``[onset - pre, onset + post]`` and a frame
  stamped at or after the onset have arrived (or ``event_timeout_s`` of wall time has passed:
  what arrived is used, the audio zero-padded) and takes the frame nearest the onset within
  ``max_frame_age_s``: a camera callback running late does not change the pairing;
* **table model**: ``automask.TableSchedule``, causal and the same as ``evaluate detector``'s:
  an event's table colour model is fitted on the last ``frame_history`` frames up to the latest
  refit tick (every ``table_refit_s`` of frame stamps) before its frame; the node snapshots those
  frames as a tick passes and fits between events, so the fit rarely waits in an event's path;
* **fingers**: cut out of the candidates from the gripper geometry (``camera_info``
  intrinsics, ``T_tcp_camera``, aperture); without intrinsics nothing is cut out;
* **contact set and memory**: the candidates within the bundle's contact radius of the projected
  contact point are decided by the sound (``ContactRule``): by the object sound memory
  (``sound_memory``, filled by the touches that had one candidate there, placed through the
  gripper pose nearest the frame) when it remembers each of them, else by the look match.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from hearing_hands_ros import audio as A
from hearing_hands_ros.automask import (AutoMaskConfig, TableModel, TableSchedule, gripper_pixels,
                                        min_segment_px, object_segments, project_contact,
                                        segment_locator)
from hearing_hands_ros.models.detector import DetectorConfig, audio_input, image_input
from hearing_hands_ros.models.look_match import (ContactRule, LookConfig, segment_regions,
                                                 sound_features, sounding_candidates)
from hearing_hands_ros.models.sound_memory import MemoryConfig, SoundMemory

NS = 1_000_000_000
#: The TCP as its own frame: the camera rides on the hand, so the fingers and the contact point
#: project to the same pixels whatever the pose.
HAND = (np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))


class InputError(Exception):
    """A message or event the pipeline cannot use: ``kind`` names it on ``/diagnostics``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class PipelineConfig:
    """The node parameters the pipeline reads (names as in ``config/sounding_object_detector.yaml``)."""

    onset_threshold_db: float = 12.0
    max_frame_age_s: float = 0.1
    min_area: float = 0.004
    max_area: float = 0.8
    T_tcp_camera: tuple = (0.0, -0.075, 0.068, 0.9220290376453586, 0.0, 0.0, -0.3871207224352294)
    default_aperture: float = 0.0
    table_refit_s: float = 2.0
    ring_seconds: float = 4.0
    frame_history: int = 30
    event_timeout_s: float = 1.0
    sound_memory_size: int = 32

    @classmethod
    def from_params(cls, p) -> 'PipelineConfig':
        """From a parameter namespace with (at least) these names."""
        return cls(**{k: getattr(p, k) for k in cls.__dataclass_fields__})


@dataclass
class Answer:
    """One event's answer: the candidates (best first) and what they were computed from."""

    onset_ns: int
    frame_ns: int
    rgb: np.ndarray                 # (H, W, 3) uint8, the paired frame as received
    frame_id: str
    candidates: list                # dicts: score, bbox (look-size px), mask (look-size bool), slot
    look_size: int                  # the grid of bbox and mask
    mel: np.ndarray                 # (n_mels, frames) the model's audio input
    model_s: float                  # time spent in the model + scoring [s]


class DetectorPipeline:
    """Audio ring, onset detector, frame history, table model and the model call of one stream.

    ``bundle`` is a loaded detector bundle (``runtime.load_bundle``) and ``cfg`` its
    ``DetectorConfig``; ``look`` the optional look-match bundle with its weight and config, and
    ``contact`` its optional ``ContactRule`` (it needs ``camera_info`` to place the fingertips).
    Thread-safe: callbacks and one worker thread may call it concurrently.
    """

    def __init__(self, bundle, cfg: DetectorConfig, pc: PipelineConfig, look=None,
                 look_weight: float = 0.0, look_cfg: LookConfig | None = None,
                 contact: ContactRule | None = None):
        self.bundle, self.cfg, self.pc = bundle, cfg, pc
        self.look, self.look_weight, self.look_cfg = look, look_weight, look_cfg or LookConfig()
        self.contact = contact
        self.memory = SoundMemory(MemoryConfig(size=int(pc.sound_memory_size))) \
            if contact is not None and look is not None and int(pc.sound_memory_size) > 0 else None
        self._lock = threading.Lock()
        self.fmt: A.AudioFormat | None = None
        self.ring: A.AudioRingBuffer | None = None
        self.onsets: A.OnsetDetector | None = None
        self._last_audio_ns: int | None = None
        self._last_image_ns: int | None = None
        self.frames: collections.deque = collections.deque(maxlen=max(2, int(pc.frame_history)))
        self.K: np.ndarray | None = None
        self._info_size: tuple[int, int] | None = None
        self.aperture = float(pc.default_aperture)
        self.poses: collections.deque = collections.deque(maxlen=256)   # (t_ns, position, quat)
        self.fingers = 'not cut out: no camera_info yet'
        self.tables = TableSchedule(pc.table_refit_s, pc.frame_history)
        self._snaps: dict[int, list] = {}       # refit tick -> the frames its table is fitted on

    # --- inputs --------------------------------------------------------------------------
    def set_format(self, fmt: A.AudioFormat) -> bool:
        """Take the stream's format; a change resets the audio history (returns True then)."""
        with self._lock:
            changed = self.fmt is not None and fmt != self.fmt
            if fmt != self.fmt:
                self.fmt = fmt
                sr = self.cfg.sample_rate
                self.ring = A.AudioRingBuffer(sr, float(self.pc.ring_seconds))
                self.onsets = A.OnsetDetector(sr, threshold_db=float(self.pc.onset_threshold_db))
                self._last_audio_ns = None
        return changed

    def clear_format(self) -> None:
        """Forget the format (a broken AudioInfo): audio is refused until a valid one comes."""
        with self._lock:
            self.fmt = None

    @property
    def format(self) -> A.AudioFormat | None:
        """The stream's format, or None before a valid AudioInfo."""
        with self._lock:
            return self.fmt

    def push_audio(self, t0_ns: int, samples: np.ndarray) -> list[int]:
        """Add a decoded chunk (samples at the format's rate, any channel count) stamped
        ``t0_ns``; returns the onsets it completed (ns)."""
        with self._lock:
            fmt = self.fmt
        if fmt is None:
            raise InputError('audio_info_missing', 'audio before a valid AudioInfo on audio_info; '
                                                   'chunk dropped')
        if len(samples) == 0:
            raise InputError('bad_audio', 'empty audio chunk dropped')
        mono = A.to_mono(samples)
        if fmt.sample_rate != self.cfg.sample_rate:
            mono = A.resample(mono, fmt.sample_rate, self.cfg.sample_rate)
        with self._lock:
            if self.fmt != fmt:                  # the format changed while decoding
                raise InputError('audio_info_changed', 'chunk of the old format dropped')
            if self._last_audio_ns is not None and t0_ns < self._last_audio_ns:
                raise InputError('audio_stamp_backwards', 'audio stamp went backwards; chunk '
                                                          'dropped')
            self._last_audio_ns = t0_ns
            self.ring.push(t0_ns, mono)
            return list(self.onsets.push(t0_ns, mono))

    def audio_stats(self) -> dict:
        """The ring buffer's stream counters (chunks, gaps, overlaps, resets, ...); {} before
        a format."""
        with self._lock:
            return dict(self.ring.stats) if self.ring is not None else {}

    def push_frame(self, t_ns: int, rgb: np.ndarray, frame_id: str) -> None:
        """Keep a camera frame for pairing; a stamp going backwards resets the history."""
        with self._lock:
            backwards = self._last_image_ns is not None and t_ns < self._last_image_ns
            if backwards:
                self.frames.clear()
                self.tables.reset()
                self._snaps = {}
            self._last_image_ns = t_ns
            k = self.tables.tick(t_ns)
            if k not in self._snaps:     # a tick passed: the frames so far are those up to it
                snap = list(self.frames)
                if t_ns <= self.tables.tick_ns(k):
                    snap.append((t_ns, rgb, frame_id))
                self._snaps[k] = snap[-self.tables.history:]
                for old in sorted(self._snaps)[:-3]:
                    del self._snaps[old]
            self.frames.append((t_ns, rgb, frame_id))
        if backwards:
            raise InputError('image_stamp_backwards', 'image stamp went backwards; frame history '
                                                      'reset')

    def set_camera(self, K: np.ndarray, height: int, width: int) -> None:
        """Intrinsics of the wrist camera (for cutting out the fingers)."""
        K = np.asarray(K, float).reshape(3, 3)
        if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or width <= 0 or height <= 0:
            raise InputError('bad_camera_info', 'CameraInfo without valid intrinsics (K, width, '
                                                'height); ignored')
        with self._lock:
            self.K, self._info_size = K, (int(height), int(width))

    def set_pose(self, t_ns: int, position: np.ndarray, orientation: np.ndarray) -> None:
        """A gripper TCP pose (world frame): it places the candidates for the sound memory."""
        p, q = np.asarray(position, float), np.asarray(orientation, float)
        if p.shape != (3,) or q.shape != (4,) or not (np.isfinite(p).all() and np.isfinite(q).all()) \
                or abs(np.linalg.norm(q) - 1.0) > 0.01:
            raise InputError('bad_pose', 'gripper pose with a non-finite position or a '
                                         'non-unit quaternion; ignored')
        with self._lock:
            if self.poses and t_ns < self.poses[-1][0]:
                self.poses.clear()
            self.poses.append((int(t_ns), p, q))

    def set_aperture(self, aperture: float) -> None:
        """The gripper opening [m]."""
        if np.isfinite(aperture):
            with self._lock:
                self.aperture = float(aperture)

    # --- events --------------------------------------------------------------------------
    def ready(self, onset_ns: int, waited_s: float) -> bool:
        """Have the event's audio window and a frame stamped at or after the onset (so the
        frame nearest the onset is here) arrived, or has it waited ``event_timeout_s``?"""
        with self._lock:
            latest = self.ring.latest_ns if self.ring else None
            frame = self._last_image_ns
        if latest is not None and latest >= onset_ns + int(self.cfg.window_post_s * NS) \
                and frame is not None and frame >= onset_ns:
            return True
        return waited_s > self.pc.event_timeout_s

    def _nearest_frame(self, onset_ns: int):
        with self._lock:
            frames = list(self.frames)
        if not frames:
            return None, frames
        return min(frames, key=lambda f: abs(f[0] - onset_ns)), frames

    def _paired_frame(self, onset_ns: int):
        frame, frames = self._nearest_frame(onset_ns)
        if frame is None:
            raise InputError('no_frame', 'sound event without any camera frame')
        if abs(frame[0] - onset_ns) > self.pc.max_frame_age_s * NS:
            raise InputError('stale_frame', f'nearest frame is {abs(frame[0] - onset_ns) / 1e6:.0f}'
                                            ' ms from the onset (> max_frame_age_s); event dropped')
        return frame, frames

    def prepare(self, onset_ns: int):
        """The frame half of an event's answer (segments, their looks), from the frame nearest
        the onset so far; ``detect`` reuses it if no nearer frame arrives meanwhile. None when
        there is no frame to pair yet."""
        try:
            frame, frames = self._paired_frame(onset_ns)
        except InputError:
            return None
        return frame[0], self._regions(frame[1], frame[0], frames)

    def detect(self, onset_ns: int, prepared=None) -> Answer:
        """Answer one event: the model on the audio window and the paired frame, the segments
        scored by the slots and rescored by the look match (``sounding_candidates``)."""
        cfg = self.cfg
        with self._lock:
            win = self.ring.window(onset_ns - int(cfg.window_pre_s * NS),
                                   onset_ns + int(cfg.window_post_s * NS))
        (t_img, rgb, frame_id), frames = self._paired_frame(onset_ns)
        t0 = time.perf_counter()
        mel = audio_input(win, cfg)
        img = image_input(rgb, cfg.image_size).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        feeds = {'image': np.ascontiguousarray(img), 'logmel': mel[None, None]}
        out = self.bundle.run({k: v for k, v in feeds.items() if k in self.bundle.meta['inputs']})
        scores, masks = out['scores'][0], out['masks'][0]
        if prepared is not None and prepared[0] == t_img:
            rgb_l, segments, regions = prepared[1]
        else:
            rgb_l, segments, regions = self._regions(rgb, t_img, frames)
        sound = sound_features(win, self.look_cfg).ravel() if self.look is not None else None
        cands = sounding_candidates(scores, masks, segments, rgb_l, sound, self.look,
                                    self.look_weight, self.pc.min_area, self.pc.max_area,
                                    regions=regions, contact=self.contact,
                                    contact_uv=self._contact_uv(rgb.shape[:2], rgb_l.shape[0]),
                                    memory=self.memory,
                                    locate=self._locator(t_img, rgb.shape[:2], rgb_l.shape[0]))
        if self.memory is not None:
            self.memory.observe(cands, sound)
        return Answer(onset_ns, t_img, rgb, frame_id, cands, self.look_cfg.look_size, mel,
                      time.perf_counter() - t0)

    def refit_table(self) -> None:
        """Fit the table model of the latest tick now if it is not yet (call between events
        only: the next event then finds it ready)."""
        with self._lock:
            t = self._last_image_ns
            frames = list(self.frames)
        if t is not None:
            self._table_at(t, frames)

    # --- the frame half ------------------------------------------------------------------
    def _table_at(self, t_ns: int, frames: list) -> TableModel:
        """The table model of the frame stamped ``t_ns`` (``TableSchedule``): fitted on the
        tick's snapshot, or, once that is gone (history reset), on the frames up to ``t_ns``."""
        L = self.look_cfg.look_size
        with self._lock:
            k = self.tables.tick(t_ns)
            snap = self._snaps.get(k) or [f for f in frames if f[0] <= t_ns][-self.tables.history:]
        return self.tables.fitted(k, lambda: np.stack([image_input(f, L) for _, f, _ in snap]))

    def _gripper_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The fingers in the frame (bool, frame size) from the gripper geometry; none without
        camera_info. The camera rides on the hand, so the TCP pose itself does not matter."""
        with self._lock:
            aperture = self.aperture
        K, T = self._camera(shape)
        if K is None:
            self.fingers = 'not cut out: no camera_info yet'
            return np.zeros(shape, bool)
        self.fingers = f'cut out (aperture {aperture:.3f} m)'
        return gripper_pixels(HAND, T, K, aperture, shape, AutoMaskConfig())

    def _camera(self, shape: tuple[int, int]):
        """The intrinsics for frames of ``shape`` (rescaled from camera_info's size) and
        T_tcp_camera; K is None before camera_info."""
        with self._lock:
            K, size = self.K, self._info_size
        if K is not None and size != shape:          # intrinsics of another resolution: rescale
            K = K * np.array([[shape[1] / size[1]], [shape[0] / size[0]], [1.0]])
        t = np.asarray(self.pc.T_tcp_camera, float)
        return K, (t[:3], t[3:])

    def _locator(self, t_ns: int, shape: tuple[int, int], size: int):
        """``automask.segment_locator`` of the frame stamped ``t_ns`` (look-size masks), from the
        gripper pose nearest it (within ``max_frame_age_s``); None without camera_info or pose."""
        K, T = self._camera(shape)
        with self._lock:
            poses = list(self.poses)
        if K is None or not poses:
            return None
        t, p, q = min(poses, key=lambda x: abs(x[0] - t_ns))
        if abs(t - t_ns) > self.pc.max_frame_age_s * NS:
            return None
        return segment_locator((p, q), T, K, shape, size)

    def _contact_uv(self, shape: tuple[int, int], size: int) -> np.ndarray | None:
        """The projected contact point (the TCP) in look-size pixels; None before camera_info.
        The camera rides on the hand, so it is the same pixel in every frame."""
        K, T = self._camera(shape)
        if K is None:
            return None
        uv, _ = project_contact(HAND, T, K)
        return np.array([uv[0] * size / shape[1], uv[1] * size / shape[0]])

    def _regions(self, rgb: np.ndarray, t_ns: int, frames: list):
        L = self.look_cfg.look_size
        rgb_l = image_input(rgb, L)
        grip = cv2.resize(self._gripper_mask(rgb.shape[:2]).astype(np.uint8), (L, L),
                          interpolation=cv2.INTER_NEAREST) > 0
        table = self._table_at(t_ns, frames)
        segments = object_segments(rgb_l, table, grip, min_segment_px(L))
        regions = segment_regions(segments, rgb_l if self.look is not None else None,
                                  self.pc.min_area, self.pc.max_area)
        return rgb_l, segments, regions
