"""Integration: the sim_robot node, loaded with config/sim_robot.yaml, publishes every contract
topic with driver QoS; AudioInfo is republished as audio_capture does; /diagnostics."""
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip('rclpy')
from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from nav_msgs.msg import Path as PathMsg  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402

from hearing_hands_ros.nodes.common import (AUDIO_QOS, INFO_QOS, RELIABLE_QOS,  # noqa: E402
                                            SENSOR_QOS, Diagnostics, declare_params, percentiles)
from hearing_hands_ros.ros_convert import stamp_to_ns  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'sim_robot.yaml'
TOPICS = {  # topic -> (type, QoS a subscriber uses)
    '/wrist_camera/image_raw': (Image, SENSOR_QOS),
    '/wrist_camera/camera_info': (CameraInfo, SENSOR_QOS),
    '/audio/audio_stamped': (AudioDataStamped, AUDIO_QOS),
    '/audio/audio_info': (AudioInfo, INFO_QOS),
    '/gripper/pose': (PoseStamped, SENSOR_QOS),
    '/gripper/joint_states': (JointState, SENSOR_QOS),
    '/planned_path': (PathMsg, RELIABLE_QOS),
    '/diagnostics': (DiagnosticArray, 10),
}


def _wait(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.05)
    return cond()


@pytest.mark.timeout(90)
def test_sim_robot_publishes_contract_topics(node_harness):
    from hearing_hands_ros.nodes.sim_robot import SimRobot
    got = {t: [] for t in TOPICS}
    h = node_harness(41, peer='probe')
    probe = h.peer
    for topic, (typ, qos) in TOPICS.items():
        probe.create_subscription(typ, topic, lambda m, t=topic: got[t].append(m), qos)
    t_start = rclpy.clock.Clock().now().nanoseconds
    sim = h.start_node(SimRobot, cli_args=[
        '--ros-args', '--params-file', str(CONFIG), '-p', 'width:=32', '-p', 'height:=24',
        '-p', 'n_actions:=1', '-p', 'episodes:=1', '-p', 'speed:=0.0', '-p', 'start_delay:=0.5',
        '-p', 'hardware_id:=test_arm', '-p', 'audio_info_period_s:=0.5'])
    assert _wait(lambda: sim.diag.values.get('state') == 'finished', 60), sim.diag.values
    assert _wait(lambda: all(got.values()), 5), {t: len(v) for t, v in got.items()}

    img, info = got['/wrist_camera/image_raw'][0], got['/wrist_camera/camera_info'][0]
    assert (img.width, img.height, img.encoding) == (32, 24, 'rgb8')
    assert img.header.frame_id == info.header.frame_id == 'wrist_camera_optical'
    assert (info.width, info.height) == (32, 24) and info.k[0] > 0
    assert {stamp_to_ns(m.header.stamp) for m in got['/wrist_camera/camera_info']} <= \
        {stamp_to_ns(m.header.stamp) for m in got['/wrist_camera/image_raw']} | \
        {stamp_to_ns(m.header.stamp) for m in got['/wrist_camera/camera_info']}
    assert stamp_to_ns(img.header.stamp) >= t_start  # node clock now + episode time

    chunks = got['/audio/audio_stamped']
    assert all(len(c.audio.data) == 2 * 512 for c in chunks)
    stamps = [stamp_to_ns(c.header.stamp) for c in chunks]
    assert stamps == sorted(stamps) and chunks[0].header.frame_id == 'wrist_mic'
    ai = got['/audio/audio_info'][0]
    assert (ai.channels, ai.sample_rate, ai.sample_format, ai.coding_format) == \
        (1, 16000, 'S16LE', 'wave')

    assert got['/gripper/pose'][0].header.frame_id == 'world'
    assert list(got['/gripper/joint_states'][0].name) == ['gripper_aperture']
    path = got['/planned_path'][0]
    assert len(path.poses) > 1 and path.header.frame_id == 'world'
    assert stamp_to_ns(path.poses[-1].header.stamp) > stamp_to_ns(path.poses[0].header.stamp)

    statuses = [s for a in got['/diagnostics'] for s in a.status if s.hardware_id == 'test_arm']
    assert statuses and statuses[-1].name.startswith('sim_robot')
    keys = {kv.key for kv in statuses[-1].values}
    assert {'published.image', 'published.audio', 'state'} <= keys

    # AudioInfo as audio_capture publishes it: reliable, volatile, depth 1, republished, so a
    # subscriber that comes late gets it within a period.
    (info_pub,) = probe.get_publishers_info_by_topic('/audio/audio_info')
    assert info_pub.qos_profile.durability == INFO_QOS.durability
    assert info_pub.qos_profile.reliability == INFO_QOS.reliability
    late = []
    probe.create_subscription(AudioInfo, '/audio/audio_info', late.append, INFO_QOS)
    assert _wait(lambda: late, 5) and late[0].sample_rate == 16000


def test_bad_parameters_refuse_to_start(node_harness):
    from hearing_hands_ros.nodes.sim_robot import SimRobot
    h = node_harness(41)
    with pytest.raises(ValueError, match='scenario'):
        SimRobot(context=h.ctx, cli_args=['--ros-args', '-p', 'scenario:=nope'])
    with pytest.raises(ValueError, match='faults must be in'):
        SimRobot(context=h.ctx, cli_args=['--ros-args', '-p', 'faults:=1.5'])


def test_diagnostics_levels_and_input_errors(node_harness):
    node = node_harness(41).peer
    p = declare_params(node, {'gain': (2.5, 'A gain.'), 'name': ('x', 'A name.')})
    assert (p.gain, p.name) == (2.5, 'x')
    assert node.describe_parameter('gain').description == 'A gain.'
    d = Diagnostics(node, hardware_id='mic0')
    d.count('chunks', 3)
    d.record_latency('infer', 0.010)
    d.record_latency('infer', 0.030)
    s = d.status()
    assert s.level == Diagnostics.OK and s.hardware_id == 'mic0'
    kv = {k.key: k.value for k in s.values}
    assert kv['chunks'] == '3' and kv['infer.max_ms'] == '30.00'
    d.report_input_error('bad_audio', 'mp3 is not supported; set format:=wave')
    d.report_input_error('bad_audio', 'again')
    s = d.status()
    assert s.level == Diagnostics.WARN and 'again' in s.message
    assert {k.key: k.value for k in s.values}['input_errors.bad_audio'] == '2'
    d.set_status(Diagnostics.ERROR, 'model missing')
    assert d.status().level == Diagnostics.ERROR
    assert percentiles([]) == {} and percentiles([1, 2, 3])['p50'] == 2


def test_main_refuses_bad_parameters_without_traceback(ros_domain):
    """`ros2 run hearing_hands_ros sim_robot` with a bad parameter: exit 1, one fatal line."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain(43)))
    proc = subprocess.run([sys.executable, '-m', 'hearing_hands_ros.nodes.sim_robot', '--ros-args',
                           '-p', 'fps:=0.0'], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    assert 'fps must be in' in proc.stderr and 'Traceback' not in proc.stderr
