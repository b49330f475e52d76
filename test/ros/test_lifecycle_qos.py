"""Lifecycle transitions driven over DDS (the services `ros2 lifecycle set` calls), and every
subscription of the model nodes checked against the QoS the real drivers offer."""
import time

import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSCompatibility, QoSProfile,  # noqa: E402
                       ReliabilityPolicy, qos_check_compatible, qos_profile_sensor_data)

from hearing_hands_ros import ros_convert as rc  # noqa: E402
from hearing_hands_ros.nodes.common import INFO_QOS, LATCHED_QOS  # noqa: E402
from test_detector_node import SR, Harness as DetectorHarness, make_model  # noqa: E402
from test_predictor_node import NS, Harness as PredictorHarness, tap_path_msg  # noqa: E402


def _profile(reliability, durability, depth):
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=durability)


R, BE = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
VOL, TL = DurabilityPolicy.VOLATILE, DurabilityPolicy.TRANSIENT_LOCAL
#: What the drivers that feed each input offer (read from their sources).
DRIVERS = {
    'audio_stamped': {'audio_capture (ros-drivers, ros2)': _profile(R, VOL, 10),
                      'sim_robot': _profile(R, VOL, 100)},
    'audio_info': {'audio_capture (ros-drivers, ros2)': _profile(R, VOL, 1),
                   'a latched publisher': _profile(R, TL, 1)},
    'image': {'usb_cam / v4l2_camera (sensor data)': qos_profile_sensor_data,
              'realsense2_camera / image_transport (reliable)': _profile(R, VOL, 10)},
    'camera_info': {'usb_cam / v4l2_camera (sensor data)': qos_profile_sensor_data,
                    'realsense2_camera (reliable)': _profile(R, VOL, 10)},
    'joint_states': {'joint_state_broadcaster (ros2_control)': _profile(R, VOL, 10),
                     'joint_state_publisher': _profile(R, VOL, 10)},
    'planned_path': {'nav2 planner_server plan (latched)': _profile(R, TL, 1),
                     'a default publisher': _profile(R, VOL, 10)},
}


def _compatible(pub: QoSProfile, sub: QoSProfile) -> bool:
    """DDS request/offer matching on reliability and durability (the graph reports deadline and
    liveliness lease as 'Infinite', which rclpy's static check reads as set)."""
    sub = _profile(sub.reliability, sub.durability, 10)
    return qos_check_compatible(pub, sub)[0] != QoSCompatibility.ERROR


@pytest.mark.parametrize('which', ['detector', 'predictor'])
def test_every_subscription_matches_the_drivers(ros_domain, tmp_path, which):
    """Each input topic, as the running node subscribes it (read back from the DDS graph), is
    matched by every driver's offer; for audio_info one of the pair is enough."""
    if which == 'detector':
        h = DetectorHarness(ros_domain(64), {'model_path': str(make_model(tmp_path / 'd.onnx'))})
    else:
        from hearing_hands_ros.train.export_predictor import tiny_bundle
        h = PredictorHarness(ros_domain(75), {'model_path': str(tiny_bundle(tmp_path / 'p'))})
    try:
        name = h.node.get_name()
        checked = 0
        for topic, offers in DRIVERS.items():
            def subs():
                return [i for i in h.peer.get_subscriptions_info_by_topic('/' + topic)
                        if i.node_name == name]
            if not h.wait_for(lambda: subs(), 3.0):
                continue                                   # the node does not take this input
            for driver, offer in offers.items():
                assert any(_compatible(offer, s.qos_profile) for s in subs()), \
                    f'{name} does not hear {topic} from {driver}'
            checked += 1
        assert checked == (5 if which == 'detector' else 4)
    finally:
        h.close()


def test_detector_hears_audio_info_as_audio_capture_publishes_it(ros_domain, tmp_path):
    """Reliable, volatile, depth 1, republished: the detector takes the format and detects."""
    h = DetectorHarness(ros_domain(65), {'model_path': str(make_model(tmp_path / 'd.onnx')),
                                         'backend': 'cpu'}, audio_info_qos=INFO_QOS)
    try:
        h.wait_connected()
        assert h.wait_for(lambda: h.pub_info.get_subscription_count() > 0)
        end = time.monotonic() + 10.0
        while h.node.pipe.format is None and time.monotonic() < end:
            h.pub_info.publish(rc.audio_info_msg(SR))      # audio_capture republishes every 5 s
            time.sleep(0.2)
        assert h.node.pipe.format is not None and h.node.pipe.format.sample_rate == SR
        h.stream(0.8, impacts_s=(0.3,), realtime=False)
        assert h.wait_for(lambda: h.got['det'], 20.0)
    finally:
        h.close()


def test_detector_hears_a_latched_audio_info_sent_before_it_started(ros_domain, tmp_path):
    h = DetectorHarness(ros_domain(66), {'model_path': str(make_model(tmp_path / 'd.onnx')),
                                         'autostart': False})
    try:
        h.pub_info.publish(rc.audio_info_msg(SR))          # once, before the node subscribes
        time.sleep(0.2)
        assert h.change_state('configure') and h.change_state('activate')
        assert h.wait_for(lambda: h.node.pipe.format is not None, 10.0)
        assert h.node.pipe.format.sample_rate == SR
    finally:
        h.close()


@pytest.mark.timeout(120)
def test_detector_lifecycle_over_dds(ros_domain, tmp_path):
    """configure loads, activate answers, deactivate stops answering, cleanup frees, shutdown."""
    h = DetectorHarness(ros_domain(67), {'model_path': str(make_model(tmp_path / 'd.onnx')),
                                         'backend': 'cpu', 'autostart': False})
    try:
        assert h.lifecycle_state() == 'unconfigured' and h.node.bundle is None
        assert h.change_state('configure') and h.lifecycle_state() == 'inactive'
        assert h.node.bundle is not None and h.pub_audio.get_subscription_count() == 0
        assert h.change_state('activate') and h.lifecycle_state() == 'active'
        h.wait_connected()
        h.pub_info.publish(rc.audio_info_msg(SR))
        assert h.wait_for(lambda: h.node.pipe.format is not None, 10.0)
        h.stream(0.8, impacts_s=(0.3,), realtime=False)
        assert h.wait_for(lambda: h.got['det'], 20.0)
        assert h.change_state('deactivate') and h.lifecycle_state() == 'inactive'
        assert h.wait_for(lambda: h.pub_audio.get_subscription_count() == 0, 5.0)
        n = len(h.got['det'])
        h.stream(0.8, impacts_s=(0.3,), realtime=False)
        time.sleep(1.5)
        assert len(h.got['det']) == n                      # inactive: nothing answered
        assert h.change_state('cleanup') and h.lifecycle_state() == 'unconfigured'
        assert h.node.bundle is None and h.node.pipe is None
        assert h.change_state('configure') and h.change_state('activate')   # again, as new
        assert h.lifecycle_state() == 'active'
        assert h.diag_values()['lifecycle'] == 'active'
        assert h.wait_for(lambda: h.status_values().get('lifecycle') == 'active', 5.0)
    finally:
        h.close()


def test_predictor_lifecycle_over_dds(ros_domain, tmp_path):
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    model = tiny_bundle(tmp_path / 'p')
    h = PredictorHarness(ros_domain(74), {'model_path': str(model), 'backend': 'cpu',
                                          'autostart': False})
    try:
        assert h.lifecycle_state() == 'unconfigured' and h.node.planner is None
        assert h.change_state('configure') and h.node.planner is not None
        assert h.pub_path.get_subscription_count() == 0
        assert h.change_state('activate')
        h.wait_connected()
        h.send_image()
        start = 1_767_225_600 * NS
        assert h.wait_for(lambda: h.node._image is not None)
        h.pub_path.publish(tap_path_msg(start))
        assert h.wait_for(lambda: len(h.got['audio']) == 1)
        assert h.wait_for(lambda: h.got['info'])           # latched AudioInfo once active
        assert h.change_state('deactivate')
        assert h.wait_for(lambda: h.pub_path.get_subscription_count() == 0, 5.0)
        assert h.change_state('cleanup') and h.node.planner is None
        assert h.change_state('shutdown') and h.lifecycle_state() == 'finalized'
    finally:
        h.close()


def test_autostart_default_is_active(node_harness, tmp_path):
    from hearing_hands_ros.nodes.sounding_object_detector import SoundingObjectDetector
    h = node_harness(68, SoundingObjectDetector, {'model_path': str(make_model(tmp_path / 'd.onnx'))})
    assert h.lifecycle_state() == 'active' and h.node.bundle is not None


def test_info_pair_matches_both_publishers():
    """The pair ``subscribe_info`` creates: the volatile half hears audio_capture, the latched
    half a transient-local publisher's history."""
    assert _compatible(_profile(R, VOL, 1), INFO_QOS)
    assert not _compatible(_profile(R, VOL, 1), LATCHED_QOS)
    assert _compatible(_profile(R, TL, 1), LATCHED_QOS)
