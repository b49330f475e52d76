"""The README works as written: its quick-start commands run, its planner example runs, and
every `hearing-hands` command in the README and docs/ parses with the real command line."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hearing_hands_ros import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / 'README.md').read_text()
BIN = Path(sys.executable).parent


def section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of the same or a higher level."""
    m = re.search(rf'^(#+) {re.escape(heading)}\s*$', text, re.M)
    assert m, f'README has no heading {heading!r}'
    level = len(m.group(1))
    end = re.search(rf'^#{{1,{level}}} ', text[m.end():], re.M)
    return text[m.end():m.end() + end.start() if end else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf'```{lang}\n(.*?)```', text, re.S)


def commands(text: str) -> list[str]:
    """Shell lines of the bash blocks: continuations joined, comments dropped."""
    out = []
    for block in blocks(text, 'bash'):
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'\s+#.*$', '', line).strip()
            if line and not line.startswith('#'):
                out.append(line)
    return out


@pytest.mark.timeout(600)
def test_quick_start_commands_run(tmp_path):
    """The quick start, line by line, in a fresh folder, with the shipped models."""
    lines = commands(section(README, 'Quick start'))
    assert any(line.startswith('hearing-hands evaluate detector') for line in lines)
    env = dict(os.environ, PATH=f'{BIN}{os.pathsep}{os.environ["PATH"]}', OMP_NUM_THREADS='1')
    for line in lines:
        if line.startswith('. .venv/bin/activate'):
            continue                                   # the test already runs in the venv
        proc = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f'{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}'
    outputs = [w for line in lines for w in shlex.split(line) if w.endswith('.json')]
    assert outputs and all((tmp_path / o).exists() for o in outputs)


@pytest.mark.timeout(120)
def test_planner_example_runs():
    (code,) = blocks(section(README, 'Planner API'), 'python')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'quietest first:' in proc.stdout


def _documented_commands():
    pages = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
    for page in pages:
        for line in commands(page.read_text()):
            for part in re.split(r'\s*(?:&&|;|\||&)\s*', line):
                if part.startswith('hearing-hands ') and '$' not in part:   # not loop variables
                    yield page.name, part


@pytest.mark.parametrize('page, command', list(_documented_commands()))
def test_documented_command_parses(page, command, monkeypatch):
    """Flags and sub-commands exist (placeholders such as DIR are fine: nothing runs)."""
    monkeypatch.chdir(ROOT)                            # @recipes/... argument files
    argv = [a for a in shlex.split(command)[1:] if a != '...']
    chosen = next((a for a in argv if a in cli.COMMANDS or a in cli.GROUPS), None)
    target = argv[argv.index(chosen) + 1] if chosen in cli.GROUPS else None
    try:
        cli.build_parser(chosen, target).parse_args(argv)
    except SystemExit as exc:
        if exc.code != 0:                              # --help and --version exit 0
            pytest.fail(f'{page}: `{command}` does not parse (exit {exc.code})')
