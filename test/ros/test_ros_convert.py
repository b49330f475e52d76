"""ros_convert: message builders, and a real rclpy publisher -> subscriber round trip (loopback DDS)."""
import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('audio_common_msgs.msg')
pytest.importorskip('hearing_hands_msgs.msg')

from hearing_hands_ros import audio as A  # noqa: E402
from hearing_hands_ros import images as I  # noqa: E402
from hearing_hands_ros import ros_convert as rc  # noqa: E402
from hearing_hands_ros.events import ContactEvent  # noqa: E402

NS = 10**9
T0 = 1_767_225_600 * NS + 123_456_789


def test_builders_without_network():
    assert rc.stamp_to_ns(rc.ns_to_stamp(T0)) == T0
    info = rc.audio_info_msg(16000)
    assert (info.channels, info.sample_rate, info.sample_format, info.coding_format, info.bitrate) == \
        (1, 16000, 'S16LE', 'wave', 256000)
    x = np.linspace(-0.5, 0.5, 512, dtype=np.float32)
    t, y = rc.audio_from_msg(rc.audio_chunk_msg(x, T0), A.AudioFormat.from_info(info))
    assert t == T0
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    cam = dict(width=16, height=12, K=I.intrinsics(16, 12).ravel(), D=[0.0] * 5, frame_id='cam')
    ci = rc.camera_info_msg(cam, T0)
    assert ci.width == 16 and ci.p[2] == 8.0 and ci.header.frame_id == 'cam'
    js = rc.joint_state_msg(['gripper_aperture'], [0.03], T0)
    assert list(js.position) == [0.03]
    t, p, q = rc.pose_from_msg(rc.pose_msg([1, 2, 3], [0, 0, 0, 1], T0))
    assert t == T0 and p.tolist() == [1, 2, 3]
    mask = rc.image_msg(np.eye(4, dtype=np.uint8), T0)
    assert mask.encoding == 'mono8' and mask.step == 4


def contact_events():
    """Two predicted contacts: an impact on wood, then a slide with no known position."""
    return [ContactEvent(time=0.4125, time_std=0.012, probability=0.93, peak_db=-17.5, kind='impact',
                         material='wood', material_probs={'wood': 0.8, 'metal': 0.15, 'ceramic': 0.05},
                         position=np.array([0.31, -0.02, 0.054])),
            ContactEvent(time=1.25, time_std=0.05, probability=0.4, peak_db=-38.25, kind='slide',
                         material='metal', material_probs={'metal': 0.55, 'wood': 0.45}, duration=0.6)]


def f32(x) -> float:
    """``x`` at the precision of a float32 message field."""
    return float(np.float32(x))


def assert_same_events(got, want):
    """Equal up to float32 (the message's precision); positions exactly (float64 in the message)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g.kind, g.material, list(g.material_probs)) == (w.kind, w.material, list(w.material_probs))
        for name in ('time', 'time_std', 'probability', 'peak_db', 'duration'):
            assert f32(getattr(g, name)) == f32(getattr(w, name)), name
        assert [f32(v) for v in g.material_probs.values()] == [f32(v) for v in w.material_probs.values()]
        np.testing.assert_array_equal(g.position, w.position)


def test_contact_events_round_trip():
    events = contact_events()
    msg = rc.contact_events_msg(events, T0, 'world', p_contact=0.96, peak_db=-18.0)
    assert msg.header.frame_id == 'world' and rc.stamp_to_ns(msg.header.stamp) == T0
    assert [e.kind for e in msg.events] == [msg.events[0].KIND_IMPACT, msg.events[0].KIND_SLIDE]
    assert rc.stamp_to_ns(msg.events[0].stamp) == T0 + 412_500_000
    assert list(msg.events[1].material_names) == ['metal', 'wood']
    start, frame, p_contact, peak_db, got = rc.contact_events_from_msg(msg)
    assert (start, frame) == (T0, 'world')
    assert (f32(p_contact), peak_db) == (f32(0.96), -18.0)
    assert_same_events(got, events)
    assert np.isnan(got[1].position).all()
    empty = rc.contact_events_msg([], T0, 'world', p_contact=0.0, peak_db=-60.0)
    assert rc.contact_events_from_msg(empty)[2:] == (0.0, -60.0, [])


def test_contact_events_reject_unknown_kinds():
    bad = contact_events()[:1]
    bad[0].kind = 'squeak'
    with pytest.raises(ValueError, match='squeak'):
        rc.contact_events_msg(bad, T0, 'world', 1.0, -10.0)
    msg = rc.contact_events_msg(contact_events(), T0, 'world', 1.0, -10.0)
    msg.events[0].kind = 7
    with pytest.raises(ValueError, match='kind code 7'):
        rc.contact_events_from_msg(msg)
    msg = rc.contact_events_msg(contact_events(), T0, 'world', 1.0, -10.0)
    msg.events[0].material_probs = [1.0]
    with pytest.raises(ValueError, match='3 material names but 1'):
        rc.contact_events_from_msg(msg)


def test_gripper_plan_round_trip_and_errors():
    times = T0 + np.array([0, 250_000_000, 1_500_000_000], np.int64)
    msg = rc.gripper_plan_msg(times, [0.08, 0.04, 0.0], T0)
    assert list(msg.joint_names) == ['gripper_aperture'] and rc.stamp_to_ns(msg.header.stamp) == T0
    assert msg.points[2].time_from_start.sec == 1 and msg.points[2].time_from_start.nanosec == 500_000_000
    stamp, got_t, got_a = rc.gripper_plan_from_msg(msg, 'gripper_aperture')
    assert stamp == T0 and (got_t == times).all()
    np.testing.assert_allclose(got_a, [0.08, 0.04, 0.0])
    with pytest.raises(ValueError, match='names no joint'):
        rc.gripper_plan_from_msg(msg, 'finger_joint')
    msg.points[1].positions = []
    with pytest.raises(ValueError, match='without a position'):
        rc.gripper_plan_from_msg(msg, 'gripper_aperture')
    msg = rc.gripper_plan_msg(times[::-1], [0.08, 0.04, float('nan')], T0)
    with pytest.raises(ValueError, match='non-finite|out of order'):
        rc.gripper_plan_from_msg(msg, 'gripper_aperture')


def test_pubsub_round_trip(ros_domain):
    ros_domain(73)
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    from audio_common_msgs.msg import AudioDataStamped
    from hearing_hands_msgs.msg import ContactEventArray
    from nav_msgs.msg import Path
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    samples = rng.uniform(-0.8, 0.8, 512).astype(np.float32)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    times = T0 + np.arange(5) * 100_000_000
    pos = rng.normal(size=(5, 3))
    quat = np.tile([0, 0, 0, 1.0], (5, 1))

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=73)
    try:
        node = rclpy.create_node('hh_ros_convert_test', context=ctx)
        got = {}
        node.create_subscription(AudioDataStamped, 'audio_stamped', lambda m: got.setdefault('audio', m),
                                 qos_profile_sensor_data)
        node.create_subscription(Image, 'image', lambda m: got.setdefault('image', m), qos_profile_sensor_data)
        node.create_subscription(Path, 'planned_path', lambda m: got.setdefault('path', m), 10)
        node.create_subscription(ContactEventArray, 'predicted_contact_events',
                                 lambda m: got.setdefault('events', m), 10)
        pubs = dict(audio=node.create_publisher(AudioDataStamped, 'audio_stamped', 10),
                    image=node.create_publisher(Image, 'image', 10),
                    path=node.create_publisher(Path, 'planned_path', 10),
                    events=node.create_publisher(ContactEventArray, 'predicted_contact_events', 10))
        msgs = dict(audio=rc.audio_chunk_msg(samples, T0), image=rc.image_msg(rgb, T0),
                    path=rc.path_msg(times, pos, quat),
                    events=rc.contact_events_msg(contact_events(), T0, 'world', 0.96, -18.0))
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        deadline = time.monotonic() + 10
        while len(got) < len(pubs) and time.monotonic() < deadline:
            for k, pub in pubs.items():
                if k not in got:
                    pub.publish(msgs[k])
            ex.spin_once(timeout_sec=0.05)
        assert set(got) == set(pubs), got.keys()
        t, y = rc.audio_from_msg(got['audio'], A.AudioFormat())
        assert t == T0
        np.testing.assert_allclose(y, samples, atol=1 / 32768)
        assert rc.stamp_to_ns(got['image'].header.stamp) == T0
        np.testing.assert_array_equal(I.image_to_rgb(got['image']), rgb)
        tt, pp, qq, frame = rc.path_from_msg(got['path'])
        np.testing.assert_array_equal(tt, times)
        np.testing.assert_allclose(pp, pos)
        np.testing.assert_allclose(qq, quat)
        assert frame == 'world' and rc.stamp_to_ns(got['path'].header.stamp) == times[0]
        start, frame, _, _, events = rc.contact_events_from_msg(got['events'])
        assert (start, frame) == (T0, 'world')
        assert_same_events(events, contact_events())
        ex.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
