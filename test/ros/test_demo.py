"""The `make demo` tour on real nodes: the CLI's demo, and the detector live on sim_robot."""
from pathlib import Path

import pytest

from hearing_hands_ros.demo import demo_live

SMALL = ['--width', '32', '--height', '24', '--actions', '1']


@pytest.mark.timeout(120)
def test_demo_writes_episodes_and_report(cli_run, tmp_path, ros_domain):
    ros_domain(47)
    code, out, _ = cli_run('demo', '--out', str(tmp_path), '--episodes', '1', '--quiet', *SMALL)
    assert code == 0 and 'report:' in out
    report = Path(tmp_path / 'report' / 'report.md')
    assert report.exists() and 'demo_0000' in report.read_text()
    assert (tmp_path / 'report' / 'demo_0000_frames.png').exists()
    assert (tmp_path / 'episodes' / 'demo_0000' / 'metadata.yaml').exists()


def test_demo_live_runs_real_nodes_and_writes_pictures(tmp_path, monkeypatch):
    from test_detector_node import make_model
    monkeypatch.setenv('ROS_DOMAIN_ID', '48')
    model = make_model(tmp_path / 'det.onnx')
    files = demo_live(tmp_path / 'demo', model, seed=5, n_actions=2, speed=2.0)
    names = {f.name for f in files}
    assert 'detections.md' in names
    text = (tmp_path / 'demo' / 'detections.md').read_text()
    assert 'detection arrays from' in text and 'by the label rule' in text
    assert 'offline (`evaluate detector` on the same episode)' in text
    if 'detections.png' in names:
        import cv2
        assert cv2.imread(str(tmp_path / 'demo' / 'detections.png')) is not None
