"""contact_sound_predictor on real DDS with a small real exported ONNX model: a camera frame and a
planned path in, predicted audio (S16LE, stamped at the path start), AudioInfo (latched), contact
events, contact markers and diagnostics out."""
import os
import time

import numpy as np
import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

rclpy = pytest.importorskip('rclpy')
from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from hearing_hands_msgs.msg import ContactEventArray  # noqa: E402
from nav_msgs.msg import Path as PathMsg  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from hearing_hands_ros import audio as A  # noqa: E402
from hearing_hands_ros import ros_convert as rc  # noqa: E402
from hearing_hands_ros.events import ContactEvent  # noqa: E402
from hearing_hands_ros.nodes.common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402
from node_harness import NodeHarness  # noqa: E402

NS = 1_000_000_000


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    return tiny_bundle(tmp_path_factory.mktemp('model') / 'contact_sound_predictor')


class Harness(NodeHarness):
    """The predictor node + a 'planner' node publishing/receiving (``node_harness.NodeHarness``)."""

    def __init__(self, domain_id: int, params: dict):
        from hearing_hands_ros.nodes.contact_sound_predictor import ContactSoundPredictor
        super().__init__(domain_id, ContactSoundPredictor, params, peer='fake_planner')
        self.robot = self.peer
        self.pub_img = self.robot.create_publisher(Image, 'image', SENSOR_QOS)
        self.pub_cam = self.robot.create_publisher(CameraInfo, 'camera_info', SENSOR_QOS)
        self.pub_path = self.robot.create_publisher(PathMsg, 'planned_path', RELIABLE_QOS)
        self.got = {'audio': [], 'info': [], 'markers': [], 'events': [], 'diag': self.diagnostics}
        self.robot.create_subscription(ContactEventArray, 'predicted_contact_events',
                                       lambda m: self.got['events'].append(m), 10)
        self.robot.create_subscription(AudioDataStamped, 'predicted_audio',
                                       lambda m: self.got['audio'].append(m), 10)
        self.robot.create_subscription(AudioInfo, 'predicted_audio_info',
                                       lambda m: self.got['info'].append(m), LATCHED_QOS)
        self.robot.create_subscription(MarkerArray, 'predicted_contacts',
                                       lambda m: self.got['markers'].append(m), 10)

    def wait_connected(self):
        assert self.wait_for(lambda: self.pub_path.get_subscription_count() > 0
                             and self.pub_img.get_subscription_count() > 0)

    def send_image(self, t_ns=0):
        rgb = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
        self.pub_img.publish(rc.image_msg(rgb, t_ns))


def tap_path_msg(start_ns, duration=1.2, n=25, frame='world'):
    t = np.linspace(0.0, duration, n)
    pos = np.stack([np.zeros(n), np.zeros(n), 0.15 - 0.1 * np.sin(np.pi * t / duration)], 1)
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    return rc.path_msg(start_ns + (t * NS).astype(np.int64), pos, quat, frame_id=frame)


def test_path_in_predicted_audio_out(ros_domain, model, tmp_path):
    ros_domain(70)
    h = Harness(70, {'model_path': str(model), 'backend': 'cpu', 'wav_output_dir': str(tmp_path / 'wav')})
    try:
        h.wait_connected()
        assert h.wait_for(lambda: h.got['info'])                    # latched AudioInfo
        info = h.got['info'][0]
        assert (info.sample_rate, info.channels, info.sample_format, info.coding_format) == \
            (16000, 1, 'S16LE', 'wave')
        for _ in range(5):
            h.send_image()
            time.sleep(0.05)
        start = 1_767_225_600 * NS + 123_456_789
        h.pub_path.publish(tap_path_msg(start))
        assert h.wait_for(lambda: h.got['audio'] and h.got['markers'])
        msg = h.got['audio'][0]
        assert rc.stamp_to_ns(msg.header.stamp) == start
        fmt = A.AudioFormat.from_info(info)
        x = A.decode(msg.audio.data, fmt)
        frames = int(np.ceil(1.7 * 100 - 1e-9)) + 1
        assert x.shape == ((frames - 1) * 160, 1)
        markers = h.got['markers'][0].markers
        assert markers[0].action == markers[0].DELETEALL
        for m in markers[1:]:
            assert m.header.frame_id == 'world' and rc.stamp_to_ns(m.header.stamp) >= start
        assert h.wait_for(lambda: list((tmp_path / 'wav').glob('predicted_*.wav')))
        assert h.wait_for(lambda: h.last_status() is not None and any(
            kv.key == 'predictions' and kv.value == '1' for kv in h.last_status().values), 5)
        st = h.last_status()
        assert st.level == st.OK, st.message
        keys = {kv.key for kv in st.values}
        assert {'backend', 'steps', 'inference.p50_ms'} <= keys
    finally:
        h.close()


EVENTS = [ContactEvent(time=0.6, time_std=0.01, probability=0.9, peak_db=-20.0, kind='impact',
                       material='wood', material_probs={'wood': 0.7, 'metal': 0.3},
                       position=np.array([0.0, 0.0, 0.05])),
          ContactEvent(time=0.9, time_std=0.03, probability=0.25, peak_db=-45.0, kind='slide',
                       material='metal', material_probs={'metal': 0.6, 'wood': 0.4},
                       position=np.array([0.01, 0.0, 0.05]), duration=0.2)]


def test_path_in_contact_events_out(ros_domain, model):
    """A prediction that carries contact events is published on predicted_contact_events (stamped
    at the path start, in the path's frame) and drawn as one marker per event."""
    ros_domain(86)
    h = Harness(86, {'model_path': str(model), 'backend': 'cpu'})
    try:
        predict = h.node.planner.predict

        def predict_with_events(*args, **kwargs):
            preds = predict(*args, **kwargs)
            for pred in preds:
                pred.events, pred.p_contact = EVENTS, 0.925
            return preds

        h.node.planner.predict = predict_with_events
        h.wait_connected()
        for _ in range(5):
            h.send_image()
            time.sleep(0.05)
        start = 1_767_225_600 * NS + 987_654_321
        h.pub_path.publish(tap_path_msg(start))
        assert h.wait_for(lambda: h.got['events'] and h.got['markers'] and h.got['audio'])
        t0, frame, p_contact, peak_db, events = rc.contact_events_from_msg(h.got['events'][0])
        assert (t0, frame) == (start, 'world')
        assert p_contact == pytest.approx(0.925) and np.isfinite(peak_db)
        assert [(e.kind, e.material) for e in events] == [('impact', 'wood'), ('slide', 'metal')]
        assert [e.time for e in events] == pytest.approx([0.6, 0.9])
        assert rc.stamp_to_ns(h.got['events'][0].events[0].stamp) == start + 600_000_000
        spheres = h.got['markers'][0].markers[1:]
        assert len(spheres) == 2
        assert [rc.stamp_to_ns(m.header.stamp) for m in spheres] == [start + 600_000_000, start + 900_000_000]
        assert spheres[0].color.a > spheres[1].color.a            # the likelier contact is more opaque
        assert spheres[0].scale.x > spheres[1].scale.x            # and the louder one larger
        assert spheres[0].pose.position.z == pytest.approx(0.05)
    finally:
        h.close()
