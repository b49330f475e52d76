"""report.write_report on a tiny synthetic episode (no MuJoCo: a fake event stream)."""
from types import SimpleNamespace as NS

import numpy as np
import pytest

from hearing_hands_ros import images as I
from hearing_hands_ros.data.bags import write_episode
from hearing_hands_ros.report import write_report

W = H = 48
SR = 16000
CAM_POS, CAM_QUAT = np.array([0.0, 0.0, 0.5]), np.array([1.0, 0.0, 0.0, 0.0])  # looks down (-z)


class FakeWorld:
    """One object under a downward camera; a 'glass' tap at 0.5 s (click in the audio)."""

    def __init__(self):
        K = I.intrinsics(W, H)
        self.truth = {
            'version': 1, 'seed': 3, 'scenario': 'mixed', 'duration': 1.0, 'start_time_ns': 0,
            'camera': {'width': W, 'height': H, 'fps': 10.0, 'K': K.reshape(9).tolist(),
                       'frame_id': 'wrist_camera_optical',
                       'T_tcp_camera': {'position': [0, 0, 0], 'orientation': [0, 0, 0, 1]}},
            'objects': [{'id': 1, 'name': 'object_1', 'shape': 'box', 'material': 'glass'}],
            'contacts': [{'time': 0.5, 'stamp_ns': 0, 'position': [0.05, 0.0, 0.0], 'objects': [1, -1],
                          'materials': ['glass', 'gripper'], 'kind': 'impact', 'impulse': 0.1,
                          'duration': 0.0, 'gripper': True, 'action': 0},
                         {'time': 0.7, 'stamp_ns': 0, 'position': [0.0, 0.0, 0.0], 'objects': [1, 0],
                          'materials': ['glass', 'wood'], 'kind': 'scrape', 'impulse': 0.05,
                          'duration': 0.2, 'gripper': False, 'action': 0}]}
        self.config = NS(sample_rate=SR, start_time_ns=10**18)
        self.K = K

    def camera_info(self):
        return dict(width=W, height=H, K=self.K.reshape(9).tolist(), D=[0.0] * 5,
                    frame_id='wrist_camera_optical')

    def run(self):
        yield NS(t=0.0, kind='path', times=np.array([0.0, 1.0]), positions=np.zeros((2, 3)),
                 orientations=np.tile([0, 0, 0, 1.0], (2, 1)), action='tap')
        labels = np.zeros((H, W), np.uint8)
        labels[20:28, 26:34] = 1
        rgb = np.full((H, W, 3), 90, np.uint8)
        rgb[labels == 1] = (200, 220, 255)
        audio = np.zeros(SR, np.float32)
        audio[SR // 2:SR // 2 + 400] = 0.5 * np.sin(np.arange(400) * 0.9) * np.exp(-np.arange(400) / 80)
        events = [NS(t=k / 10, kind='image', rgb=rgb, labels=labels, camera_pose=(CAM_POS, CAM_QUAT))
                  for k in range(10)]
        events += [NS(t=k * 512 / SR, kind='audio', samples=audio[k * 512:(k + 1) * 512])
                   for k in range(SR // 512)]
        events += [NS(t=k / 100, kind='pose', position=np.zeros(3), orientation=np.array([0, 0, 0, 1.0]),
                      aperture=0.04) for k in range(100)]
        yield from sorted(events, key=lambda e: e.t)


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    return write_episode(FakeWorld(), tmp_path_factory.mktemp('ep'), 'episode_0000')


def test_write_report(bag, tmp_path):
    md = write_report([bag], tmp_path / 'report')
    assert md == tmp_path / 'report' / 'report.md'
    text = md.read_text()
    assert '![frames](episode_0000_frames.png)' in text
    assert '![spectrogram](episode_0000_spectrogram.png)' in text
    assert '| 0.500 | impact | glass/gripper |' in text and 'scrape' in text
    for png in ('episode_0000_frames.png', 'episode_0000_spectrogram.png'):
        data = (tmp_path / 'report' / png).read_bytes()
        assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 2000
    html = (tmp_path / 'report' / 'report.html').read_text()
    assert 'episode_0000_frames.png' in html and '<table>' in html


def test_contact_projects_into_the_frame():
    """The marker the contact sheet draws: contact 5 cm along x lands right of the centre."""
    w = FakeWorld()
    uv, depth = I.project_points([w.truth['contacts'][0]['position']], (CAM_POS, CAM_QUAT), w.K)
    assert depth[0] == pytest.approx(0.5)
    assert uv[0][0] > W / 2 + 2 and uv[0][1] == pytest.approx(H / 2)
