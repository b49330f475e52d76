"""Live equals offline, on DDS: a recorded sound-world episode published message by message, in
stamp order and in real time, to the real ``sounding_object_detector`` node (shipped model, look
match, contact rule, sound memory) gets, onset by onset, the top detection that the same
recording replayed through the node's pipeline without DDS gets (``eval.detector.replay_episode``,
which the unit tests tie to ``evaluate detector``'s answers)."""
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')
from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from hearing_hands_ros import ros_convert as rc  # noqa: E402
from hearing_hands_ros.nodes.common import AUDIO_QOS, LATCHED_QOS, SENSOR_QOS  # noqa: E402

CHUNK = 512


def _offline(ep):
    from hearing_hands_ros import runtime
    from hearing_hands_ros.detector_pipeline import DetectorPipeline, PipelineConfig
    from hearing_hands_ros.eval.detector import replay_episode
    from hearing_hands_ros.models.detector import DetectorConfig
    from hearing_hands_ros.models.look_match import ContactRule, LookConfig, load_look_match
    from hearing_hands_ros.paths import model_path
    b = runtime.load_bundle(model_path('sounding_object_detector.onnx'), 'detector')
    look, weight = load_look_match(b)
    pipe = DetectorPipeline(b, DetectorConfig.from_dict(b.meta['config']), PipelineConfig(), look,
                            weight, LookConfig.from_dict(look.meta['config']),
                            ContactRule.from_meta(b.meta['look_match']))
    return replay_episode(ep, pipe, CHUNK)


def _messages(ep):
    """(stamp, topic, message) of the whole episode, in stamp order (frames before the audio
    chunk of the same stamp, as ``replay_episode`` feeds them)."""
    sr, out = int(ep.sample_rate), []
    info = ep.camera_info
    for t, img in zip(ep.image_stamps_ns, ep.images):
        out.append((int(t), 0, 'camera_info', rc.camera_info_msg(info, int(t))))
        out.append((int(t), 0, 'image', rc.image_msg(img, int(t))))
    for t, p, q in zip(ep.pose_stamps_ns, ep.positions, ep.orientations):
        out.append((int(t), 1, 'gripper_pose', rc.pose_msg(p, q, int(t))))
    for t, a in zip(ep.aperture_stamps_ns, ep.apertures):
        out.append((int(t), 1, 'joint_states', rc.joint_state_msg(['gripper_aperture'], [float(a)], int(t))))
    for c in range(0, len(ep.audio) - CHUNK + 1, CHUNK):
        t = int(ep.audio_start_ns) + int(round(c * 1e9 / sr))
        out.append((t, 2, 'audio_stamped', rc.audio_chunk_msg(np.asarray(ep.audio[c:c + CHUNK]), t)))
    return [(t, topic, m) for t, _, topic, m in sorted(out, key=lambda x: (x[0], x[1]))]


def test_a_recording_through_the_node_on_dds_gets_the_offline_answers(node_harness, tmp_path):
    from hearing_hands_ros.data.bags import read_episode, write_episode
    from hearing_hands_ros.nodes.sounding_object_detector import SoundingObjectDetector
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld
    bag = write_episode(SoundWorld(SimConfig(scenario='alternating', seed=800002, n_actions=3)),
                        tmp_path, 'episode_0000')
    ep = read_episode(bag)
    offline = _offline(ep)
    assert len(offline) >= 3

    h = node_harness(87, SoundingObjectDetector, {'backend': 'cpu', 'max_future_s': 0.0},
                     peer='player')
    qos = {'audio_stamped': AUDIO_QOS}
    pubs = {t: h.peer.create_publisher(typ, t, qos.get(t, SENSOR_QOS)) for t, typ in (
        ('image', Image), ('camera_info', CameraInfo), ('gripper_pose', PoseStamped),
        ('joint_states', JointState), ('audio_stamped', AudioDataStamped))}
    pub_info = h.peer.create_publisher(AudioInfo, 'audio_info', LATCHED_QOS)
    got = []
    h.peer.create_subscription(Detection2DArray, 'sounding_objects', got.append, 50)
    assert h.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), 15.0)
    pub_info.publish(rc.audio_info_msg(int(ep.sample_rate)))
    assert h.wait_for(lambda: h.node.pipe.format is not None, 15.0)
    msgs = _messages(ep)
    t0, start = msgs[0][0], time.monotonic()
    for t, topic, m in msgs:                          # in real time, as the robot published them
        delay = start + (t - t0) / 1e9 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pubs[topic].publish(m)
    assert h.wait_for(lambda: len(got) >= len(offline), 15.0), (len(got), len(offline))

    live = {rc.stamp_to_ns(m.header.stamp): m for m in got}
    agree = 0
    for a in offline:
        onset = min(live, key=lambda s: abs(s - a.onset_ns))
        assert abs(onset - a.onset_ns) < 1_000_000              # the same onset, to the sample
        top = live[onset].detections[0].bbox
        x0, y0, x1, y1 = a.candidates[0]['bbox']              # look size = the camera's 128 px
        agree += (abs(top.center.position.x - (x0 + x1) / 2) < 0.01
                  and abs(top.center.position.y - (y0 + y1) / 2) < 0.01
                  and abs(top.size_x - (x1 - x0)) < 0.01)
    assert agree == len(offline), f'{agree} of {len(offline)} top detections as offline'
