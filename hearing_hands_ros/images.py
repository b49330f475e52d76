"""Image messages <-> uint8 RGB arrays, and pinhole camera geometry.

Conversion uses ``cv_bridge`` when it is importable (a robot with ROS 2 from apt) and
``rosbags.image`` otherwise; both work duck-typed on rclpy and rosbags messages. Every message is
validated first, so malformed images raise :class:`ImageError` with a clear reason instead of a
reshape error deep inside a converter. No ROS import at module level.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

try:  # pragma: no cover - depends on the machine
    from cv_bridge import CvBridge as _CvBridge
    _BRIDGE = _CvBridge()
except Exception:  # ImportError, or a broken ROS 1 shim
    _BRIDGE = None

# encoding -> (bytes per channel, channels)
ENCODINGS: dict[str, tuple[int, int]] = {
    'rgb8': (1, 3), 'bgr8': (1, 3), 'rgba8': (1, 4), 'bgra8': (1, 4),
    'mono8': (1, 1), '8UC1': (1, 1), '8UC3': (1, 3), 'mono16': (2, 1), '16UC1': (2, 1),
}


class ImageError(ValueError):
    """An image message cannot be converted."""


def _nbytes(data) -> int:
    if isinstance(data, np.ndarray):
        return data.nbytes
    try:
        return memoryview(data).nbytes
    except TypeError:
        return len(data)


def validate_image(msg: Any) -> tuple[int, int]:
    """Check a sensor_msgs/Image; returns (bytes per pixel, channels). Raises ImageError."""
    enc = msg.encoding
    if enc not in ENCODINGS:
        raise ImageError(f'unsupported image encoding {enc!r}; supported: {", ".join(ENCODINGS)}')
    bpc, ch = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageError(f'image has zero size ({w}x{h})')
    if step < w * bpc * ch:
        raise ImageError(f'image step {step} < width {w} x {bpc * ch} bytes per pixel ({enc})')
    n = _nbytes(msg.data)
    if n != step * h:
        raise ImageError(f'image data has {n} bytes, expected step {step} x height {h} = {step * h}'
                         f' ({"short" if n < step * h else "long"})')
    return bpc * ch, ch


def _as_u8(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).ravel()
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:
        return np.asarray(data, np.uint8)


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8, mono16; any row padding) ->
    ``(H, W, 3)`` uint8 RGB. mono16 is scaled by 255/65535."""
    bpp, _ = validate_image(msg)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    enc = {'8UC1': 'mono8', '8UC3': 'bgr8', '16UC1': 'mono16'}.get(msg.encoding, msg.encoding)
    data = _as_u8(msg.data)
    if step != w * bpp:                       # strip row padding; rosbags.image ignores step
        data = np.ascontiguousarray(data.reshape(h, step)[:, :w * bpp]).ravel()
    plain = SimpleNamespace(height=h, width=w, encoding=enc, step=w * bpp, data=data,
                            is_bigendian=int(getattr(msg, 'is_bigendian', 0)), header=None)
    try:
        if _BRIDGE is not None:  # pragma: no cover
            out = _BRIDGE.imgmsg_to_cv2(plain, 'rgb8')
        else:
            from rosbags.image import message_to_cvimage
            out = message_to_cvimage(plain, 'rgb8')
    except Exception as err:  # noqa: BLE001
        raise ImageError(f'cannot convert {msg.encoding!r} image to rgb8: {err}') from err
    return np.ascontiguousarray(out, dtype=np.uint8).reshape(h, w, 3)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png, ...) -> ``(H, W, 3)`` uint8 RGB."""
    data = _as_u8(msg.data)
    if data.size == 0:
        raise ImageError('compressed image has no data')
    if _BRIDGE is not None:  # pragma: no cover
        try:
            return np.ascontiguousarray(_BRIDGE.compressed_imgmsg_to_cv2(msg, 'rgb8'))
        except Exception as err:  # noqa: BLE001
            raise ImageError(f'cannot decode compressed image ({msg.format!r}): {err}') from err
    # IMREAD_COLOR always gives BGR; rosbags.image would misread grayscale PNGs.
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f'cannot decode compressed image (format {getattr(msg, "format", "?")!r})')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def msg_to_rgb(msg: Any) -> np.ndarray:
    """Image or CompressedImage -> ``(H, W, 3)`` uint8 RGB."""
    return compressed_to_rgb(msg) if hasattr(msg, 'format') else image_to_rgb(msg)


def rgb_to_image_msg_fields(arr: np.ndarray) -> dict:
    """uint8 ``(H, W, 3)`` -> rgb8, uint8 ``(H, W)`` -> mono8, uint16 ``(H, W)`` -> mono16 fields of
    a sensor_msgs/Image: dict(height, width, encoding, is_bigendian, step, data: bytes)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        enc = 'rgb8'
    elif a.ndim == 2 and a.dtype == np.uint8:
        enc = 'mono8'
    elif a.ndim == 2 and a.dtype == np.uint16:
        enc, a = 'mono16', a.astype('<u2')
    else:
        raise ImageError(f'cannot encode array of shape {a.shape} and dtype {a.dtype} '
                         '(expected uint8 (H,W,3), uint8 (H,W) or uint16 (H,W))')
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f'image has zero size {a.shape}')
    h, w = a.shape[:2]
    return dict(height=h, width=w, encoding=enc, is_bigendian=0,
                step=w * a.itemsize * (3 if a.ndim == 3 else 1), data=np.ascontiguousarray(a).tobytes())


def compress_rgb(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 90) -> dict:
    """uint8 RGB -> fields of a sensor_msgs/CompressedImage: dict(format, data: bytes)."""
    ext = {'jpeg': '.jpg', 'jpg': '.jpg', 'png': '.png'}[fmt]
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == '.jpg' else [])
    if not ok:
        raise ImageError(f'cannot encode {fmt}')
    return dict(format='jpeg' if ext == '.jpg' else 'png', data=buf.tobytes())


# ---------------------------------------------------------------------------------------------
# Geometry. Poses are (position (3,), quaternion (4,) xyzw); T_a_b maps b-frame points into a.
# ---------------------------------------------------------------------------------------------
def quat_to_matrix(q) -> np.ndarray:
    """Quaternion(s) (..., 4) xyzw -> rotation matrix/matrices (..., 3, 3)."""
    return Rotation.from_quat(np.asarray(q, dtype=np.float64)).as_matrix()


def matrix_to_quat(R) -> np.ndarray:
    """Rotation matrix/matrices (..., 3, 3) -> quaternion(s) (..., 4) xyzw with w >= 0."""
    q = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    return np.where(q[..., 3:4] < 0, -q, q)


def compose_poses(T_a_b, T_b_c) -> tuple[np.ndarray, np.ndarray]:
    """T_a_c = T_a_b * T_b_c, e.g. camera pose in world = compose(T_world_tcp, T_tcp_camera)."""
    pa, qa = np.asarray(T_a_b[0], float), np.asarray(T_a_b[1], float)
    pb, qb = np.asarray(T_b_c[0], float), np.asarray(T_b_c[1], float)
    ra = Rotation.from_quat(qa)
    return pa + ra.apply(pb), (ra * Rotation.from_quat(qb)).as_quat()


def invert_pose(T_a_b) -> tuple[np.ndarray, np.ndarray]:
    r = Rotation.from_quat(np.asarray(T_a_b[1], float)).inv()
    return -r.apply(np.asarray(T_a_b[0], float)), r.as_quat()


def intrinsics(width: int, height: int, vfov_deg: float = 70.0) -> np.ndarray:
    """Pinhole K (3, 3) with square pixels, principal point at the image centre."""
    f = 0.5 * height / np.tan(np.radians(vfov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)


def project_points(points_world, T_world_camera, K) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into the camera (optical frame: x right, y down, z forward).

    Args: points_world (N, 3) [m]; T_world_camera = (position (3,), quaternion xyzw (4,)), the
    camera pose in the world; K (3, 3) or 9 floats.
    Returns: pixels (N, 2) as (u, v) [px] (NaN for points with depth <= 0) and depth (N,) [m].
    """
    P = np.atleast_2d(np.asarray(points_world, dtype=np.float64))
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    R = quat_to_matrix(T_world_camera[1])
    pc = (P - np.asarray(T_world_camera[0], dtype=np.float64)) @ R      # = R^T (p - t)
    z = pc[:, 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        uv = (pc @ K.T)[:, :2] / z[:, None]
    uv[z <= 0] = np.nan
    return uv, z


def pixels_on_plane(uv, T_world_camera, K, z_world: float) -> np.ndarray:
    """Back-project pixels onto the horizontal plane z = ``z_world`` of the world frame.

    Args: uv (N, 2) [px]; T_world_camera as in ``project_points``; K (3, 3) or 9 floats.
    Returns: (N, 3) world points [m] (NaN where the ray does not meet the plane in front).
    """
    uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    rays = np.c_[uv, np.ones(len(uv))] @ np.linalg.inv(K).T @ quat_to_matrix(T_world_camera[1]).T
    o = np.asarray(T_world_camera[0], dtype=np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        s = (z_world - o[2]) / rays[:, 2]
    out = o + s[:, None] * rays
    out[~(s > 0)] = np.nan
    return out
