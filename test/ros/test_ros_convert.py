"""ros_convert: message builders, and a real rclpy publisher -> subscriber round trip (loopback DDS)."""
import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('audio_common_msgs.msg')

from hearing_hands_ros import audio as A  # noqa: E402
from hearing_hands_ros import images as I  # noqa: E402
from hearing_hands_ros import ros_convert as rc  # noqa: E402

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


def test_pubsub_round_trip(ros_domain):
    ros_domain(73)
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    from audio_common_msgs.msg import AudioDataStamped
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
        pubs = dict(audio=node.create_publisher(AudioDataStamped, 'audio_stamped', 10),
                    image=node.create_publisher(Image, 'image', 10),
                    path=node.create_publisher(Path, 'planned_path', 10))
        msgs = dict(audio=rc.audio_chunk_msg(samples, T0), image=rc.image_msg(rgb, T0),
                    path=rc.path_msg(times, pos, quat))
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            for k, pub in pubs.items():
                if k not in got:
                    pub.publish(msgs[k])
            ex.spin_once(timeout_sec=0.05)
        assert set(got) == {'audio', 'image', 'path'}, got.keys()
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
        ex.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
