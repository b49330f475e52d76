"""Contact-sound predictor: a rectified-flow velocity network over log-mel frames, conditioned
frame by frame on the planned gripper motion and on the wrist-camera view at plan start.

Shapes (B batch, T mel frames at 100 frames/s, M = 64 mel bins, D = 18 trajectory features,
K = ceil(T / frames_per_crop) local views)::

    x       (B, M, T)        noisy normalised log-mel (flow state)
    t       (B,)             flow time in [0, 1]
    drop    (B,)             1 = condition dropped (classifier-free guidance)
    traj    (B, T, D)        trajectory features (``hearing_hands_ros.trajectory``)
    image   (B, 3, S, S)     wrist-camera view at plan start, RGB in [0, 1] (global view)
    crops   (B, K, 3, s, s)  local views: crops centred where the path projects in that image,
                             one per ``frames_per_crop`` frames
    looks   (B, K, 2 + 31)   what each local view points at (models with ``look_dim`` > 0):
                             [found, distance / L, look statistics of the automatic object segment
                             nearest the path point at L = ``look_size`` px] (``view_looks``)
    -> velocity (B, M, T)

Network: condition = [trajectory MLP | global-view CNN embedding | local-view CNN embedding held
over its frames | (look MLP of the view's segment, held likewise)] -> conv; a three-level 1D U-Net
of ConvNeXt blocks whose norms are modulated by the flow time (adaptive LayerNorm), with the
condition added at every level. All convolutional over time: any T works (padded to a multiple
of 4 inside), ~1 GFLOP per evaluation of 8 s.

Two options of newer models (``PredictorConfig``; older bundles have neither):
``velocity_skip``  velocity = output - x, so at t = 0 the output is the data estimate itself;
``prior``          a frozen copy of the regression baseline (same network, zero input, t = 0)
                   runs inside: its mel mu is a second input channel block and is added to the
                   output (velocity = output - x + mu; CorrDiff's regression + residual). A fresh
                   flow net is then exactly the regression at t = 0, and the flow learns the
                   spread around it. The dropped condition drops mu too. Costs a second network
                   call per step.

:class:`ExportGraph` is the ONNX graph the node runs: ``velocity`` of the flow state plus
``audio`` = vocoder(mel) of a second input, so one session serves both the sampling loop and the
final decode (feed an empty batch to the half you do not need: ONNX Runtime skips no nodes, but
an empty batch costs nothing).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hearing_hands_ros import automask as A
from hearing_hands_ros.models import flow
from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.images import compose_poses, matrix_to_quat, project_points
from hearing_hands_ros.models.look_match import N_LOOK, look_features, look_maps

N_VIEW_LOOK = 2 + N_LOOK          # found flag, distance to the segment / L, look statistics


@dataclass
class PredictorConfig:
    sample_rate: int = 16000
    hop: int = 160
    n_fft: int = 512
    n_mels: int = 64
    frame_rate: float = 100.0
    traj_dim: int = tr.N_FEATURES
    channels: tuple = (96, 128, 192)      # per U-Net level (T, T/2, T/4)
    blocks: int = 2                        # ConvNeXt blocks per level (encoder), 1 in the decoder
    cond_dim: int = 96
    vis_dim: int = 48
    image_size: int = 64                   # global view S x S
    crop_size: int = 16                    # local view s x s
    crop_frac: float = 0.3                 # local crop side as a fraction of the image width
    frames_per_crop: int = 20              # one local view per 0.2 s
    max_seconds: float = 8.0
    tail_seconds: float = 0.5              # audio predicted after the path ends (ringing)
    look_dim: int = 0                      # 0: no segment looks (older models); else N_VIEW_LOOK
    look_size: int = 128                   # frame side the segments and their looks are taken at
    velocity_skip: bool = False            # velocity = network output - x (False: older models)
    prior: bool = False                    # a frozen regression net's mel is an input (CorrDiff)
    # normalisation constants, filled from the training data
    mel_mean: list = field(default_factory=lambda: [-8.0] * 64)
    mel_std: list = field(default_factory=lambda: [4.0] * 64)
    traj_mean: list = field(default_factory=lambda: [0.0] * tr.N_FEATURES)
    traj_std: list = field(default_factory=lambda: [1.0] * tr.N_FEATURES)
    look_mean: list = field(default_factory=lambda: [0.0] * N_LOOK)
    look_std: list = field(default_factory=lambda: [1.0] * N_LOOK)

    def to_dict(self) -> dict:
        d = asdict(self)
        d['channels'] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'PredictorConfig':
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if 'channels' in d:
            d['channels'] = tuple(d['channels'])
        return cls(**d)

    def plain(self) -> 'PredictorConfig':
        """This config without the flow-only options: the regression net's (and the prior's)."""
        return PredictorConfig.from_dict({**self.to_dict(), 'velocity_skip': False, 'prior': False})

    @property
    def max_frames(self) -> int:
        return int(round(self.max_seconds * self.frame_rate)) + 1


# --- building blocks ------------------------------------------------------------------------
def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of flow time (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
    ang = 1000.0 * t[:, None].float() * freqs[None]                    # periods 1/1000 .. 1
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


class Block(nn.Module):
    """ConvNeXt-1D block with adaptive LayerNorm: x + gate * MLP(norm(dw(x)) * (1 + s) + b)."""

    def __init__(self, dim: int, emb: int, kernel: int = 7, dilation: int = 1, mult: int = 2):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                            groups=dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mod = nn.Linear(emb, 3 * dim)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)
        self.up = nn.Linear(dim, mult * dim)
        self.down = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:   # (B,C,T), (B,E)
        scale, shift, gate = self.mod(emb)[:, None].chunk(3, dim=-1)          # (B,1,C) each
        h = self.norm(self.dw(x).transpose(1, 2)) * (1 + scale) + shift
        h = self.down(F.gelu(self.up(h))) * (1 + gate)
        return x + h.transpose(1, 2)


class ViewEncoder(nn.Module):
    """Small CNN: (N, 3, s, s) RGB -> (N, out) (stride-2 convs then mean pool)."""

    def __init__(self, out: int, widths=(16, 32, 64)):
        super().__init__()
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.GELU()]
            c = w
        self.net = nn.Sequential(*layers)
        self.proj = nn.Linear(c, out)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.proj(self.net(img * 2 - 1).mean(dim=(2, 3)))


class VelocityNet(nn.Module):
    """v(x, t | traj, image, crops): see the module docstring for shapes."""

    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        c0, c1, c2 = cfg.channels
        emb = 4 * cfg.cond_dim // 2
        self.register_buffer('mel_mean', torch.tensor(cfg.mel_mean).view(1, -1, 1))
        self.register_buffer('mel_std', torch.tensor(cfg.mel_std).view(1, -1, 1))
        self.register_buffer('traj_mean', torch.tensor(cfg.traj_mean).view(1, 1, -1))
        self.register_buffer('traj_std', torch.tensor(cfg.traj_std).view(1, 1, -1))
        # condition
        self.global_view = ViewEncoder(cfg.vis_dim, (16, 32, 64, 64))
        self.local_view = ViewEncoder(cfg.vis_dim, (16, 32, 64))
        self.traj_mlp = nn.Sequential(nn.Linear(cfg.traj_dim, cfg.cond_dim), nn.GELU(),
                                      nn.Linear(cfg.cond_dim, cfg.cond_dim))
        n_vis = 2
        if cfg.look_dim:
            self.register_buffer('look_mean', torch.tensor(cfg.look_mean).view(1, 1, -1))
            self.register_buffer('look_std', torch.tensor(cfg.look_std).view(1, 1, -1))
            self.look_mlp = nn.Sequential(nn.Linear(cfg.look_dim, cfg.vis_dim), nn.GELU(),
                                          nn.Linear(cfg.vis_dim, cfg.vis_dim))
            n_vis = 3
        self.cond_proj = nn.Conv1d(cfg.cond_dim + n_vis * cfg.vis_dim, cfg.cond_dim, 5, padding=2)
        self.null_cond = nn.Parameter(torch.zeros(1, cfg.cond_dim, 1))
        self.t_mlp = nn.Sequential(nn.Linear(64, emb), nn.GELU(), nn.Linear(emb, emb))
        # U-Net
        if cfg.prior:                      # frozen; filled from the run's regression net
            self.prior_net = VelocityNet(cfg.plain()).requires_grad_(False)
        self.stem = nn.Conv1d((2 if cfg.prior else 1) * cfg.n_mels + cfg.cond_dim, c0, 3, padding=1)
        self.cond_in = nn.ModuleList([nn.Conv1d(cfg.cond_dim, c, 1) for c in (c1, c2)])
        self.enc0 = nn.ModuleList([Block(c0, emb) for _ in range(cfg.blocks)])
        self.down0 = nn.Conv1d(c0, c1, 2, stride=2)
        self.enc1 = nn.ModuleList([Block(c1, emb) for _ in range(cfg.blocks)])
        self.down1 = nn.Conv1d(c1, c2, 2, stride=2)
        self.mid = nn.ModuleList([Block(c2, emb, dilation=d) for d in (1, 3, 9)])
        self.up1 = nn.ConvTranspose1d(c2, c1, 2, stride=2)
        self.dec1 = Block(c1, emb)
        self.up0 = nn.ConvTranspose1d(c1, c0, 2, stride=2)
        self.dec0 = Block(c0, emb)
        self.out = nn.Conv1d(c0, cfg.n_mels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def condition(self, traj: torch.Tensor, image: torch.Tensor, crops: torch.Tensor,
                  drop: torch.Tensor, looks: torch.Tensor | None = None) -> torch.Tensor:
        """Return the per-frame condition, shaped (B, cond_dim, T); dropped rows get the null one."""
        b, t_len, _ = traj.shape
        k = crops.shape[1]
        f = self.traj_mlp((traj - self.traj_mean) / self.traj_std).transpose(1, 2)  # (B,C,T)
        g = self.global_view(image)[:, :, None].expand(-1, -1, t_len)               # (B,V,T)
        v = self.cfg.vis_dim
        fpc = self.cfg.frames_per_crop

        def hold(e):                       # (B, V, K) one per view -> (B, V, T) over its frames
            return e[:, :, :, None].expand(b, v, k, fpc).reshape(b, v, k * fpc)[:, :, :t_len]
        parts = [f, g, hold(self.local_view(crops.flatten(0, 1)).view(b, k, v).transpose(1, 2))]
        if self.cfg.look_dim:
            found = looks[..., :1]                                                   # (B,K,1)
            stats = (looks[..., 2:] - self.look_mean) / self.look_std * found
            e = self.look_mlp(torch.cat([found, looks[..., 1:2], stats], dim=-1))     # (B,K,V)
            parts.append(hold(e.transpose(1, 2)))
        c = self.cond_proj(torch.cat(parts, dim=1))
        d = drop[:, None, None]
        return c * (1 - d) + self.null_cond * d

    def forward(self, x, t, drop, traj, image, crops, looks=None):
        t_len = x.shape[-1]
        pad = (-t_len) % 4
        c = self.condition(traj, image, crops, drop, looks)
        if pad:
            x = F.pad(x, (0, pad))
            c = F.pad(c, (0, pad), mode='replicate')
        emb = self.t_mlp(time_embedding(t, 64))
        if self.cfg.prior:                 # the regression's mel (B, M, T); none when dropped
            mu = regress(self.prior_net, traj, image, crops, looks) * (1 - drop)[:, None, None]
            x = torch.cat([x, F.pad(mu, (0, pad))], dim=1)
        h = self.stem(torch.cat([x, c], dim=1))
        for blk in self.enc0:
            h = blk(h, emb)
        s0 = h
        h = self.down0(h) + self.cond_in[0](F.avg_pool1d(c, 2))
        for blk in self.enc1:
            h = blk(h, emb)
        s1 = h
        h = self.down1(h) + self.cond_in[1](F.avg_pool1d(c, 4))
        for blk in self.mid:
            h = blk(h, emb)
        h = self.dec1(self.up1(h) + s1, emb)
        h = self.dec0(self.up0(h) + s0, emb)
        v = self.out(h)[..., :t_len]
        # With the skip, the network's output is v + x: at t = 0 that is E[data | condition] (the
        # regression baseline's target), not the data minus the input noise, which the narrow
        # stem would otherwise have to carry through the whole U-Net. With the prior it is the
        # residual on the regression's mel (CorrDiff): a fresh net starts as the regression.
        if self.cfg.velocity_skip:
            v = v - x[:, :self.cfg.n_mels, :t_len]
        if self.cfg.prior:
            v = v + mu
        return v

    def normalize_mel(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.mel_mean) / self.mel_std

    def denormalize_mel(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mel_std + self.mel_mean


def regress(net: nn.Module, traj, image, crops, looks=None) -> torch.Tensor:
    """The regression baseline's use of a velocity net: the normalised mel (B, M, T) from a zero
    input at t = 0. ``net`` may be DDP-wrapped (it is called through its own forward)."""
    b, t_len = traj.shape[0], traj.shape[1]
    z = torch.zeros(b, getattr(net, 'module', net).cfg.n_mels, t_len, dtype=traj.dtype,
                    device=traj.device)
    zt = torch.zeros(b, dtype=traj.dtype, device=traj.device)
    return net(z, zt, zt, traj, image, crops, looks)


def regression_predict(model: nn.Module, b: dict) -> torch.Tensor:
    """The regression baseline on a batch dict (``traj``, ``image``, ``crops``, ``looks``):
    :func:`regress`."""
    return regress(model, b['traj'], b['image'], b['crops'], b.get('looks'))


def network_evaluations(steps: int, guidance: float, prior: bool = False) -> int:
    """Network calls per clip: :func:`flow.network_evaluations`, twice for a model whose
    velocity graph also runs its regression prior at every step."""
    return flow.network_evaluations(steps, guidance) * (2 if prior else 1)


def bind(net: nn.Module, traj: torch.Tensor, image: torch.Tensor, crops: torch.Tensor,
         looks: torch.Tensor | None = None):
    """Velocity function ``fn(x, t, drop)`` of ``net`` with the condition bound; a batch of
    r x B (classifier-free guidance) repeats the condition r times."""
    cond0 = (traj, image, crops, looks)

    def velocity(x, t, drop):
        r = x.shape[0] // traj.shape[0]
        cond = cond0 if r == 1 else tuple(None if c is None else torch.cat([c] * r) for c in cond0)
        return net(x, t, drop, *cond)
    return velocity


class ExportGraph(nn.Module):
    """ONNX graph: (x, t, drop, traj, image, crops, mel[, looks]) -> (velocity, audio).

    ``mel`` is a *normalised* flow state (B2, M, T2) to decode: audio = vocoder(denormalised mel),
    (B2, (T2 - 1) * hop). Either half accepts an empty batch. ``looks`` is an input only of
    models with ``look_dim`` > 0 (:func:`onnx_inputs`).
    """

    def __init__(self, net: VelocityNet, vocoder: nn.Module):
        super().__init__()
        self.net, self.vocoder = net, vocoder

    def forward(self, x, t, drop, traj, image, crops, mel, looks=None):
        return (self.net(x, t, drop, traj, image, crops, looks),
                self.vocoder(self.net.denormalize_mel(mel)))


ONNX_INPUTS = ('x', 't', 'drop', 'traj', 'image', 'crops', 'mel')
ONNX_OUTPUTS = ('velocity', 'audio')


def onnx_inputs(cfg: PredictorConfig) -> tuple[str, ...]:
    return ONNX_INPUTS + (('looks',) if cfg.look_dim else ())


def export_onnx(net: VelocityNet, vocoder: nn.Module, path, opset: int = 17) -> dict:
    """Write the :class:`ExportGraph` to ``path``; returns the input layout for the metadata."""
    cfg = net.cfg
    graph = ExportGraph(net, vocoder).eval()
    b, t_len = 2, 3 * cfg.frames_per_crop + 7
    k = math.ceil(t_len / cfg.frames_per_crop)
    dummy = (torch.zeros(b, cfg.n_mels, t_len), torch.zeros(b), torch.zeros(b),
             torch.zeros(b, t_len, cfg.traj_dim), torch.zeros(b, 3, cfg.image_size, cfg.image_size),
             torch.zeros(b, k, 3, cfg.crop_size, cfg.crop_size), torch.zeros(b, cfg.n_mels, t_len))
    if cfg.look_dim:
        dummy += (torch.zeros(b, k, cfg.look_dim),)
    axes = {'x': {0: 'batch', 2: 'frames'}, 't': {0: 'batch'}, 'drop': {0: 'batch'},
            'traj': {0: 'batch', 1: 'frames'}, 'image': {0: 'batch'},
            'crops': {0: 'batch', 1: 'views'}, 'mel': {0: 'decode_batch', 2: 'decode_frames'},
            'velocity': {0: 'batch', 2: 'frames'}, 'audio': {0: 'decode_batch', 1: 'samples'}}
    if cfg.look_dim:
        axes['looks'] = {0: 'batch', 1: 'views'}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(graph, dummy, str(path), input_names=list(onnx_inputs(cfg)),
                          output_names=list(ONNX_OUTPUTS), dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    return {'x': ['batch', cfg.n_mels, 'frames'], 't': ['batch'], 'drop': ['batch'],
            'traj': ['batch', 'frames', cfg.traj_dim],
            'image': ['batch', 3, cfg.image_size, cfg.image_size],
            'crops': ['batch', 'views', 3, cfg.crop_size, cfg.crop_size],
            'mel': ['decode_batch', cfg.n_mels, 'decode_frames'],
            **({'looks': ['batch', 'views', cfg.look_dim]} if cfg.look_dim else {})}


# --- scene inputs (numpy, shared by the dataset, the planner and the node) --------------------
def n_views(n_frames: int, cfg: PredictorConfig) -> int:
    return math.ceil(n_frames / cfg.frames_per_crop)


def global_view(rgb: np.ndarray, cfg: PredictorConfig) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, S, S) in [0, 1]."""
    img = cv2.resize(rgb, (cfg.image_size, cfg.image_size), interpolation=cv2.INTER_AREA)
    return (img.astype(np.float32) / 255.0).transpose(2, 0, 1)


def camera_pose_at_start(feats: np.ndarray, T_tcp_camera) -> tuple[np.ndarray, np.ndarray]:
    """Camera pose in the scene frame at plan start, from the path's first pose (feature row 0)."""
    return compose_poses(plan_start_tcp(feats)[0],
                         (np.asarray(T_tcp_camera[0], float), np.asarray(T_tcp_camera[1], float)))


def in_image(uv: np.ndarray, w: int, h: int) -> np.ndarray:
    """(K, 2) pixel positions -> (K,) bool: finite and inside a w x h image."""
    return np.isfinite(uv).all(1) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)


def local_views(rgb: np.ndarray, feats: np.ndarray, K, T_tcp_camera,
                cfg: PredictorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Crops of ``rgb`` around where the path (feature positions, one every ``frames_per_crop``
    frames) projects from the plan-start camera pose. Returns float32 (K, 3, s, s) in [0, 1]
    (zeros where the point is behind the camera or off the image) and pixel centres (K, 2)."""
    h, w = rgb.shape[:2]
    idx = np.arange(0, len(feats), cfg.frames_per_crop)
    uv, _ = project_points(feats[idx, :3], camera_pose_at_start(feats, T_tcp_camera), K)
    side = max(2, int(round(cfg.crop_frac * w)))
    out = np.zeros((len(idx), 3, cfg.crop_size, cfg.crop_size), np.float32)
    for i in np.flatnonzero(in_image(uv, w, h)):
        u, v = uv[i]
        patch = cv2.getRectSubPix(rgb, (side, side), (float(u), float(v)))
        patch = cv2.resize(patch, (cfg.crop_size, cfg.crop_size), interpolation=cv2.INTER_AREA)
        out[i] = patch.astype(np.float32).transpose(2, 0, 1) / 255.0
    return out, uv


def plan_start_tcp(feats: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """TCP pose (position, quaternion xyzw) and aperture [m] at plan start (feature row 0)."""
    R = np.stack([feats[0, 3:6], feats[0, 6:9], np.cross(feats[0, 3:6], feats[0, 6:9])], axis=1)
    return ((feats[0, :3].astype(np.float64), matrix_to_quat(R.astype(np.float64))),
            float(feats[0, tr.FEATURE_LAYOUT.index('aperture')]))


def scene_segments(rgb: np.ndarray, feats: np.ndarray, K, T_tcp_camera, cfg: PredictorConfig
                   ) -> tuple[np.ndarray, np.ndarray, dict]:
    """The plan-start frame's automatic object segments at ``look_size`` px, the robot's fingers
    cut out from the plan-start TCP pose (``automask``): (frame (L,L,3) uint8, segments (L,L)
    uint8, its ``look_maps``). The table colour model is fitted on this frame alone (the planner
    has no other), its clusters within 0.02 chromaticity of the table's merged into it."""
    size = cfg.look_size
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    Ks = scale_intrinsics(K, (w, h), (size, size))
    tcp, aperture = plan_start_tcp(feats)
    grip = A.gripper_pixels(tcp, T_tcp_camera, Ks, aperture, (size, size))
    table = A.TableModel.fit(small[None], merge=0.02)
    seg = A.object_segments(small, table, grip, A.min_segment_px(size))
    return small, seg, look_maps(small)


def view_looks(segments: tuple, uv: np.ndarray, image_wh: tuple[int, int],
               max_dist: float = 0.15) -> np.ndarray:
    """What each local view points at: for each view centre ``uv`` (K, 2) in the original
    image's pixels, the object segment nearest to it (within ``max_dist`` of the frame side) of
    ``scene_segments``. Returns float32 (K, N_VIEW_LOOK): [found, distance / L, its
    ``look_features``]; a view with no segment near (or off the image) is all zeros but the
    distance 1."""
    small, seg, maps = segments
    size = seg.shape[0]
    out = np.zeros((len(uv), N_VIEW_LOOK), np.float32)
    out[:, 1] = 1.0
    pts = {j: np.argwhere(seg == j)[:, ::-1].astype(np.float32)                  # (n, 2) x, y
           for j in range(1, int(seg.max()) + 1)}
    looks: dict[int, np.ndarray | None] = {}
    scale = np.array([size / image_wh[0], size / image_wh[1]], np.float32)
    for i in np.flatnonzero(in_image(uv, *image_wh)):
        p = uv[i].astype(np.float32) * scale
        dist = {j: float(np.sqrt(((q - p) ** 2).sum(1)).min()) for j, q in pts.items() if len(q)}
        if not dist:
            continue
        j = min(dist, key=dist.get)
        if dist[j] > max_dist * size:
            continue
        if j not in looks:
            looks[j] = look_features(maps, seg == j)
        if looks[j] is not None:
            out[i, 0], out[i, 1], out[i, 2:] = 1.0, dist[j] / size, looks[j]
    return out


def scale_intrinsics(K, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K (3, 3) for an image of (w, h) ``from_size`` -> for ``to_size``."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3).copy()
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    K[0] *= sx
    K[1] *= sy
    return K


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
