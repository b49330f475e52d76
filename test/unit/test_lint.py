"""Style, as ament_flake8 and ament_pep257 check a ROS package (settings: setup.cfg)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ['hearing_hands_ros', 'test', 'bench', 'experiments', 'launch', 'setup.py']


@pytest.mark.parametrize('tool', ['flake8', 'pydocstyle'])
def test_style(tool):
    pytest.importorskip(tool)
    targets = CODE if tool == 'flake8' else [c for c in CODE if c != 'setup.py']
    proc = subprocess.run([sys.executable, '-m', tool, *targets], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f'{tool} found:\n{proc.stdout}{proc.stderr}'
