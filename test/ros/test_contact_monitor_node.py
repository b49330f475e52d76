"""contact_monitor on real DDS with a small real exported model: a planned tap, the wrist camera
and the wrist microphone in; a MISSING anomaly when the tap is silent, AS_EXPECTED when its click
comes on time, on contact_anomalies and execution_status, and bad audio dropped with a reason."""
import os

import numpy as np
import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

rclpy = pytest.importorskip('rclpy')
from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from hearing_hands_msgs.msg import ContactAnomalyArray, ExecutionStatus  # noqa: E402
from nav_msgs.msg import Path as PathMsg  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from hearing_hands_ros import ros_convert as rc  # noqa: E402
from hearing_hands_ros import trajectory as tr  # noqa: E402
from hearing_hands_ros.nodes.common import AUDIO_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

NS = 1_000_000_000
SR = 16000
T0 = 1_767_225_600 * NS


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    return tiny_bundle(tmp_path_factory.mktemp('model') / 'contact_sound_predictor')


def tap_path(start_ns, duration=1.2, n=25):
    t = np.linspace(0.0, duration, n)
    pos = np.stack([np.zeros(n), np.zeros(n), 0.15 - 0.1 * np.sin(np.pi * t / duration)], 1)
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    return start_ns + (t * NS).astype(np.int64), pos, quat


def audio(seconds, clicks=(), seed=0, level=0.3):
    rng = np.random.default_rng(seed)
    x = (1e-3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    n = np.arange(int(0.05 * SR))
    click = level * np.sin(2 * np.pi * 2000 * n / SR) * np.exp(-n / (0.005 * SR))
    for t in clicks:
        k = int(t * SR)
        x[k:k + len(n)] += click[:len(x) - k]
    return x


def test_silent_tap_is_missing_and_a_tap_on_time_is_as_expected(node_harness, model):
    from hearing_hands_ros.nodes.contact_monitor import ContactMonitor
    h = node_harness(93, peer='fake_robot')
    got = {'anomalies': [], 'status': []}
    peer = h.peer
    peer.create_subscription(ContactAnomalyArray, 'contact_anomalies', got['anomalies'].append, 10)
    peer.create_subscription(ExecutionStatus, 'execution_status', got['status'].append, 10)
    pub_info = peer.create_publisher(AudioInfo, 'audio_info', LATCHED_QOS)
    pub_audio = peer.create_publisher(AudioDataStamped, 'audio_stamped', AUDIO_QOS)
    pub_path = peer.create_publisher(PathMsg, 'planned_path', RELIABLE_QOS)
    pub_img = peer.create_publisher(Image, 'image', SENSOR_QOS)
    pub_info.publish(rc.audio_info_msg(SR))
    node = h.start_node(ContactMonitor, {'model_path': str(model), 'backend': 'cpu',
                                         'expected_source': 'kinematic'})
    assert h.wait_for(lambda: pub_audio.get_subscription_count() > 0
                      and pub_path.get_subscription_count() > 0)
    assert h.wait_for(lambda: node.monitor is not None)            # the latched AudioInfo came
    pub_img.publish(rc.image_msg(np.zeros((64, 64, 3), np.uint8), T0))
    # the kinematic rule's expected tap of this path (what the node will expect)
    times, pos, quat = tap_path(T0)
    traj = tr.Trajectory.from_stamps_ns(times, pos, quat, frame_id='world', origin_ns=int(times[0]))
    (expected, _), = node.planner.expect([traj], None, source='kinematic')
    likely = [e for e in expected if e.probability >= 0.5]
    assert len(likely) == 1
    t_tap = likely[0].time

    # 1: the tap is silent -> MISSING, then ANOMALOUS
    pub_path.publish(rc.path_msg(times, pos, quat, 'world'))
    assert h.wait_for(lambda: len(node._expected) == 1)
    bad = rc.audio_chunk_msg(np.zeros(512, np.float32), T0)
    bad.audio.data = bad.audio.data[:-1]                            # odd byte count: dropped
    pub_audio.publish(bad)
    x = audio(2.0)
    for k in range(0, len(x), 512):
        pub_audio.publish(rc.audio_chunk_msg(x[k:k + 512], T0 + k * NS // SR))
    assert h.wait_for(lambda: got['status'])
    kinds = [a.type_name for m in got['anomalies'] for a in m.anomalies]
    assert kinds == ['MISSING']
    a = got['anomalies'][0].anomalies[0]
    assert rc.stamp_to_ns(a.path_stamp) == T0 and abs(a.expected.time_from_start - t_tap) < 1e-6
    assert rc.contact_anomaly_from_msg(a).kind == 'MISSING'
    st = got['status'][0]
    assert st.status == st.ANOMALOUS and st.expected_contacts == 1 and len(st.anomalies) == 1

    # 2: the same tap 3 s later, its click on time -> AS_EXPECTED, no anomaly
    start = T0 + 3 * NS
    times2, pos2, quat2 = tap_path(start)
    pub_path.publish(rc.path_msg(times2, pos2, quat2, 'world'))
    assert h.wait_for(lambda: start in node._expected)
    x = audio(2.0, clicks=[t_tap], seed=1, level=10 ** (likely[0].peak_db / 20))
    for k in range(0, len(x), 512):
        pub_audio.publish(rc.audio_chunk_msg(x[k:k + 512], start + k * NS // SR))
    assert h.wait_for(lambda: len(got['status']) == 2)
    st = got['status'][1]
    assert st.status == st.AS_EXPECTED and st.heard_contacts == 1, \
        [a.type_name for a in st.anomalies]
    assert len(got['anomalies']) == 1
    values = h.diag_values()
    assert values['paths_judged'] == '2' and values['paths_anomalous'] == '1'
    assert any('bad_audio' in k and v == '1' for k, v in values.items()), values


@pytest.mark.timeout(180)
def test_sound_world_hit_with_its_target_removed_is_missing(tmp_path, monkeypatch):
    """sim_robot plays a hit on object 1, then the same hit after object 1 was taken away;
    contact_monitor (the shipped models, real DDS) finds the second one MISSING, the first as
    expected, and the demo's timeline picture is written."""
    from hearing_hands_ros.demo import demo_monitor
    monkeypatch.setenv('ROS_DOMAIN_ID', '94')
    files, got = demo_monitor(tmp_path / 'monitor', seed=0, script='hit 1, hit 1 removed', speed=2.0)
    assert {f.name for f in files} == {'monitor.png', 'monitor.md'}
    (fault,) = got['truth']['faults']
    assert fault['kind'] == 'removed' and fault['action'] == 1
    rows = got['rows']
    faulty = [r for r in rows if 'removed' in r[1]]
    normal = [r for r in rows if 'removed' not in r[1]]
    assert faulty and any('MISSING' in r[3] for r in faulty)
    assert normal and all(r[2] == 'AS_EXPECTED' for r in normal), rows


def test_a_gripper_plan_with_the_path_stamp_places_the_grasp(node_harness, model):
    """A path that rests low while planned_gripper closes the fingers: the node expects the
    grasp along the planned closing (as Planner.expect with the plan's openings), not a strike at
    the end of the descent; a plan that names no gripper joint is dropped with a reason."""
    from trajectory_msgs.msg import JointTrajectory

    from hearing_hands_ros.nodes.contact_monitor import ContactMonitor
    h = node_harness(97, peer='fake_planner')
    peer = h.peer
    pub_info = peer.create_publisher(AudioInfo, 'audio_info', LATCHED_QOS)
    pub_path = peer.create_publisher(PathMsg, 'planned_path', RELIABLE_QOS)
    pub_plan = peer.create_publisher(JointTrajectory, 'planned_gripper', RELIABLE_QOS)
    pub_info.publish(rc.audio_info_msg(SR))
    node = h.start_node(ContactMonitor, {'model_path': str(model), 'backend': 'cpu',
                                         'expected_source': 'kinematic'})
    assert h.wait_for(lambda: pub_plan.get_subscription_count() > 0 and node.monitor is not None)
    t = np.linspace(0.0, 1.4, 71)
    times = T0 + (t * NS).astype(np.int64)
    pos = np.stack([0 * t, 0 * t, np.interp(t, [0.0, 0.4, 1.0, 1.4], [0.10, 0.05, 0.05, 0.10])], 1)
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (len(t), 1))
    openings = np.interp(t, [0.0, 0.5, 0.8, 1.4], [0.08, 0.08, 0.0, 0.0])
    wrong = rc.gripper_plan_msg(times, openings, T0, joint='finger_joint')
    pub_plan.publish(wrong)
    assert h.wait_for(lambda: any('bad_gripper_plan' in k for k in h.diag_values()))
    pub_plan.publish(rc.gripper_plan_msg(times, openings, T0))
    assert h.wait_for(lambda: h.diag_values().get('gripper_plans') == '1')
    pub_path.publish(rc.path_msg(times, pos, quat, 'world'))
    assert h.wait_for(lambda: T0 in node._expected)
    traj = tr.Trajectory.from_stamps_ns(times, pos, quat, openings, 'world', origin_ns=T0)
    (want, _), = node.planner.expect([traj], None, source='kinematic')
    _, got = node._expected[T0]
    assert [e.time for e in got] == pytest.approx([e.time for e in want])
    (grasp,) = got
    assert 0.6 < grasp.time < 0.7                                   # along the planned closing
