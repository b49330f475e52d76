"""Bag write/read round trip with a small fake world (contract-shaped events); no ROS."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from hearing_hands_ros import audio as A
from hearing_hands_ros import images as I
from hearing_hands_ros.data import bags
from hearing_hands_ros.data.bags import TopicNames, list_episodes, read_episode, write_episode
from hearing_hands_ros.data.typestore import MSG_DEFINITIONS, interfaces_dir, typestore

NS = 10**9
START = 1_767_225_600 * NS


class FakeWorld:
    """1 s episode: 30 fps 16x12 images, 512-sample audio chunks, 100 Hz poses, one path."""

    def __init__(self, duration=1.0, sr=16000, fps=30.0):
        self.config = SimpleNamespace(sample_rate=sr, chunk_samples=512, fps=fps, width=16, height=12,
                                      start_time_ns=START, seed=0, scenario='mixed')
        self.duration, self.truth = duration, {}
        rng = np.random.default_rng(0)
        n = int(duration * sr)
        self.audio = (0.1 * rng.standard_normal(n)).astype(np.float32)

    def camera_info(self):
        K = I.intrinsics(16, 12, 70.0)
        return dict(width=16, height=12, K=K.ravel().tolist(), D=[0.0] * 5, frame_id='wrist_camera_optical')

    def run(self):
        c = self.config
        ev = []
        for k in range(int(self.duration * c.fps)):
            t = k / c.fps
            rgb = np.full((12, 16, 3), k, np.uint8)
            rgb[0, 0] = (255, 0, 0)
            labels = np.zeros((12, 16), np.uint8)
            labels[k % 12, :] = 1
            ev.append(SimpleNamespace(t=t, kind='image', rgb=rgb, labels=labels,
                                      camera_pose=(np.array([0, 0, 0.5 + t]), np.array([1.0, 0, 0, 0]))))
        for i in range(0, len(self.audio), c.chunk_samples):
            ev.append(SimpleNamespace(t=i / c.sample_rate, kind='audio', samples=self.audio[i:i + c.chunk_samples]))
        for k in range(int(self.duration * 100)):
            t = k / 100
            ev.append(SimpleNamespace(t=t, kind='pose', position=np.array([t, 0, 0.2]),
                                      orientation=np.array([0, 0, 0, 1.0]), aperture=0.04 * t))
        times = np.linspace(0.5, 0.9, 5)
        ev.append(SimpleNamespace(t=0.5, kind='path', times=times, positions=np.c_[times, times, times],
                                  orientations=np.tile([0, 0, 0, 1.0], (5, 1)), action='tap',
                                  apertures=np.linspace(0.06, 0.0, 5)))
        ev.sort(key=lambda e: e.t)
        for e in ev:
            yield e
        self.truth = dict(version=1, seed=0, scenario='mixed', duration=self.duration, start_time_ns=START,
                          objects=[dict(id=1, material='wood', size=np.array([0.1, 0.1, 0.1]))],
                          contacts=[dict(time=0.7, stamp_ns=0, objects=[1, 0], impulse=np.float32(0.1))])


@pytest.fixture(scope='module')
def episode(tmp_path_factory):
    out = tmp_path_factory.mktemp('bags')
    return write_episode(FakeWorld(), out, 'episode_0000')


def test_written_bag_contents(episode):
    assert (episode / 'metadata.yaml').exists() and list(episode.glob('*.mcap'))
    with Reader(episode) as r:
        topics = {t: (i.msgtype, i.msgcount) for t, i in r.topics.items()}
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in r.connections}
    T = TopicNames()
    assert topics == {
        T.image: ('sensor_msgs/msg/Image', 30), T.camera_info: ('sensor_msgs/msg/CameraInfo', 30),
        T.audio: ('audio_common_msgs/msg/AudioDataStamped', 32),
        T.audio_info: ('audio_common_msgs/msg/AudioInfo', 1),
        T.pose: ('geometry_msgs/msg/PoseStamped', 100), T.joint_states: ('sensor_msgs/msg/JointState', 100),
        T.path: ('nav_msgs/msg/Path', 1), T.gripper_plan: ('trajectory_msgs/msg/JointTrajectory', 1)}
    assert qos[T.audio_info].durability.name == 'TRANSIENT_LOCAL'
    assert qos[T.image].reliability.name == 'BEST_EFFORT'
    assert qos[T.path].reliability.name == 'RELIABLE' and qos[T.audio].depth == 100
    truth = json.loads((episode.parent / 'episode_0000.truth.json').read_text())
    assert truth['contacts'][0]['stamp_ns'] == START + 700_000_000
    assert truth['objects'][0]['size'] == [0.1, 0.1, 0.1]
    with np.load(episode.parent / 'episode_0000.masks.npz') as z:
        assert z['labels'].shape == (30, 12, 16) and z['labels'].dtype == np.uint8
        assert z['stamps_ns'].dtype == np.int64 and z['stamps_ns'][1] == START + round(NS / 30)


def test_read_episode_round_trip(episode):
    w = FakeWorld()
    ep = read_episode(episode)
    assert ep.images.shape == (30, 12, 16, 3) and ep.images.dtype == np.uint8
    assert ep.images[5, 3, 3, 0] == 5 and tuple(ep.images[0, 0, 0]) == (255, 0, 0)
    assert ep.image_stamps_ns[0] == START and np.all(np.diff(ep.image_stamps_ns) > 0)
    assert ep.camera_info['width'] == 16 and ep.camera_info['frame_id'] == 'wrist_camera_optical'
    np.testing.assert_allclose(ep.camera_info['K'], w.camera_info()['K'])
    assert ep.sample_rate == 16000 and ep.audio_start_ns == START
    assert ep.audio_format == A.AudioFormat(1, 16000, 'S16LE', 'wave')
    assert len(ep.audio) == 16000 == w.duration * ep.sample_rate and ep.audio.dtype == np.float32
    np.testing.assert_allclose(ep.audio, w.audio, atol=1 / 32768)
    assert ep.audio_end_ns == START + NS and ep.audio_stats['gaps'] == 0
    assert ep.positions.shape == (100, 3) and ep.orientations.shape == (100, 4)
    np.testing.assert_allclose(ep.positions[10], [0.1, 0, 0.2])
    assert ep.pose_stamps_ns[10] == START + 100_000_000
    np.testing.assert_allclose(ep.apertures[50], 0.02)
    assert len(ep.paths) == 1
    stamp, times, pos, quat = ep.paths[0]
    assert stamp == START + NS // 2 and times[-1] == START + 900_000_000 and pos.shape == (5, 3)
    plan_times, openings = ep.gripper_plans[stamp]                  # the gripper's plan along it
    assert (plan_times == times).all()
    np.testing.assert_allclose(openings, np.linspace(0.06, 0.0, 5))
    assert ep.truth['scenario'] == 'mixed'
    assert ep.labels.shape == (30, 12, 16) and (ep.label_stamps_ns == ep.image_stamps_ns).all()
    assert ep.camera_positions.shape == (30, 3)
    assert list_episodes(episode.parent) == [episode]
    assert list_episodes([episode, episode / 'metadata.yaml']) == [episode]
    with pytest.raises(FileExistsError):
        write_episode(FakeWorld(), episode.parent, 'episode_0000')


def test_read_foreign_bag(tmp_path):
    """A bag as a real robot might record it: compressed images, stereo S32LE audio with a gap and
    jitter, no truth files, other topic names."""
    ts = typestore()
    m = bags._Msgs(ts)
    T = TopicNames(image='/cam/image', audio='/mic/audio', audio_info='/mic/info')
    fmt = A.AudioFormat(2, 8000, 'S32LE', 'wave')
    path = tmp_path / 'robot'
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = (0, 255, 0)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as wr:
        ci = wr.add_connection('/cam/image/compressed', 'sensor_msgs/msg/CompressedImage', typestore=ts)
        ca = wr.add_connection(T.audio, 'audio_common_msgs/msg/AudioDataStamped', typestore=ts)
        cf = wr.add_connection(T.audio_info, 'audio_common_msgs/msg/AudioInfo', typestore=ts)
        wr.write(cf, START, ts.serialize_cdr(ts.types['audio_common_msgs/msg/AudioInfo'](**fmt.info_fields()),
                                             cf.msgtype))
        c = I.compress_rgb(rgb, 'png')
        img = ts.types['sensor_msgs/msg/CompressedImage'](header=m.header(START, 'cam'),
                                                          format=c['format'],
                                                          data=np.frombuffer(c['data'], np.uint8))
        wr.write(ci, START, ts.serialize_cdr(img, ci.msgtype))
        stamps = [START, START + 100_000_000 + 300_000, START + 300_000_000]   # jitter, then gap
        for k, t in enumerate(stamps):
            x = np.full((800, 2), 0.1 * (k + 1), np.float32)
            msg = ts.types['audio_common_msgs/msg/AudioDataStamped'](
                header=m.header(t, 'mic'),
                audio=ts.types['audio_common_msgs/msg/AudioData'](data=np.frombuffer(A.encode(x, fmt), np.uint8)))
            wr.write(ca, t, ts.serialize_cdr(msg, ca.msgtype))
    ep = read_episode(path, T)
    np.testing.assert_array_equal(ep.images[0], rgb)
    assert ep.sample_rate == 8000 and ep.audio_format.channels == 2
    assert len(ep.audio) == 2400 + 800 and ep.audio_stats['gaps'] == 1
    np.testing.assert_allclose(ep.audio[:1600], np.repeat([0.1, 0.2], 800), atol=1e-6)
    assert not ep.audio[1600:2400].any() and np.allclose(ep.audio[2400:], 0.3)
    assert ep.truth is None and ep.labels is None and ep.positions.shape == (0, 3)


def test_msg_definitions_match_interface_files():
    root = interfaces_dir()
    assert root is not None
    files = {f'{f.parent.parent.name}/msg/{f.stem}': f.read_text() for f in root.glob('*/msg/*.msg')}
    assert files == MSG_DEFINITIONS
    ts = typestore()
    for name in MSG_DEFINITIONS:
        assert name in ts.types
