"""Automatic masks of the object the gripper touched, from the robot's own state (no labels).

At a sound onset the robot knows where its gripper is (TCP pose) and where its wrist camera sits
on the hand (``T_tcp_camera``, from the URDF; in the sound world's bags from the truth file's
``camera.T_tcp_camera``). So:

1. contact point = TCP pose * ``contact_offset`` (a point in the TCP frame, e.g. the finger tips)
   -> camera pose = TCP pose * T_tcp_camera -> project the point with K: seed pixel (u, v), depth z.
2. the gripper's own pixels: the gripper is rigid in a wrist camera, so its pixels barely change
   over an episode (``static_pixels``); they are never part of the object.
3. GrabCut seeded at the contact point: definite foreground = a small disk at the seed, probable
   foreground = a disk of the expected object radius (``object_radius_m`` at depth z), probable
   background elsewhere, definite background = gripper pixels and the image border far from the
   seed. The connected component nearest the seed is the mask.

Ground-truth labels are never used here; ``mask_iou`` is only for measuring the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from scipy.spatial.transform import Rotation

from .images import compose_poses, project_points


@dataclass
class AutoMaskConfig:
    contact_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # contact point in the TCP frame [m]
    object_radius_m: float = 0.025     # typical object half-size: the probable-foreground disk
    min_radius_px: float = 4.0
    max_radius_px: float = 40.0
    seed_radius_px: float = 2.0        # definite-foreground disk (moved off the gripper if needed)
    iterations: int = 4
    min_area_px: int = 12
    max_area_frac: float = 0.5         # larger "objects" are the table: failure
    # gripper geometry in the TCP frame (the robot's URDF; defaults: the sound world's gripper):
    # two fingers of half size finger_half (x = closing direction, y) from the tips (z = 0) up to
    # finger_len, centred at x = +-(aperture / 2 + finger_half[0]); a palm box above them.
    finger_half: tuple[float, float] = (0.008, 0.008)
    finger_len: float = 0.07
    palm_half: tuple[float, float, float] = (0.06, 0.022, 0.012)
    gripper_margin_px: int = 2
    max_contact_dist_px: float = 20.0  # the touched object's region must come this close [px]
    table_clusters: int = 6            # colour clusters of the per-episode table model


def project_contact(tcp_pose, T_tcp_camera, K, contact_offset=(0.0, 0.0, 0.0)
                    ) -> tuple[np.ndarray, float]:
    """Contact point -> (pixel (u, v), depth z [m]). tcp_pose / T_tcp_camera = (pos(3), quat xyzw)."""
    point, _ = compose_poses(tcp_pose, (np.asarray(contact_offset, float), np.array([0, 0, 0, 1.0])))
    cam = compose_poses(tcp_pose, T_tcp_camera)
    uv, z = project_points(point[None], cam, K)
    return uv[0], float(z[0])


def _box_corners(centre, half) -> np.ndarray:
    c, h = np.asarray(centre, float), np.asarray(half, float)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    return c + signs * h


def gripper_pixels(tcp_pose, T_tcp_camera, K, aperture: float, shape: tuple[int, int],
                   cfg: AutoMaskConfig | None = None) -> np.ndarray:
    """The robot's own fingers and palm in the wrist image, from its geometry: bool (H,W)."""
    cfg = cfg or AutoMaskConfig()
    h, w = shape
    fx, fy = cfg.finger_half
    r = max(float(aperture), 0.0) / 2 + fx
    zc = cfg.finger_len / 2
    boxes = [((sx * r, 0.0, zc - fy / 2), (fx, fy, zc + fy / 2)) for sx in (-1, 1)]
    boxes.append(((0.0, 0.0, cfg.finger_len + cfg.palm_half[2]), cfg.palm_half))
    cam = compose_poses(tcp_pose, T_tcp_camera)
    R = Rotation.from_quat(np.asarray(tcp_pose[1], float))
    out = np.zeros((h, w), np.uint8)
    for centre, half in boxes:
        pts = R.apply(_box_corners(centre, half)) + np.asarray(tcp_pose[0], float)
        uv, z = project_points(pts, cam, K)
        if (z <= 1e-3).any():
            continue
        hull = cv2.convexHull(np.round(uv).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1)
    if cfg.gripper_margin_px:
        out = cv2.dilate(out, np.ones((2 * cfg.gripper_margin_px + 1,) * 2, np.uint8))
    return out.astype(bool)


class TableModel:
    """Per-episode colour model of the support surface: k-means on shadow-robust chromaticity
    (r, g) = (R, G) / (R + G + B) of pixels sampled over the episode's frames; the largest
    cluster is the table (it fills most of a wrist camera's view most of the time)."""

    def __init__(self, centres: np.ndarray, table: int, merge: float = 0.0):
        self.centres, self.table = centres, table
        # clusters whose centre lies within ``merge`` (chromaticity units) of the table's are
        # table too: one frame's k-means splits a plain, noisy table into several clusters
        d = np.hypot(*(centres - centres[table]).T)
        self.table_ids = np.flatnonzero(d <= merge) if merge > 0 else np.array([table])

    @staticmethod
    def _chroma(rgb: np.ndarray) -> np.ndarray:
        x = rgb.reshape(-1, 3).astype(np.float32) + 1.0
        return x[:, :2] / x.sum(axis=1, keepdims=True)

    @classmethod
    def fit(cls, frames: np.ndarray, k: int = 6, samples: int = 20000, seed: int = 0,
            merge: float = 0.0) -> 'TableModel':
        rng = np.random.default_rng(seed)
        px = frames.reshape(-1, 3)
        x = cls._chroma(px[rng.integers(0, len(px), min(samples, len(px)))])
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-4)
        cv2.setRNGSeed(seed)
        _, lab, centres = cv2.kmeans(x, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
        return cls(centres, int(np.bincount(lab[:, 0], minlength=k).argmax()), merge)

    def is_table(self, rgb: np.ndarray) -> np.ndarray:
        x = self._chroma(rgb)
        # squared distance to each centre, one elementwise pass per centre (no (N,k,2) temporary,
        # no BLAS call whose threads cost more than this small product)
        d = np.stack([(x[:, 0] - c0) ** 2 + (x[:, 1] - c1) ** 2 for c0, c1 in self.centres], axis=1)
        near = d.argmin(axis=1)
        table = near == self.table if len(self.table_ids) == 1 else np.isin(near, self.table_ids)
        return table.reshape(rgb.shape[:2])


def segment_locator(tcp_pose, T_tcp_camera, K, shape: tuple[int, int], size: int):
    """mask (size, size) of a segment -> its centre's world point (3,) on the horizontal plane
    through the TCP (the contact height: what the fingers touch is at the TCP), through the wrist
    camera (intrinsics ``K`` of frames of ``shape`` (H, W), pose ``tcp_pose`` * ``T_tcp_camera``);
    its ``contact`` attribute is the TCP position. What the object sound memory tells objects
    apart by: objects stay put, the camera moves."""
    from .images import compose_poses, pixels_on_plane
    cam = compose_poses(tcp_pose, T_tcp_camera)
    z = float(np.asarray(tcp_pose[0], float)[2])
    sx, sy = shape[1] / size, shape[0] / size

    def locate(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        if not len(xs):
            return np.full(3, np.nan)
        return pixels_on_plane([[(xs.mean() + 0.5) * sx, (ys.mean() + 0.5) * sy]], cam, K, z)[0]
    locate.contact = np.asarray(tcp_pose[0], float)       # the contact point itself (world)
    return locate


class TableSchedule:
    """Which frames an event's table colour model is fitted on: the one causal policy of the
    ``sounding_object_detector`` node and of ``evaluate detector``.

    Refit ticks fall every ``refit_s`` of frame stamps from the first frame (tick 0 is the first
    frame itself). An event whose paired frame is stamped t uses the model fitted on the last
    ``history`` frames stamped at or before the latest tick <= t: never a later frame, and the
    same frames whoever replays the stream, whenever its worker gets to the event.
    """

    def __init__(self, refit_s: float = 2.0, history: int = 30, k: int = 6):
        self.refit_ns = max(1, int(round(float(refit_s) * 1e9)))
        self.history, self.k = max(1, int(history)), int(k)
        self.t0: int | None = None
        self._fits: dict[int, TableModel] = {}

    def reset(self) -> None:
        """A new stream (stamps went backwards)."""
        self.t0, self._fits = None, {}

    def tick(self, t_ns: int) -> int:
        """The latest tick at or before ``t_ns`` (the first stamp seen starts tick 0)."""
        if self.t0 is None:
            self.t0 = int(t_ns)
        return max(0, (int(t_ns) - self.t0) // self.refit_ns)

    def tick_ns(self, tick: int) -> int:
        return self.t0 + tick * self.refit_ns

    def pick(self, t_ns: int, stamps: np.ndarray) -> tuple[int, np.ndarray]:
        """(tick, indices of the frames to fit on) for an event paired with the frame at t_ns;
        stamps (N,) ascending. With no frame left at or before the tick, the frames up to t_ns."""
        stamps = np.asarray(stamps, np.int64)
        if self.t0 is None and len(stamps):
            self.t0 = int(stamps[0])                     # a recording: its first frame
        k = self.tick(t_ns)
        idx = np.flatnonzero(stamps <= self.tick_ns(k))
        if not len(idx):
            idx = np.flatnonzero(stamps <= t_ns)
        return k, idx[-self.history:] if len(idx) else np.array([int(np.argmin(np.abs(stamps - t_ns)))])

    def model(self, t_ns: int, stamps: np.ndarray, frames: np.ndarray) -> TableModel:
        """The table model of an event paired with the frame at ``t_ns``, from a recording's
        frames (N,H,W,3) stamped ``stamps`` (N,)."""
        k, idx = self.pick(t_ns, stamps)
        return self.fitted(k, lambda: np.asarray(frames)[idx])

    def fitted(self, tick: int, frames) -> TableModel:
        """The model of ``tick``, fitted on ``frames()`` (n,H,W,3) the first time it is asked
        for (the last three ticks' fits are kept)."""
        if tick not in self._fits:
            self._fits[tick] = TableModel.fit(frames(), k=self.k)
            for old in sorted(self._fits)[:-3]:
                del self._fits[old]
        return self._fits[tick]


def object_components(table: np.ndarray, gripper: np.ndarray, open_px: int
                      ) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected regions of the pixels that are neither table nor gripper (bool (H,W) each),
    after an opening of ``open_px`` that drops specks: (count incl. background, labels (H,W),
    cv2 stats). The opening is intersected with the input, because an even kernel shifts by a
    pixel (for an odd one this changes nothing)."""
    fg = (~table & ~gripper).astype(np.uint8)
    fg &= cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((open_px, open_px), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(fg)
    return n, lab, stats


def touched_region(rgb: np.ndarray, table: np.ndarray, gripper: np.ndarray, contacts: np.ndarray,
                   cfg: AutoMaskConfig) -> np.ndarray:
    """Connected non-table, non-gripper region nearest to the contact pixels (N,2); bool (H,W)."""
    h, w = rgb.shape[:2]
    n, lab, stats = object_components(table, gripper, 3)
    best, best_d = 0, np.inf
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < cfg.min_area_px:
            continue
        ys, xs = np.nonzero(lab == i)
        d = np.sqrt((xs[:, None] - contacts[None, :, 0]) ** 2
                    + (ys[:, None] - contacts[None, :, 1]) ** 2).min()
        if d < best_d:
            best, best_d = i, d
    if best == 0 or best_d > cfg.max_contact_dist_px:
        return np.zeros((h, w), bool)
    mask = lab == best
    return mask if mask.mean() <= cfg.max_area_frac else np.zeros((h, w), bool)


def min_segment_px(size: int) -> int:
    """Smallest object segment kept in a size x size frame: 6 px at 64 px, scaled with the area."""
    return int(round(6 * (size / 64) ** 2))


def object_segments(rgb: np.ndarray, table: 'TableModel', gripper: np.ndarray,
                    min_area_px: int = 6, max_segments: int = 8) -> np.ndarray:
    """Every object-like region of a frame, not only the touched one: connected regions of
    non-table, non-gripper pixels, the largest ``max_segments`` of at least ``min_area_px``.
    Two objects on either side of the fingers fall apart here (the fingers are cut out), which
    is what the slots are taught from (``detector_loss``'s segment term). Returns uint8 (H,W):
    0 = table / gripper / too small, 1..n = segments (largest first)."""
    _, lab, stats = object_components(table.is_table(rgb), gripper, 2)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = [i + 1 for i in np.argsort(-areas, kind='stable') if areas[i] >= min_area_px]
    out = np.zeros(lab.shape, np.uint8)
    for j, i in enumerate(keep[:max_segments]):
        out[lab == i] = j + 1
    return out


def static_pixels(frames: np.ndarray, std_thresh: float = 6.0, min_frames: int = 8) -> np.ndarray:
    """Pixels that stay (nearly) constant over the frames (T,H,W,3) of an episode: the gripper
    seen by its wrist camera. Returns bool (H,W); all False when there are too few frames."""
    if len(frames) < min_frames:
        return np.zeros(frames.shape[1:3], bool)
    step = max(1, len(frames) // 64)
    sub = frames[::step].astype(np.float32)
    still = sub.std(axis=0).max(axis=-1) < std_thresh
    still = cv2.morphologyEx(still.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return still.astype(bool)


def segment_at(rgb: np.ndarray, seed_uv, depth: float, K, exclude: np.ndarray | None = None,
               cfg: AutoMaskConfig | None = None) -> np.ndarray:
    """GrabCut of the object around ``seed_uv``; bool (H,W), all False when it fails."""
    cfg = cfg or AutoMaskConfig()
    h, w = rgb.shape[:2]
    empty = np.zeros((h, w), bool)
    u, v = float(seed_uv[0]), float(seed_uv[1])
    if not (np.isfinite(u) and np.isfinite(v)) or depth <= 0:
        return empty
    u, v = min(max(u, 0.0), w - 1.0), min(max(v, 0.0), h - 1.0)
    exclude = empty if exclude is None else exclude
    if exclude[int(v), int(u)]:                     # seed on the fingers: nearest free pixel
        free = np.argwhere(~exclude)
        if len(free) == 0:
            return empty
        j = np.argmin((free[:, 0] - v) ** 2 + (free[:, 1] - u) ** 2)
        v, u = float(free[j, 0]), float(free[j, 1])
    f = float(np.asarray(K, float).reshape(3, 3)[0, 0])
    r = float(np.clip(f * cfg.object_radius_m / depth, cfg.min_radius_px, cfg.max_radius_px))
    yy, xx = np.mgrid[:h, :w]
    d2 = (xx - u) ** 2 + (yy - v) ** 2
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[d2 <= r * r] = cv2.GC_PR_FGD
    border = np.zeros((h, w), bool)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    gc[border & (d2 > (2 * r) ** 2)] = cv2.GC_BGD
    gc[d2 <= cfg.seed_radius_px ** 2] = cv2.GC_FGD
    gc[exclude] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    try:
        cv2.grabCut(bgr, gc, None, bgd, fgd, cfg.iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return empty
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(fg)
    if n <= 1:
        return empty
    # component containing the seed, else the one nearest to it
    k = lab[int(v), int(u)]
    if k == 0:
        ys, xs = np.nonzero(lab)
        j = np.argmin((xs - u) ** 2 + (ys - v) ** 2)
        k = lab[ys[j], xs[j]]
    mask = lab == k
    if mask.sum() < cfg.min_area_px or mask.mean() > cfg.max_area_frac:
        return empty
    return mask


def auto_mask(rgb: np.ndarray, tcp_pose, T_tcp_camera, K, exclude: np.ndarray | None = None,
              cfg: AutoMaskConfig | None = None, aperture: float | None = None,
              table: TableModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the touched object in ``rgb`` (bool (H,W)) and the projected contact pixel (2,).

    With a ``table`` model and the ``aperture``: the non-table, non-gripper region nearest to the
    contact (TCP and both finger tips). Otherwise (or if that finds nothing): GrabCut at the TCP.
    """
    cfg = cfg or AutoMaskConfig()
    uv, z = project_contact(tcp_pose, T_tcp_camera, K, cfg.contact_offset)
    h, w = rgb.shape[:2]
    grip = np.zeros((h, w), bool) if exclude is None else exclude.copy()
    if aperture is not None:
        grip |= gripper_pixels(tcp_pose, T_tcp_camera, K, aperture, (h, w), cfg)
    if table is not None and np.isfinite(uv).all():
        r = max(float(aperture or 0.0), 0.0) / 2 + cfg.finger_half[0]
        pts = [project_contact(tcp_pose, T_tcp_camera, K, (sx * r, 0.0, 0.0))[0] for sx in (-1, 1)]
        contacts = np.array([uv, *pts], float)
        contacts = contacts[np.isfinite(contacts).all(axis=1)]
        mask = touched_region(rgb, table.is_table(rgb), grip, contacts, cfg)
        if mask.any():
            return mask, uv
    return segment_at(rgb, uv, z, K, grip, cfg), uv


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
