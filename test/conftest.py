"""Test-wide environment: DDS stays on loopback, MuJoCo renders off-screen.

`test/unit` needs no ROS graph; `test/ros` starts real nodes on DDS (`node_harness.NodeHarness`).

Each ROS test still picks its own ROS_DOMAIN_ID (see ``ros_domain``) so tests never hear each other.
"""
import os

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('MUJOCO_GL', 'osmesa')
os.environ.setdefault('PYOPENGL_PLATFORM', 'osmesa')

import pytest  # noqa: E402


@pytest.fixture
def ros_domain(monkeypatch):
    """Set a ROS_DOMAIN_ID for this test: call with the test's own number (0..101)."""
    def set_domain(domain_id: int) -> int:
        monkeypatch.setenv('ROS_DOMAIN_ID', str(domain_id))
        return domain_id
    return set_domain


@pytest.fixture
def cli_run(capsys):
    """Run ``hearing-hands`` in-process: call it with the arguments, get (exit code, stdout,
    stderr)."""
    from hearing_hands_ros import cli

    def run(*argv):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture(scope='session')
def bags(tmp_path_factory):
    """One tiny recorded sound-world episode (2 actions, 64x64 camera), simulated once per run and
    shared by the tests that need a real rosbag (predictor data set and training pipeline)."""
    from hearing_hands_ros.data.bags import write_episode
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld
    out = tmp_path_factory.mktemp('bags')
    write_episode(SoundWorld(SimConfig(seed=4, n_actions=2, width=64, height=64)), out, 'episode_0000')
    return out


def pytest_collection_modifyitems(items):
    """Mark each test by its folder: ``unit`` (no ROS graph) or ``ros`` (real nodes on DDS), so
    ``pytest -m unit`` runs the quick half alone."""
    for item in items:
        folder = item.path.parent.name
        if folder in ('unit', 'ros'):
            item.add_marker(getattr(pytest.mark, folder))
