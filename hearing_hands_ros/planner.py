"""Planner API: hear candidate gripper motions before executing them (no ROS needed).

    from hearing_hands_ros.planner import Planner, rank_quietest
    planner = Planner()                                   # the shipped model, ONNX Runtime
    preds = planner.predict(paths, rgb)                   # one batched call for all candidates
    best = paths[rank_quietest(preds)[0]]
    for p in preds: print(p.onsets, p.peak_db, p.material, p.action)

``paths`` are :class:`~hearing_hands_ros.trajectory.Trajectory` objects (stamped TCP poses in the
scene frame ``world``; times in seconds on any clock), ``rgb`` the wrist-camera image (H, W, 3)
uint8 taken at plan start. Each :class:`Prediction` holds the predicted audio (16 kHz float32,
sample 0 = the path's first stamp), the predicted contact onsets (seconds from the path start) with
the planned TCP position at each, peak loudness, and the material / action whose recorded sounds
the prediction most resembles (nearest class prototype of sound descriptors, from the training
data, stored in the model metadata). Every candidate in a call gets the same sampler noise
(common random numbers), so differences between predictions come from the paths.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.audio import detect_onsets
from hearing_hands_ros.errors import ModelError
from hearing_hands_ros.events import ContactEvent, expected_peak_db, p_contact
from hearing_hands_ros.data.event_dataset import sliding as sliding_along
from hearing_hands_ros.models import events as E
from hearing_hands_ros.models import flow
from hearing_hands_ros.models import predictor as P
from hearing_hands_ros.models.kinematic_events import kinematic_events
from hearing_hands_ros.paths import model_path
from hearing_hands_ros.runtime import load_bundle

MODEL_NAME = 'contact_sound_predictor'
EVENTS_NAME = 'contact_events'


def default_model_path() -> Path:
    """The shipped model (source checkout's models/, else the installed share folder)."""
    return model_path(f'{MODEL_NAME}.onnx')


@dataclass
class Prediction:
    # (N,) float32 at sample_rate; sample 0 = path start (None when asked for events only)
    audio: np.ndarray | None
    sample_rate: int
    onsets: np.ndarray                 # (C,) predicted contact onsets [s from path start]
    contact_positions: np.ndarray      # (C, 3) planned TCP position at each onset [m, scene frame]
    onset_levels_db: np.ndarray        # (C,) peak 10 ms RMS level within 50 ms of each onset [dBFS]
    peak_db: float                     # peak 10 ms RMS level of the whole prediction [dBFS]
    material: str = ''                 # the material the sound most resembles
    action: str = ''                   # the action the sound most resembles
    mel: np.ndarray | None = field(default=None, repr=False)   # (M, T) log-mel (model output)
    # fraction of the path's local views (one per 0.2 s) that project into the plan-start image;
    # where it is low the model cannot see what the path will touch (plan the contact motion
    # from a pose whose camera view shows the target)
    in_view: float = 1.0
    # the contact-event model's answer (None without a contact_events bundle): the audible
    # contacts of the path, and the probability of at least one
    events: list[ContactEvent] | None = None
    p_contact: float = float('nan')

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def p_contact_by(self, t: float) -> float:
        """P(an audible contact by ``t`` s from the path start), from the events."""
        return p_contact([e for e in (self.events or []) if e.time <= t])

    def p_material(self, material: str) -> float:
        """P(the path audibly touches ``material``), from the events' material posteriors."""
        return float(1.0 - np.prod([1.0 - e.probability * e.material_probs.get(material, 0.0)
                                    for e in (self.events or [])]))


# --- sound descriptors and prototypes ---------------------------------------------------------
def sound_descriptor(mel: np.ndarray, frame_rate: float = 100.0) -> np.ndarray:
    """(M, T) log-mel -> (M + 3,): spectral shape of the active frames (minus its mean), the
    active fraction, onsets per second (frames rising > 2 nats), peak level above the floor."""
    level = np.log(np.exp(mel - mel.max()).sum(0)) + mel.max()          # (T,) frame log-energy
    floor = np.percentile(level, 20)
    active = level > floor + 3.0
    spec = mel[:, active].mean(1) if active.any() else mel.mean(1)
    rises = np.sum((np.diff(level) > 2.0) & active[1:])
    return np.concatenate([spec - spec.mean(),
                           [active.mean() * 10, rises / (mel.shape[1] / frame_rate),
                            (level.max() - floor) / 2]]).astype(np.float32)


def build_prototypes(data) -> dict:
    """Class-mean descriptors of real recorded windows, per material and per action."""
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
    desc = np.stack([sound_descriptor(data.mel[i, :, :int(data.valid[i])].astype(np.float32))
                     for i in range(len(data.valid))])
    scale = desc.std(0) + 1e-3
    out = {'scale': scale.round(5).tolist()}
    for key in ('material', 'action'):
        names = sorted({m[key] for m in data.meta if m[key] not in (NO_MATERIAL, 'unknown')})
        out[key] = {n: desc[[m[key] == n for m in data.meta]].mean(0).round(5).tolist()
                    for n in names}
    return out


def nearest_prototype(desc: np.ndarray, protos: dict, key: str) -> str:
    table = protos.get(key) or {}
    if not table:
        return ''
    scale = np.asarray(protos['scale'])
    names = list(table)
    d = [np.sum(((desc - np.asarray(table[n])) / scale) ** 2) for n in names]
    return names[int(np.argmin(d))]


def peak_level_db(x: np.ndarray, frame: int = 160) -> float:
    """Peak over 10 ms frames of the RMS level [dBFS]."""
    n = len(x) // frame * frame
    if n == 0:
        return -120.0
    rms = np.sqrt(np.mean(x[:n].reshape(-1, frame).astype(np.float64) ** 2, axis=1))
    return float(20 * np.log10(rms.max() + 1e-6))


# --- backends ---------------------------------------------------------------------------------
def torch_backend(pt_path: Path, meta: dict):
    """``runtime.load_bundle(backend='torch')`` loader: the run checkpoint beside the bundle."""
    import torch

    from hearing_hands_ros.models.predictor_run import load_run
    nets = load_run(pt_path)
    net = nets.get('student') or nets.get('teacher')
    voc = nets.get('vocoder')
    if net is None or voc is None:
        raise ModelError(f'{pt_path} holds no trained velocity net and vocoder')
    graph = P.ExportGraph(net, voc).eval()

    def run(feeds):
        with torch.no_grad():
            v, a = graph(*(torch.from_numpy(np.ascontiguousarray(feeds[k]))
                           for k in P.onnx_inputs(net.cfg)))
        return {'velocity': v.numpy(), 'audio': a.numpy()}
    return run


# sampler noise scales a model may default to or be asked for (1 = the training noise)
TEMPERATURE_RANGE = (0.0, 2.0)

REQUIRED_META = ('sample_rate', 'frame_rate', 'hop', 'n_mels', 'feature_layout', 'frame_id',
                 'steps', 'guidance', 'image_size', 'crop_size', 'crop_frac', 'frames_per_crop',
                 'max_path_duration', 'tail_seconds', 'camera')


class Planner:
    """Batched contact-sound prediction with an exported predictor bundle."""

    def __init__(self, model: str | Path | None = None, backend: str = 'auto',
                 steps: int | None = None, guidance: float | None = None, threads: int = 0,
                 T_tcp_camera=None, temperature: float | None = None,
                 guidance_rescale: float | None = None, events_model: str | Path | None = None):
        path = Path(model) if model else default_model_path()
        self.events, self.event_cfg = self._load_events(events_model, path, backend, threads)
        self._scenes: dict = {}          # plan-start image -> its object segments (``_scene``)
        self.bundle = load_bundle(path, 'predictor', backend=backend, threads=threads,
                                  expect={'feature_layout': list(tr.FEATURE_LAYOUT)},
                                  torch_loader=torch_backend)
        meta = self.meta = self.bundle.meta
        missing = [k for k in REQUIRED_META if k not in meta]
        if missing:
            raise ModelError(f'model metadata lacks {", ".join(missing)}; re-export the model')
        if set(meta['outputs']) != set(P.ONNX_OUTPUTS):
            raise ModelError(f'model outputs {meta["outputs"]} are not {list(P.ONNX_OUTPUTS)}')
        self.cfg = P.PredictorConfig(
            sample_rate=int(meta['sample_rate']), hop=int(meta['hop']), n_mels=int(meta['n_mels']),
            frame_rate=float(meta['frame_rate']), image_size=int(meta['image_size']),
            crop_size=int(meta['crop_size']), crop_frac=float(meta['crop_frac']),
            frames_per_crop=int(meta['frames_per_crop']),
            max_seconds=float(meta['max_path_duration']) + float(meta['tail_seconds']),
            tail_seconds=float(meta['tail_seconds']), look_dim=int(meta.get('look_dim', 0)),
            look_size=int(meta.get('look_size', 128)))
        if self.cfg.look_dim not in (0, P.N_VIEW_LOOK):
            raise ModelError(f'model look_dim {self.cfg.look_dim} is not {P.N_VIEW_LOOK} '
                             '(segment looks of another package version); re-export the model')
        self.steps = int(steps or meta['steps'])
        self.guidance = float(meta['guidance'] if guidance is None else guidance)
        # noise scale of the sampler's start point (1 = the training distribution; lower trades
        # the sample's spread for closeness to the conditional mean, like VITS's noise_scale)
        self.temperature = float(meta.get('temperature', 1.0) if temperature is None else temperature)
        # guidance rescale (models.flow.combine_guidance) when sampled with CFG; 0 in older bundles
        self.guidance_rescale = float(meta.get('guidance_rescale', 0.0) if guidance_rescale is None
                                      else guidance_rescale)
        if self.steps < 1:
            raise ModelError('sampling steps must be >= 1')
        lo, hi = flow.RESCALE_RANGE
        if not lo <= self.guidance_rescale <= hi:
            raise ModelError(f'guidance_rescale {self.guidance_rescale:g} is outside [{lo:g}, {hi:g}]')
        lo, hi = TEMPERATURE_RANGE
        if not lo <= self.temperature <= hi:
            raise ModelError(f'sampler temperature {self.temperature:g} is outside [{lo:g}, {hi:g}]')
        cam = meta['camera']
        self.camera_size = (int(cam['width']), int(cam['height']))
        self.K = np.asarray(cam['K'], dtype=np.float64).reshape(3, 3)
        ext = T_tcp_camera or (cam['T_tcp_camera']['position'], cam['T_tcp_camera']['orientation'])
        self.T_tcp_camera = (np.asarray(ext[0], float), np.asarray(ext[1], float))
        self.frame_id = meta['frame_id']
        n_mels = self.cfg.n_mels
        self.mel_mean = np.asarray(meta.get('mel_mean', [-8.0] * n_mels), np.float32).reshape(-1, 1)
        self.mel_std = np.asarray(meta.get('mel_std', [4.0] * n_mels), np.float32).reshape(-1, 1)
        self.max_path_duration = float(meta['max_path_duration'])

    @staticmethod
    def _load_events(events_model, predictor_path: Path, backend: str, threads: int):
        """The contact-event bundle: the one given, else ``contact_events`` beside the predictor
        (none there: events are not predicted)."""
        path = Path(events_model) if events_model else predictor_path.with_name(f'{EVENTS_NAME}.onnx')
        if not events_model and not path.with_suffix('.json').is_file():
            return None, None
        bundle = load_bundle(path, 'events', backend=backend, threads=threads,
                             expect={'feature_layout': list(tr.FEATURE_LAYOUT),
                                     'materials': list(E.MATERIALS)},
                             torch_loader=E.torch_loader)
        return bundle, E.checked_config(bundle.meta)

    @property
    def backend(self) -> str:
        return self.bundle.backend

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def network_evaluations(self) -> int:
        """Network calls per clip: one per step (two with guidance), each twice as many for a
        model whose velocity graph also runs its regression prior."""
        return P.network_evaluations(self.steps, self.guidance, bool(self.meta.get('prior')))

    # inputs ----------------------------------------------------------------------------------
    def prepare(self, paths: list[tr.Trajectory], rgb: np.ndarray, K=None,
                aperture: float = tr.DEFAULT_APERTURE):
        """Validate paths and build model inputs. Returns (traj (B,T,D), image (B,3,S,S),
        crops (B,K,3,s,s), frames per path (B,), fraction of each path's local views inside the
        image (B,), looks (B,K,N_VIEW_LOOK) or None for a model without segment looks). Raises
        TrajectoryError naming the bad path."""
        if rgb is None or np.asarray(rgb).ndim != 3:
            raise ValueError('need a wrist-camera RGB image (H, W, 3) taken at plan start')
        rgb = np.asarray(rgb, dtype=np.uint8)
        h, w = rgb.shape[:2]
        K = P.scale_intrinsics(self.K, self.camera_size, (w, h)) if K is None else \
            np.asarray(K, dtype=np.float64).reshape(3, 3)
        valid = []
        for i, p in enumerate(paths):
            try:
                valid.append(tr.validate(p, self.frame_id, self.max_path_duration))
            except tr.TrajectoryError as e:
                raise tr.TrajectoryError(f'path {i}: {e}' if len(paths) > 1 else str(e)) from None
        if not valid:
            raise tr.TrajectoryError('no paths given')
        frames = np.array([tr.n_frames_for(p.duration, self.cfg.tail_seconds, self.cfg.frame_rate,
                                           self.cfg.max_frames) for p in valid])
        t_len = int(frames.max())
        feats = np.stack([tr.features(p, t_len, self.cfg.frame_rate, aperture=aperture) for p in valid])
        img = P.global_view(rgb, self.cfg)
        views = [P.local_views(rgb, f, K, self.T_tcp_camera, self.cfg) for f in feats]
        crops = np.stack([c for c, _ in views])
        in_view = np.array([P.in_image(uv[:int(np.ceil(n / self.cfg.frames_per_crop))], w, h).mean()
                            for (_, uv), n in zip(views, frames)])
        looks = None
        if self.cfg.look_dim or self.events is not None:   # segments once per image and opening
            image_key = hashlib.blake2b(rgb.tobytes(), digest_size=16).digest() + K.tobytes()
            # the fingers ride with the camera: segments depend on the image and the opening
            keys = [image_key + np.round(f[0, 15:16], 4).tobytes() for f in feats]
            scenes = {}
            for key, f in zip(keys, feats):
                if key not in scenes:
                    scenes[key] = self._scene(key, rgb, f, K)
            looks = np.stack([P.view_looks(scenes[key], uv, (w, h))
                              for key, (_, uv) in zip(keys, views)])
        return feats, np.repeat(img[None], len(valid), 0), crops, frames, in_view, looks

    def _scene(self, key: bytes, rgb, feats, K):
        """The plan-start image's object segments, kept for the last few images: a planner
        asks about many candidate paths from the same view."""
        cache = self._scenes
        if key not in cache:
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            cache[key] = P.scene_segments(rgb, feats, K, self.T_tcp_camera, self.cfg)
        return cache[key]

    # sampling ---------------------------------------------------------------------------------
    def _empty(self, t_len: int, k: int) -> dict:
        c = self.cfg
        return dict(x=np.zeros((0, c.n_mels, t_len), np.float32), t=np.zeros(0, np.float32),
                    drop=np.zeros(0, np.float32), traj=np.zeros((0, t_len, c.traj_dim), np.float32),
                    image=np.zeros((0, 3, c.image_size, c.image_size), np.float32),
                    crops=np.zeros((0, k, 3, c.crop_size, c.crop_size), np.float32),
                    **({'looks': np.zeros((0, k, c.look_dim), np.float32)} if c.look_dim else {}))

    def sample_mel(self, traj, image, crops, seed: int = 0, steps: int | None = None,
                   guidance: float | None = None, temperature: float | None = None,
                   looks=None) -> np.ndarray:
        """Normalised mel (B, M, T) by Euler steps through the bundle (CFG batched as 2B),
        starting from seeded Gaussian noise scaled by ``temperature``."""
        steps = int(steps or self.steps)
        g = self.guidance if guidance is None else float(guidance)
        tau = self.temperature if temperature is None else float(temperature)
        b, t_len = traj.shape[:2]
        # per-path noise of the longest length, cut: a path's noise does not depend on the batch
        noise = tau * np.random.default_rng(seed).standard_normal(
            (self.cfg.n_mels, max(t_len, self.cfg.max_frames))).astype(np.float32)
        x = np.repeat(noise[None, :, :t_len], b, axis=0)
        no_mel = np.zeros((0, self.cfg.n_mels, t_len), np.float32)
        cond = dict(traj=traj.astype(np.float32), image=image.astype(np.float32),
                    crops=crops.astype(np.float32))
        if self.cfg.look_dim:
            if looks is None:
                raise ValueError('this model needs the local views\' segment looks (prepare())')
            cond['looks'] = np.asarray(looks, np.float32)
        if g != 1.0:
            cond = {k: np.concatenate([v, v]) for k, v in cond.items()}
            drop = np.concatenate([np.zeros(b), np.ones(b)]).astype(np.float32)
        else:
            drop = np.zeros(b, np.float32)
        for i in range(steps):
            t_a, dt = i / steps, 1.0 / steps
            xin = np.concatenate([x, x]) if g != 1.0 else x
            t = np.full(len(xin), t_a, np.float32)
            v = self.bundle.run(dict(x=xin, t=t, drop=drop, mel=no_mel, **cond))['velocity']
            if g != 1.0:
                v = flow.combine_guidance(v[:b], v[b:], x, t[:b], g, self.guidance_rescale)
            x = x + dt * v
        return x

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Normalised mel (B, M, T) -> audio (B, (T - 1) * hop) with the bundle's vocoder."""
        feeds = self._empty(x.shape[-1], P.n_views(x.shape[-1], self.cfg))
        return self.bundle.run(dict(feeds, mel=x.astype(np.float32)))['audio']

    def predict_features(self, traj, image, crops, frames=None, seed: int = 0,
                         steps: int | None = None, guidance: float | None = None,
                         temperature: float | None = None, looks=None) -> list[Prediction]:
        """Predict from prepared inputs (see :meth:`prepare`)."""
        x = self.sample_mel(traj, image, crops, seed, steps, guidance, temperature, looks)
        audio = self.decode(x)
        frames = np.full(len(x), x.shape[-1]) if frames is None else frames
        protos = self.meta.get('prototypes') or {}
        out = []
        for i in range(len(x)):
            n = int(frames[i])
            a = np.clip(audio[i, :(n - 1) * self.cfg.hop], -1.0, 1.0).astype(np.float32)
            mel = x[i, :, :n] * self.mel_std + self.mel_mean                 # the model's log-mel
            onsets = detect_onsets(a, self.sample_rate)
            k = np.clip(np.round(onsets * self.cfg.frame_rate).astype(int), 0, n - 1)
            lv = [peak_level_db(a[int(o * self.sample_rate):int((o + 0.05) * self.sample_rate)])
                  for o in onsets]
            desc = sound_descriptor(mel, self.cfg.frame_rate)
            out.append(Prediction(a, self.sample_rate, onsets, traj[i, k, :3].astype(np.float64),
                                  np.asarray(lv), peak_level_db(a),
                                  nearest_prototype(desc, protos, 'material'),
                                  nearest_prototype(desc, protos, 'action'), mel))
        return out

    def predict_events(self, traj, frames, looks=None, contact_z=None) -> list[list[ContactEvent]]:
        """The contact events of prepared paths (see :meth:`prepare`); ``contact_z`` = the
        intended contact's height per path (or one for all; None = not known)."""
        if self.events is None:
            raise ModelError(f'no {EVENTS_NAME} bundle beside the predictor: events are not '
                             'predicted (export one with `hearing-hands export events`)')
        b = len(traj)
        cz = contact_z if isinstance(contact_z, (list, tuple, np.ndarray)) else [contact_z] * b
        if len(cz) != b:
            raise ValueError(f'contact_z: {len(cz)} heights for {b} paths')
        x = np.stack([E.model_inputs(traj[i], int(frames[i]), None if looks is None else looks[i],
                                     cz[i], self.event_cfg) for i in range(b)])
        return E.decode_batch(self.events.run({'inputs': x}), x, frames, self.event_cfg)

    def predict(self, paths: list[tr.Trajectory], rgb: np.ndarray, K=None, seed: int = 0,
                steps: int | None = None, guidance: float | None = None,
                aperture: float = tr.DEFAULT_APERTURE,
                temperature: float | None = None, audio: bool = True,
                contact_z=None) -> list[Prediction]:
        """Predict every candidate path in one batched call: its contact events (with a
        contact_events bundle) and, unless ``audio=False``, its sound. ``contact_z``: the
        height of the surface each path means to touch, where the planner knows it."""
        traj, image, crops, frames, in_view, looks = self.prepare(paths, rgb, K, aperture)
        events = self.predict_events(traj, frames, looks, contact_z) if self.events else None
        if audio:
            preds = self.predict_features(traj, image, crops, frames, seed, steps, guidance,
                                          temperature, looks)
        elif events is None:
            raise ModelError('audio=False needs a contact_events bundle (events only)')
        else:
            preds = [Prediction(None, self.sample_rate, np.zeros(0), np.zeros((0, 3)),
                                np.zeros(0), E_FLOOR) for _ in range(len(traj))]
        for i, (p, v) in enumerate(zip(preds, in_view)):
            p.in_view = float(v)
            if events is not None:
                _take_events(p, events[i])
        return preds

    def expect(self, paths: list[tr.Trajectory], rgb: np.ndarray | None, K=None,
               aperture: float = tr.DEFAULT_APERTURE, source: str = 'model',
               contact_z=None) -> list[tuple[list[ContactEvent], object]]:
        """What an execution monitor needs of each path, in one batched call: its expected
        contact events and ``sliding(t0, t1)`` (does the planned gripper slide along a surface
        over that time, s from the path start). ``source`` 'model': the contact-event model
        (needs the plan-start image ``rgb``); 'kinematic': the hand-written rule from the path
        alone (``rgb`` unused)."""
        if source not in EXPECT_SOURCES:
            raise ValueError(f'expected-event source {source!r} is not one of {EXPECT_SOURCES}')
        if source == 'kinematic':
            valid = [tr.validate(p, self.frame_id, self.max_path_duration) for p in paths]
            frames = [tr.n_frames_for(p.duration, self.cfg.tail_seconds, self.cfg.frame_rate,
                                      self.cfg.max_frames) for p in valid]
            feats = [tr.features(p, n, self.cfg.frame_rate, aperture=aperture)
                     for p, n in zip(valid, frames)]
            events = [kinematic_events(f, n, self.cfg.frame_rate) for f, n in zip(feats, frames)]
        else:
            feats, _, _, frames, _, looks = self.prepare(paths, rgb, K, aperture)
            events = self.predict_events(feats, frames, looks, contact_z)
        return [(ev, sliding_along(f, self.cfg.frame_rate)) for ev, f in zip(events, feats)]


E_FLOOR = -60.0          # [dBFS] the level of a silent prediction
#: Where :meth:`Planner.expect` takes a path's expected events from.
EXPECT_SOURCES = ('model', 'kinematic')


def _take_events(p: Prediction, events: list[ContactEvent], threshold: float = 0.5) -> None:
    """Answer from the events: onsets, positions, levels and material of the likely contacts,
    the expected peak level and P(contact)."""
    p.events = events
    p.p_contact = p_contact(events)
    p.peak_db = expected_peak_db(events, E_FLOOR)
    likely = [e for e in events if e.probability >= threshold]
    p.onsets = np.array([e.time for e in likely])
    p.contact_positions = np.array([e.position for e in likely]).reshape(-1, 3)
    p.onset_levels_db = np.array([e.peak_db for e in likely])
    if events:
        mass = {m: sum(e.probability * e.material_probs.get(m, 0.0) for e in events)
                for m in E.MATERIALS}
        p.material = max(mass, key=mass.get)


# --- ranking ----------------------------------------------------------------------------------
def rank_quietest(preds: list[Prediction]) -> list[int]:
    """Indices, quietest predicted peak first."""
    return sorted(range(len(preds)), key=lambda i: preds[i].peak_db)


def rank_contact_by(preds: list[Prediction], t: float) -> list[int]:
    """Indices, the path most likely to make an audible contact by ``t`` s first (from the
    events: ``Prediction.p_contact_by``); without events, paths whose first predicted onset is
    by ``t`` first (earliest first), those without any contact last."""
    if all(p.events is not None for p in preds):
        return sorted(range(len(preds)), key=lambda i: -preds[i].p_contact_by(t))

    def key(i):
        o = preds[i].onsets
        first = float(o[0]) if len(o) else np.inf
        return (first > t, first)
    return sorted(range(len(preds)), key=key)


def rank_by_material(preds: list[Prediction], material: str) -> list[int]:
    """Indices, the path most likely to touch ``material`` audibly first (from the events:
    ``Prediction.p_material``); without events, paths that sound like it first, then quietest."""
    if all(p.events is not None for p in preds):
        return sorted(range(len(preds)), key=lambda i: (-preds[i].p_material(material),
                                                        preds[i].peak_db))
    return sorted(range(len(preds)), key=lambda i: (preds[i].material != material, preds[i].peak_db))
