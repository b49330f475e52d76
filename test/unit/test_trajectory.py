"""Trajectory features: layout, resampling, velocities, and one clear error per bad path."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.trajectory import Trajectory, TrajectoryError


def line_path(n=11, duration=1.0, yaw_rate=0.5):
    t = np.linspace(0.0, duration, n)
    p = np.stack([0.1 * t, np.zeros(n), 0.3 - 0.2 * t], axis=1)          # 0.1 m/s in x, -0.2 in z
    q = Rotation.from_euler('z', (yaw_rate * t)[:, None]).as_quat()
    return Trajectory(t + 100.0, p, q)


def test_layout_shapes_and_values():
    traj = tr.validate(line_path())
    n = tr.n_frames_for(traj.duration, tail=0.5)
    f = tr.features(traj, n)
    assert f.shape == (n, tr.N_FEATURES) == (151, 18) and f.dtype == np.float32
    assert len(tr.FEATURE_LAYOUT) == tr.N_FEATURES
    np.testing.assert_allclose(f[50, :3], [0.05, 0, 0.2], atol=1e-6)            # t = 0.5 s
    np.testing.assert_allclose(f[10:90, 9:12], np.tile([0.1, 0, -0.2], (80, 1)), atol=1e-5)
    np.testing.assert_allclose(f[10:90, 12:15], np.tile([0, 0, 0.5], (80, 1)), atol=1e-5)
    R = Rotation.from_euler('z', 0.25).as_matrix()                                # t = 0.5 s
    np.testing.assert_allclose(f[50, 3:9], np.concatenate([R[:, 0], R[:, 1]]), atol=1e-5)
    # tail: pose held, speeds zero, inactive
    assert (f[101:, 17] == 0).all() and (f[:100, 17] == 1).all()
    np.testing.assert_allclose(f[140, :3], [0.1, 0, 0.1], atol=1e-6)
    assert np.abs(f[101:, 9:15]).max() == 0
    np.testing.assert_allclose(f[:, 15], tr.DEFAULT_APERTURE)


def test_aperture_track_and_stamps_ns():
    base = line_path()
    stamps = (base.times * 1e9).astype(np.int64)
    traj = tr.validate(Trajectory.from_stamps_ns(stamps, base.positions, base.orientations,
                                                 origin_ns=int(100e9)))
    assert traj.start == pytest.approx(0.0)
    f = tr.features(traj, 101, aperture_track=(np.array([0.0, 1.0]), np.array([0.08, 0.0])))
    assert f[0, 15] == pytest.approx(0.08) and f[100, 15] == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(f[20:80, 16], -0.08, atol=1e-5)


@pytest.mark.parametrize('mutate, message', [
    (lambda t: Trajectory(t.times[:0], t.positions[:0], t.orientations[:0]), 'empty'),
    (lambda t: Trajectory(t.times[:1], t.positions[:1], t.orientations[:1]), 'single pose'),
    (lambda t: Trajectory(t.times, np.where(np.arange(11)[:, None] == 3, np.nan, t.positions),
                          t.orientations), 'NaN or inf .*pose 3'),
    (lambda t: Trajectory(t.times, t.positions, np.full_like(t.orientations, np.inf)), 'orientations'),
    (lambda t: Trajectory(t.times[::-1].copy(), t.positions, t.orientations), 'not sorted'),
    (lambda t: Trajectory(np.zeros(11), t.positions, t.orientations), 'duplicate stamps'),
    (lambda t: Trajectory(t.times * 20, t.positions, t.orientations), 'longer than the limit'),
    (lambda t: Trajectory(t.times, t.positions, t.orientations, frame_id='map'), "frame id 'map'"),
    (lambda t: Trajectory(t.times, t.positions, np.zeros_like(t.orientations)), 'zero quaternion'),
    (lambda t: Trajectory(t.times, t.positions[:5], t.orientations), '5 positions'),
])
def test_bad_paths_raise_one_clear_error(mutate, message):
    with pytest.raises(TrajectoryError, match=message):
        tr.validate(mutate(line_path()), frame_id='world', max_duration=8.0)


def test_quaternions_are_normalised():
    t = line_path()
    t.orientations = t.orientations * 3.0
    f = tr.features(tr.validate(t), 50)
    R6 = f[:, 3:9]
    np.testing.assert_allclose(np.linalg.norm(R6[:, :3], axis=1), 1.0, atol=1e-5)


def test_plan_apertures_at_the_path_stamps():
    """The gripper's plan is sampled at the path's pose stamps, held beyond its ends."""
    plan_t = np.array([10, 20, 30], np.int64) * 1_000_000
    got = tr.plan_apertures(np.array([0, 15, 30, 40]) * 1_000_000, plan_t, [0.08, 0.04, 0.0])
    np.testing.assert_allclose(got, [0.08, 0.06, 0.0, 0.0])
    with pytest.raises(tr.TrajectoryError, match='gripper plan'):
        tr.plan_apertures([0], plan_t, [0.1])
