"""sounding_object_detector on real DDS: a small exported ONNX model, synthetic camera + microphone
streams published with the drivers' QoS, detections/mask/debug image/diagnostics received."""
import os
import time

import numpy as np
import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

rclpy = pytest.importorskip('rclpy')
from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from hearing_hands_ros import ros_convert as rc  # noqa: E402
from hearing_hands_ros.models.detector import (DetectorConfig, SoundingObjectDetector,  # noqa: E402
                                               export_onnx)
from hearing_hands_ros.nodes.common import AUDIO_QOS, LATCHED_QOS, SENSOR_QOS  # noqa: E402
from node_harness import NodeHarness  # noqa: E402

SR, CHUNK = 16000, 512


def make_model(path, look=False, **kw):
    """A small untrained detector bundle; with ``look``, a look match attached as ``export
    look-match`` attaches one."""
    import argparse

    import torch

    from hearing_hands_ros.models.look_match import N_LOOK, LookConfig, LookMatch, save_checkpoint
    from hearing_hands_ros.train import export_look_match
    torch.manual_seed(0)
    cfg = DetectorConfig(num_slots=4, dim=32, embed=16, image_size=32, decoder_size=16, **kw)
    onnx = export_onnx(SoundingObjectDetector(cfg).eval(), path)
    if look:
        net = LookMatch(LookConfig())
        rng = np.random.default_rng(0)
        net.set_stats(rng.normal(size=(32, LookConfig().n_sound)).astype(np.float32),
                      rng.normal(size=(32, N_LOOK)).astype(np.float32))
        save_checkpoint(path.with_name('look.pt'), net, weight=0.5)
        export_look_match.run(argparse.Namespace(checkpoint=str(path.with_name('look.pt')),
                                                 detector=str(onnx), weight=None))
    return onnx


def scene_image(h=96, w=128):
    img = np.full((h, w, 3), (150, 120, 90), np.uint8)
    img[20:50, 30:70] = (40, 80, 200)
    img[55:85, 70:110] = (200, 60, 60)
    return img


class Harness(NodeHarness):
    """The detector node + a 'robot' node publishing/receiving (``node_harness.NodeHarness``)."""

    def __init__(self, domain_id: int, params: dict, audio_info_qos=LATCHED_QOS):
        # A loaded test machine may drop some best-effort camera frames (as a real subscriber
        # would); pairing tolerance wide enough that a few lost frames do not lose the event.
        from hearing_hands_ros.nodes.sounding_object_detector import SoundingObjectDetector as N
        super().__init__(domain_id, N, {'max_frame_age_s': 0.5, **params}, peer='fake_robot')
        self.robot = self.peer
        self.pub_img = self.robot.create_publisher(Image, 'image', SENSOR_QOS)
        self.pub_audio = self.robot.create_publisher(AudioDataStamped, 'audio_stamped', AUDIO_QOS)
        self.pub_info = self.robot.create_publisher(AudioInfo, 'audio_info', audio_info_qos)
        self.pub_cam = self.robot.create_publisher(CameraInfo, 'camera_info', SENSOR_QOS)
        self.pub_joints = self.robot.create_publisher(JointState, 'joint_states', SENSOR_QOS)
        self.pub_pose = self.robot.create_publisher(PoseStamped, 'gripper_pose', SENSOR_QOS)
        self.got = {'det': [], 'mask': [], 'debug': [], 'diag': self.diagnostics}
        self.robot.create_subscription(Detection2DArray, 'sounding_objects',
                                       lambda m: self.got['det'].append((m, time.monotonic())), 10)
        self.robot.create_subscription(Image, 'sounding_object_mask',
                                       lambda m: self.got['mask'].append(m), 10)
        self.robot.create_subscription(Image, 'sounding_object_detector/debug_image',
                                       lambda m: self.got['debug'].append(m), 10)

    def now_ns(self) -> int:
        return self.robot.get_clock().now().nanoseconds

    def wait_connected(self, timeout=10.0):
        ok = self.wait_for(lambda: self.pub_audio.get_subscription_count() > 0
                           and self.pub_img.get_subscription_count() > 0
                           and self.robot.count_publishers('sounding_objects') > 0, timeout)
        assert ok, 'no DDS discovery between the test and the node'
        time.sleep(0.3)

    def stream(self, seconds: float, impacts_s=(), t0_ns=None, image=None, realtime=True):
        """Publish camera (30 Hz) + audio chunks (512 samples) for ``seconds``; impacts at the given
        offsets [s]. Returns (t0_ns, onset stamps [ns])."""
        t0_ns = self.now_ns() if t0_ns is None else t0_ns
        n = int(seconds * SR)
        rng = np.random.default_rng(0)
        x = rng.normal(0, 1e-3, n).astype(np.float32)
        for s in impacts_s:
            k = int(s * SR)
            t = np.arange(n - k) / SR
            x[k:] += (0.5 * np.exp(-t / 0.05) * np.sin(2 * np.pi * 1800 * t)).astype(np.float32)
        image = scene_image() if image is None else image
        next_frame = 0.0
        start = time.monotonic()
        for c in range(0, n - CHUNK + 1, CHUNK):
            t_chunk = c / SR
            while next_frame <= t_chunk + CHUNK / SR:
                self.pub_img.publish(rc.image_msg(image, t0_ns + int(next_frame * 1e9)))
                next_frame += 1 / 30
            if realtime:   # a driver publishes a chunk once its last sample was captured
                delay = start + (c + CHUNK) / SR - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.pub_audio.publish(rc.audio_chunk_msg(x[c:c + CHUNK], t0_ns + int(t_chunk * 1e9)))
        return t0_ns, [t0_ns + int(s * 1e9) for s in impacts_s]


@pytest.fixture
def harness(tmp_path):
    model = make_model(tmp_path / 'det.onnx', look=True)
    h = Harness(61, {'model_path': str(model), 'backend': 'cpu'})
    yield h
    h.close()


def test_detects_sound_events_end_to_end(harness):
    h = harness
    h.wait_connected()
    h.pub_info.publish(rc.audio_info_msg(SR))
    # the sound world's intrinsics, for 128 px: the node rescales them to the 96 x 128 frames
    K = [91.4, 0.0, 63.5, 0.0, 91.4, 63.5, 0.0, 0.0, 1.0]
    h.pub_cam.publish(rc.camera_info_msg({'width': 128, 'height': 128, 'K': K}, h.now_ns()))
    h.pub_joints.publish(rc.joint_state_msg(['gripper_aperture'], [0.03], h.now_ns()))
    assert h.wait_for(lambda: h.node.pipe.K is not None and h.node.pipe.aperture == pytest.approx(0.03), 10.0)
    t0, onsets = h.stream(1.6, impacts_s=(0.5, 1.1))
    assert h.wait_for(lambda: len(h.got['det']) >= 2 and len(h.got['mask']) >= 2, 30.0), h.diag_values()
    stamps = [rc.stamp_to_ns(m.header.stamp) for m, _ in h.got['det']]
    for want in onsets:       # header stamp = onset time (10 ms), one detection array per onset
        assert min(abs(s - want) for s in stamps) < 10_000_000
    det, _ = h.got['det'][0]
    assert det.header.frame_id == 'wrist_camera_optical'
    scores = [d.results[0].hypothesis.score for d in det.detections]
    assert len(scores) >= 1 and sum(scores) <= 1.0 + 1e-5 and scores == sorted(scores, reverse=True)
    for d in det.detections:  # boxes in camera pixels (96 x 128 frame)
        assert 0 <= d.bbox.center.position.x <= 128 and 0 <= d.bbox.center.position.y <= 96
        assert 0 < d.bbox.size_x <= 128 and 0 < d.bbox.size_y <= 96
    mask = h.got['mask'][0]
    assert (mask.encoding, mask.height, mask.width) == ('mono8', 96, 128)
    assert mask.header.stamp == det.header.stamp
    assert h.wait_for(lambda: h.got['debug'], 10.0)
    assert h.got['debug'][0].encoding == 'rgb8'
    assert h.wait_for(lambda: any(kv.key == 'backend' and kv.value == 'cpu'
                                  for m in h.got['diag'] for s in m.status for kv in s.values), 10.0)
    v = h.diag_values()
    assert int(v['events']) == 2 and int(v['dropped_events']) == 0
    assert v['look_match'].endswith('det_look.onnx') and v['fingers'].startswith('cut out')
    # the two coloured objects of the scene are the candidates (automatic segments; the fingers
    # are cut out of them), boxes in camera pixels inside the objects: x 30..70, y 20..50 and
    # x 70..110, y 55..85
    boxes = sorted((d.bbox.center.position.x - d.bbox.size_x / 2, d.bbox.center.position.y - d.bbox.size_y / 2,
                    d.bbox.center.position.x + d.bbox.size_x / 2, d.bbox.center.position.y + d.bbox.size_y / 2)
                   for d in det.detections)
    assert len(boxes) == 2
    for (x0, y0, x1, y1), (ox0, oy0, ox1, oy1) in zip(boxes, [(30, 20, 70, 50), (70, 55, 110, 85)]):
        assert ox0 - 2 <= x0 < x1 <= ox1 + 2 and oy0 - 2 <= y0 < y1 <= oy1 + 2
    assert float(v['model.p99_ms']) > 0          # latency is reported (speed lives in bench/)


def test_no_model_stays_unconfigured_with_error_diagnostics(tmp_path):
    """A missing model fails configure: the node lives on, unconfigured, ERROR on /diagnostics,
    subscribed to nothing; with model_path fixed, configure + activate over DDS bring it up."""
    h = Harness(62, {'model_path': str(tmp_path / 'missing.onnx')})
    try:
        v = h.diag_values()
        assert v['level'] == h.node.diag.ERROR and 'not found' in v['message']
        assert v['backend'] == 'none' and v['lifecycle'] == 'unconfigured'
        assert h.wait_for(lambda: (st := h.last_status()) is not None and st.level == st.ERROR)
        assert h.lifecycle_state() == 'unconfigured'
        assert h.pub_audio.get_subscription_count() == 0
        h.node.set_parameters([Parameter('model_path', value=str(make_model(tmp_path / 'm.onnx')))])
        assert h.change_state('configure') and h.change_state('activate')
        assert h.lifecycle_state() == 'active' and h.diag_values()['level'] == h.node.diag.OK
        assert h.wait_for(lambda: h.pub_audio.get_subscription_count() > 0)
    finally:
        h.close()
