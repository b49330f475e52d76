"""Contact-event model: from a planned path (frame by frame) and what the plan-start wrist view
shows along it, the audible contacts the path will make.

Shapes (B paths, T frames at 100 frames/s, D = ``N_INPUTS`` per-frame inputs)::

    inputs  (B, T, D)   [trajectory features (18) | path geometry (6) | look of the local view
                         the frame's path point falls in (33) | intended contact (2)]
    -> onset (B, T)     logit: an impact's onset is in this frame
       slide (B, T)     logit: a slide sounds in this frame
       level (B, T)     peak level at the wrist microphone of a contact starting here [dBFS]
       material (B, T, M) logits over the sound world's materials

Network: per-frame MLP -> residual dilated 1-D convolutions (the whole plan is known, so they
look both ways, about +-1.3 s) -> four per-frame heads. :func:`decode` turns the per-frame
outputs into :class:`hearing_hands_ros.events.ContactEvent` lists: impacts at the peaks of the
onset probability (time = the probability-weighted mean around the peak, spread its standard
deviation, probability the peak's height: the targets are bumps of height 1 around each onset),
slides at runs of the slide probability.

The optional *intended contact* is what a planner knows and a recording does not say: the height
of the surface it means to touch. Training takes it from the recording itself (the planned TCP
height at the first heard onset of the window) and drops it for half of the windows, so the
model works with and without it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.events import ContactEvent

MATERIALS = ('wood', 'metal', 'glass', 'ceramic', 'plastic', 'cardboard', 'foam', 'fabric')
N_GEOMETRY = 6          # z - z_start, z - z_min, time to the lowest point, |v|, |v_xy|, v_z
N_LOOK = 33             # models.predictor.N_VIEW_LOOK (found, distance, 31 look statistics)
N_RULE = 3              # the kinematic rule's impacts, slides and levels, frame by frame
N_CONTACT = 2           # intended contact given (0/1), z - z_contact [m]
N_INPUTS = tr.N_FEATURES + N_GEOMETRY + N_LOOK + N_CONTACT
ONNX_INPUTS = ('inputs',)
ONNX_OUTPUTS = ('onset', 'slide', 'level', 'material')


@dataclass
class EventConfig:
    """Event model and decoding settings (saved in the bundle metadata)."""

    width: int = 64
    kernel: int = 5
    dilations: tuple = (1, 2, 4, 8, 16, 1)
    frame_rate: float = tr.FRAME_RATE
    frames_per_crop: int = 20                 # local views, as the predictor's
    level_mean: float = -30.0                 # [dBFS] level head's output scale
    level_std: float = 15.0
    min_peak: float = 0.05                    # onset probability of a peak worth reporting
    min_gap_s: float = 0.05                   # impacts closer than this are one
    slide_threshold: float = 0.5
    min_slide_s: float = 0.08
    min_time_std_s: float = 0.004
    rule_inputs: bool = False                 # also feed the kinematic rule's events (N_RULE)

    @classmethod
    def from_dict(cls, d: dict) -> 'EventConfig':
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if 'dilations' in d:
            d['dilations'] = tuple(d['dilations'])
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def n_inputs(cfg: 'EventConfig') -> int:
    """Per-frame inputs of a model of this config."""
    return N_INPUTS + (N_RULE if cfg.rule_inputs else 0)


def checked_config(meta: dict) -> 'EventConfig':
    """The config of an events bundle, checked against its declared input count."""
    from hearing_hands_ros.errors import ModelError
    cfg = EventConfig.from_dict(meta.get('config', {}))
    if meta.get('n_inputs') != n_inputs(cfg):
        raise ModelError(f"events bundle takes {meta.get('n_inputs')} inputs a frame, this package "
                         f'makes {n_inputs(cfg)} for its config; re-export it')
    return cfg


# --- inputs (numpy; shared by the data set, the planner and the evaluation) ------------------
def geometry(feats: np.ndarray, valid: int, frame_rate: float = tr.FRAME_RATE) -> np.ndarray:
    """Path geometry per frame (T, 6) from trajectory features (T, 18), over ``valid`` frames."""
    z = feats[:, 2]
    n = max(1, int(valid))
    k_min = int(np.argmin(z[:n]))
    v = feats[:, 9:12]
    t = np.arange(len(z)) / frame_rate
    return np.stack([z - z[0], z - z[k_min], t - k_min / frame_rate, np.linalg.norm(v, axis=1),
                     np.linalg.norm(v[:, :2], axis=1), v[:, 2]], 1).astype(np.float32)


def frame_looks(looks: np.ndarray | None, n_frames: int, frames_per_crop: int) -> np.ndarray:
    """Each frame's local-view look (T, 33), the view it falls in held over its frames."""
    if looks is None or not len(looks):
        return np.zeros((n_frames, N_LOOK), np.float32)
    k = np.minimum(np.arange(n_frames) // frames_per_crop, len(looks) - 1)
    return np.asarray(looks, np.float32)[k]


def with_contact(inputs: np.ndarray, contact_z: np.ndarray, give: np.ndarray | None = None
                 ) -> np.ndarray:
    """Copy of stacked inputs (B, T, D) with the intended contact filled in (the last two
    columns) where ``give`` (default: every path) and its height ``contact_z`` (B,) is known."""
    x = inputs.copy()
    ok = np.isfinite(contact_z) if give is None else give & np.isfinite(contact_z)
    x[ok, :, -2] = 1.0
    x[ok, :, -1] = x[ok, :, 2] - contact_z[ok, None]
    return x


def rule_track(feats: np.ndarray, valid: int, frame_rate: float = tr.FRAME_RATE) -> np.ndarray:
    """The kinematic rule's events (``models.kinematic_events``) frame by frame (T, 3): its
    impacts as bumps of their probability, its slides as their probability over their frames,
    and the level of the loudest event there ((dBFS + 60) / 60)."""
    from hearing_hands_ros.models.kinematic_events import kinematic_events
    t_len = len(feats)
    out = np.zeros((t_len, N_RULE), np.float32)
    t = np.arange(t_len) / frame_rate
    for e in kinematic_events(feats, valid, frame_rate):
        if e.kind == 'slide':
            on = (t >= e.time) & (t < e.time + max(e.duration, 1 / frame_rate))
            out[on, 1] = np.maximum(out[on, 1], e.probability)
            bump = on.astype(np.float32)
        else:
            bump = np.exp(-0.5 * ((t - e.time) / max(e.time_std, 1 / frame_rate)) ** 2)
            out[:, 0] = np.maximum(out[:, 0], e.probability * bump)
        out[:, 2] = np.maximum(out[:, 2], bump * (e.peak_db + 60.0) / 60.0)
    return out


def model_inputs(feats: np.ndarray, valid: int, looks: np.ndarray | None,
                 contact_z: float | None, cfg: EventConfig) -> np.ndarray:
    """The per-frame inputs (T, n_inputs(cfg)) of one path; ``contact_z`` = the intended
    contact's height in the path frame [m], or None when the planner does not know it. The
    intended contact is always the last two columns."""
    t_len = len(feats)
    contact = np.zeros((t_len, N_CONTACT), np.float32)
    if contact_z is not None and np.isfinite(contact_z):
        contact[:, 0] = 1.0
        contact[:, 1] = feats[:, 2] - float(contact_z)
    parts = [feats.astype(np.float32), geometry(feats, valid, cfg.frame_rate),
             frame_looks(looks, t_len, cfg.frames_per_crop)]
    if cfg.rule_inputs:
        parts.append(rule_track(feats, valid, cfg.frame_rate))
    return np.concatenate(parts + [contact], 1)


# --- network --------------------------------------------------------------------------------
class _Block(nn.Module):
    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=dilation * (kernel - 1) // 2,
                              dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.norm = nn.GroupNorm(1, width)

    def forward(self, x):                      # (B, C, T) -> (B, C, T)
        return x + self.mix(torch.nn.functional.gelu(self.conv(self.norm(x))))


class EventNet(nn.Module):
    """Per-frame contact-event heads over a planned path (module docstring)."""

    def __init__(self, cfg: EventConfig, mean: np.ndarray | None = None,
                 std: np.ndarray | None = None):
        super().__init__()
        self.cfg = cfg
        d = n_inputs(cfg)
        self.register_buffer('mean', torch.as_tensor(
            np.zeros(d) if mean is None else mean, dtype=torch.float32))
        self.register_buffer('std', torch.as_tensor(
            np.ones(d) if std is None else std, dtype=torch.float32))
        w = cfg.width
        self.inp = nn.Sequential(nn.Linear(d, w), nn.GELU(), nn.Linear(w, w))
        self.blocks = nn.Sequential(*[_Block(w, cfg.kernel, d) for d in cfg.dilations])
        self.head = nn.Conv1d(w, 3 + len(MATERIALS), 1)

    def forward(self, inputs: torch.Tensor):
        """inputs (B, T, N_INPUTS) -> onset (B, T), slide (B, T), level (B, T) [dBFS],
        material (B, T, M) logits."""
        x = self.inp((inputs - self.mean) / self.std).transpose(1, 2)      # (B, w, T)
        y = self.head(self.blocks(x))                                       # (B, 3 + M, T)
        level = self.cfg.level_mean + self.cfg.level_std * y[:, 2]
        return y[:, 0], y[:, 1], level, y[:, 3:].transpose(1, 2)


def save_checkpoint(path, net: EventNet, summary: dict) -> None:
    """A training run's ``events.pt``: config, weights (normalisation included), summary."""
    torch.save({'config': net.cfg.to_dict(), 'state': net.state_dict(), 'summary': summary}, path)


def load_checkpoint(path) -> EventNet:
    """The network of an ``events.pt`` (eval mode; its training summary as ``net.summary``)."""
    ck = torch.load(path, map_location='cpu', weights_only=False)
    net = EventNet(EventConfig.from_dict(ck['config']))
    net.load_state_dict(ck['state'])
    net.summary = ck.get('summary', {})
    return net.eval()


def torch_loader(pt_path, meta: dict):
    """``runtime.load_bundle`` hook for backend ``torch``: feeds -> outputs like the ONNX graph."""
    net = load_checkpoint(pt_path)

    @torch.no_grad()
    def run(feeds: dict) -> dict:
        outs = net(torch.as_tensor(feeds['inputs'], dtype=torch.float32))
        return {k: v.numpy() for k, v in zip(ONNX_OUTPUTS, outs)}
    return run


def export_onnx(net: EventNet, path) -> None:
    """The network as ONNX (dynamic batch and length)."""
    net = net.eval()
    dummy = torch.zeros(1, 50, n_inputs(net.cfg))
    torch.onnx.export(net, (dummy,), str(path), input_names=list(ONNX_INPUTS),
                      output_names=list(ONNX_OUTPUTS), opset_version=17, dynamo=False,
                      dynamic_axes={'inputs': {0: 'b', 1: 't'}, 'onset': {0: 'b', 1: 't'},
                                    'slide': {0: 'b', 1: 't'}, 'level': {0: 'b', 1: 't'},
                                    'material': {0: 'b', 1: 't'}})


# --- decoding ---------------------------------------------------------------------------------
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def decode_batch(outputs: dict, inputs: np.ndarray, valid, cfg: EventConfig) -> list:
    """Stacked network outputs (``ONNX_OUTPUTS``, numpy) of paths with these inputs (B, T, D)
    and valid frames (B,) -> each path's contact events."""
    return [decode(outputs['onset'][i], outputs['slide'][i], outputs['level'][i],
                   outputs['material'][i], inputs[i, :, :3], int(valid[i]), cfg)
            for i in range(len(inputs))]


def decode(onset: np.ndarray, slide: np.ndarray, level: np.ndarray, material: np.ndarray,
           positions: np.ndarray, valid: int, cfg: EventConfig) -> list[ContactEvent]:
    """One path's per-frame outputs (T,), (T,), (T,), (T, M) and planned TCP positions (T, 3)
    -> its contact events, in time order."""
    n = int(valid)
    p = _sigmoid(onset[:n])
    ps = _sigmoid(slide[:n])
    mat = _softmax(material[:n])
    fr = cfg.frame_rate
    events: list[ContactEvent] = []

    def event(k: int, time: float, std: float, prob: float, kind: str, duration: float = 0.0):
        probs = {m: float(v) for m, v in zip(MATERIALS, mat[k])}
        events.append(ContactEvent(
            time=float(time), time_std=float(max(std, cfg.min_time_std_s)),
            probability=float(np.clip(prob, 0.0, 1.0)), peak_db=float(level[k]), kind=kind,
            material=max(probs, key=probs.get), material_probs=probs,
            position=np.asarray(positions[k], float).copy(), duration=float(duration)))

    gap = max(1, int(round(cfg.min_gap_s * fr)))
    half = gap // 2 + 1
    order = np.argsort(-p)
    taken = np.zeros(n, bool)
    for k in order:
        if p[k] < cfg.min_peak:
            break
        if taken[max(0, k - gap + 1):k + gap].any():
            continue
        lo, hi = max(0, k - half), min(n, k + half + 1)
        w = p[lo:hi]
        idx = np.arange(lo, hi)
        mass = float(w.sum())
        t_mean = float((w * idx).sum() / mass) / fr
        std = float(np.sqrt((w * (idx / fr - t_mean) ** 2).sum() / mass))
        event(int(k), t_mean, std, float(p[k]), 'impact')
        taken[k] = True
    run = ps >= cfg.slide_threshold
    k = 0
    while k < n:
        if run[k]:
            j = k
            while j < n and run[j]:
                j += 1
            if (j - k) / fr >= cfg.min_slide_s:
                event(k, k / fr, 1.0 / fr, float(ps[k:j].max()), 'slide', (j - k) / fr)
            k = j
        else:
            k += 1
    return sorted(events, key=lambda e: e.time)
