"""hearing-hands CLI: usage errors are one line + exit 2; simulate writes readable bags; demo."""
import subprocess
import sys

import pytest

from hearing_hands_ros import cli

SMALL = ['--width', '32', '--height', '24', '--actions', '1']


def assert_one_line_error(code, err, fragment):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('hearing-hands: error: ') and fragment in lines[0], lines[0]
    assert 'Traceback' not in err


@pytest.mark.parametrize('args, fragment', [
    ([], 'required'),
    (['frobnicate'], 'invalid choice'),
    (['simulate'], '--out'),
    (['simulate', '--out', 'X', '--episodes', '0'], 'episodes'),
    (['simulate', '--out', 'X', '--episodes', '-3'], 'episodes'),
    (['simulate', '--out', 'X', '--episodes', 'many'], 'episodes must be a number'),
    (['simulate', '--out', 'X', '--width', '5000'], 'width'),
    (['simulate', '--out', 'X', '--width', '8'], 'width'),
    (['simulate', '--out', 'X', '--height', '0'], 'height'),
    (['simulate', '--out', 'X', '--fps', '0'], 'fps'),
    (['simulate', '--out', 'X', '--fps', '1000'], 'fps'),
    (['simulate', '--out', 'X', '--sample-rate', '100'], 'sample rate'),
    (['simulate', '--out', 'X', '--sample-rate', '10000000'], 'sample rate'),
    (['simulate', '--out', 'X', '--scenario', 'chaos'], 'invalid choice'),
    (['simulate', '--out', 'X', '--actions', '0'], 'actions'),
    (['demo', '--episodes', '0'], 'episodes'),
    (['evaluate', 'materials', '--train', 'none', '--test', 'none', '--json', 'X/m.json'],
     'no such bag or folder'),
    (['evaluate', 'detector', '--data', 'none', '--json', 'X/d.json'], 'no such bag or folder'),
    (['train', 'contact-rule', '--data', 'none', '--dry-run'], 'no such bag or folder'),
])
def test_usage_errors(cli_run, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli_run(*args)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / 'X').exists()


def test_output_not_writable(cli_run, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    for out in (blocker, blocker / 'sub'):
        code, _, err = cli_run('simulate', '--out', str(out), *SMALL)
        assert_one_line_error(code, err, 'cannot create output folder')


def test_existing_episode_needs_overwrite(cli_run, tmp_path):
    (tmp_path / 'episode_0000').mkdir()
    (tmp_path / 'episode_0000' / 'metadata.yaml').write_text('x')
    code, _, err = cli_run('simulate', '--out', str(tmp_path), *SMALL)
    assert_one_line_error(code, err, '--overwrite')
    assert (tmp_path / 'episode_0000' / 'metadata.yaml').read_text() == 'x'  # untouched


def test_package_errors_are_one_line_but_bugs_keep_their_traceback(cli_run, tmp_path, monkeypatch):
    from hearing_hands_ros.audio import AudioFormatError

    def bad_format(args):
        raise AudioFormatError('AudioInfo says mp3;\n set format:=wave')
    monkeypatch.setattr(cli.Simulate, 'run', staticmethod(bad_format))
    code, _, err = cli_run('simulate', '--out', str(tmp_path))
    assert_one_line_error(code, err, 'mp3; set format:=wave')

    def bug(args):
        raise ZeroDivisionError('a bug')
    monkeypatch.setattr(cli.Simulate, 'run', staticmethod(bug))
    with pytest.raises(ZeroDivisionError):
        cli.main(['simulate', '--out', str(tmp_path)])


def test_help_is_useful(cli_run):
    code, out, _ = cli_run('--help')
    assert code == 0 and 'simulate' in out and 'demo' in out and 'examples:' in out
    code, out, _ = cli_run('simulate', '--help')
    assert code == 0 and '--episodes' in out and '--overwrite' in out and 'examples:' in out


def test_console_script_error_in_a_real_process(tmp_path):
    """The installed entry point, as a user runs it."""
    proc = subprocess.run([sys.executable, '-m', 'hearing_hands_ros.cli', 'simulate', '--out',
                           str(tmp_path), '--fps', '-1'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count('\n') == 1 and 'Traceback' not in proc.stderr


@pytest.mark.timeout(120)
def test_simulate_writes_a_readable_bag(cli_run, tmp_path):
    from rosbags.rosbag2 import Reader
    code, out, _ = cli_run('simulate', '--episodes', '1', '--seed', '3', '--out', str(tmp_path),
                           '--quiet', *SMALL)
    assert code == 0 and '1 episode(s)' in out and 'episode_0000' in out
    bag = tmp_path / 'episode_0000'
    assert (tmp_path / 'episode_0000.truth.json').exists()
    assert (tmp_path / 'episode_0000.masks.npz').exists()
    with Reader(bag) as reader:
        topics = {t: (i.msgtype, i.msgcount) for t, i in reader.topics.items()}
    expected = {
        '/wrist_camera/image_raw': 'sensor_msgs/msg/Image',
        '/wrist_camera/camera_info': 'sensor_msgs/msg/CameraInfo',
        '/audio/audio_stamped': 'audio_common_msgs/msg/AudioDataStamped',
        '/audio/audio_info': 'audio_common_msgs/msg/AudioInfo',
        '/gripper/pose': 'geometry_msgs/msg/PoseStamped',
        '/gripper/joint_states': 'sensor_msgs/msg/JointState',
        '/planned_path': 'nav_msgs/msg/Path',
    }
    for topic, msgtype in expected.items():
        assert topics[topic][0] == msgtype and topics[topic][1] > 0, (topic, topics.get(topic))
    assert topics['/audio/audio_info'][1] == 1
    # A second run refuses to overwrite, with --overwrite it replaces the episode.
    code, _, err = cli_run('simulate', '--out', str(tmp_path), '--seed', '3', '--quiet', *SMALL)
    assert_one_line_error(code, err, 'already exists')
    code, _, _ = cli_run('simulate', '--out', str(tmp_path), '--seed', '3', '--quiet',
                         '--overwrite', *SMALL)
    assert code == 0
