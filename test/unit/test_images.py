"""Unit tests of hearing_hands_ros.images (no ROS)."""
from types import SimpleNamespace

import numpy as np
import pytest

from hearing_hands_ros import images as I
from hearing_hands_ros.images import ImageError


def _rgb(h=6, w=5):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _msg(arr, encoding, pad=0, bigendian=0):
    h, w = arr.shape[:2]
    rows = arr.reshape(h, -1).view(np.uint8).reshape(h, -1)
    rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)
    return SimpleNamespace(height=h, width=w, encoding=encoding, is_bigendian=bigendian,
                           step=rows.shape[1], data=rows.tobytes())


@pytest.mark.parametrize('pad', [0, 3])
def test_color_encodings(pad):
    rgb = _rgb()
    alpha = np.full(rgb.shape[:2] + (1,), 200, np.uint8)
    cases = {'rgb8': rgb, 'bgr8': rgb[..., ::-1], 'rgba8': np.concatenate([rgb, alpha], 2),
             'bgra8': np.concatenate([rgb[..., ::-1], alpha], 2)}
    for enc, arr in cases.items():
        out = I.image_to_rgb(_msg(np.ascontiguousarray(arr), enc, pad))
        assert out.shape == rgb.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, rgb, err_msg=enc)


def test_mono_encodings():
    g = np.arange(30, dtype=np.uint8).reshape(6, 5)
    out = I.image_to_rgb(_msg(g, 'mono8'))
    np.testing.assert_array_equal(out, np.repeat(g[..., None], 3, 2))
    g16 = (np.arange(30) * 2000).astype(np.uint16).reshape(6, 5)
    out = I.image_to_rgb(_msg(g16.astype('<u2'), 'mono16', pad=2))
    np.testing.assert_allclose(out[..., 0], g16.astype(float) * 255 / 65535, atol=1)
    out_be = I.image_to_rgb(_msg(g16.astype('>u2'), 'mono16', bigendian=1))
    np.testing.assert_array_equal(out_be, out)


def test_rclpy_like_array_data():
    import array
    rgb = _rgb()
    m = _msg(rgb, 'rgb8')
    m.data = array.array('B', m.data)
    np.testing.assert_array_equal(I.image_to_rgb(m), rgb)


def test_image_errors():
    rgb = _rgb()
    with pytest.raises(ImageError, match='unsupported image encoding'):
        I.image_to_rgb(_msg(rgb, 'yuv422'))
    m = _msg(rgb, 'rgb8')
    with pytest.raises(ImageError, match='zero size'):
        I.image_to_rgb(SimpleNamespace(**{**vars(m), 'height': 0, 'data': b''}))
    with pytest.raises(ImageError, match='short'):
        I.image_to_rgb(SimpleNamespace(**{**vars(m), 'data': m.data[:-1]}))
    with pytest.raises(ImageError, match='long'):
        I.image_to_rgb(SimpleNamespace(**{**vars(m), 'data': m.data + b'\0'}))
    with pytest.raises(ImageError, match='step'):
        I.image_to_rgb(SimpleNamespace(**{**vars(m), 'step': 14, 'data': m.data[:14 * 6]}))


def test_fields_and_compressed_round_trip():
    rgb = _rgb(16, 24)
    f = I.rgb_to_image_msg_fields(rgb)
    assert (f['height'], f['width'], f['encoding'], f['step']) == (16, 24, 'rgb8', 72)
    np.testing.assert_array_equal(I.image_to_rgb(SimpleNamespace(**f)), rgb)
    assert I.rgb_to_image_msg_fields(rgb[..., 0])['encoding'] == 'mono8'
    assert I.rgb_to_image_msg_fields(rgb[..., 0].astype(np.uint16))['step'] == 48
    with pytest.raises(ImageError):
        I.rgb_to_image_msg_fields(rgb.astype(np.float32))
    c = I.compress_rgb(rgb, 'png')
    np.testing.assert_array_equal(I.msg_to_rgb(SimpleNamespace(**c)), rgb)
    smooth = np.tile(np.linspace(0, 255, 24, dtype=np.uint8)[None, :, None], (16, 1, 3))
    j = I.msg_to_rgb(SimpleNamespace(**I.compress_rgb(smooth, 'jpeg', 95)))
    assert np.abs(j.astype(int) - smooth).mean() < 3
    import cv2
    ok, gray_png = cv2.imencode('.png', rgb[..., 0])
    out = I.compressed_to_rgb(SimpleNamespace(format='png', data=gray_png.tobytes()))
    np.testing.assert_array_equal(out, np.repeat(rgb[..., :1], 3, 2))
    with pytest.raises(ImageError, match='no data'):
        I.compressed_to_rgb(SimpleNamespace(format='jpeg', data=b''))
    with pytest.raises(ImageError, match='cannot decode'):
        I.compressed_to_rgb(SimpleNamespace(format='jpeg', data=b'not an image'))


def test_geometry():
    q = np.array([0.1, -0.3, 0.2, 0.9])
    q /= np.linalg.norm(q)
    np.testing.assert_allclose(I.matrix_to_quat(I.quat_to_matrix(q)), q, atol=1e-12)
    T = (np.array([0.1, 0.2, 0.3]), q)
    inv = I.invert_pose(T)
    p, qq = I.compose_poses(T, inv)
    np.testing.assert_allclose(p, 0, atol=1e-12)
    np.testing.assert_allclose(np.abs(qq[3]), 1, atol=1e-12)
    K = I.intrinsics(128, 128, 70.0)
    # camera at (0, 0, 1) looking straight down (optical z = world -z): rotate pi about x
    T_wc = (np.array([0, 0, 1.0]), np.array([1.0, 0, 0, 0]))
    pts = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 2.0]])
    uv, depth = I.project_points(pts, T_wc, K)
    np.testing.assert_allclose(depth[:3], 1.0)
    np.testing.assert_allclose(uv[0], [64, 64])
    assert uv[1, 0] > 64 and abs(uv[1, 1] - 64) < 1e-9          # world +x -> image right
    assert uv[2, 1] < 64                                        # camera y = world -y: image up
    assert np.isnan(uv[3]).all() and depth[3] < 0
    np.testing.assert_allclose(uv[1, 0] - 64, K[0, 0] * 0.1)
