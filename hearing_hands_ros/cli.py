"""The ``hearing-hands`` command: ``hearing-hands <subcommand> [options]``.

The CLI only parses and dispatches. Each subcommand is listed in ``COMMANDS`` with its one-line
help and an object (usually a module: ``'package.module'`` or ``'package.module:attribute'``)
that provides

* ``DESCRIPTION`` / ``EXAMPLES`` (optional): the subcommand's ``--help`` text,
* ``add_arguments(parser)``: its argparse options,
* ``run(args) -> int``: the work; raise ``UserError`` (or another type in ``USER_ERRORS``) for
  mistakes the user can fix: the CLI prints ``hearing-hands: error: ...`` and exits with 2.

Only the chosen subcommand is imported, so ``--help`` stays fast and a broken optional
dependency (torch, onnxruntime) only affects the subcommands that need it.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
from pathlib import Path

from hearing_hands_ros.errors import UserError

PROG = 'hearing-hands'

#: name -> (object providing add_arguments(parser) and run(args), one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    'simulate': ('hearing_hands_ros.cli:Simulate',
                 'simulate sound-world episodes and record them as rosbag2 files'),
    'demo': ('hearing_hands_ros.cli:Demo',
             'simulate a few short episodes of both scenarios and write a picture report'),
}

#: Two-level commands ``hearing-hands VERB TARGET``: verb -> (help, {target: module}). Each module
#: provides HELP, add_arguments(parser), run(args) and optionally DESCRIPTION / EXAMPLES.
GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    'train': ('train a model from rosbag2 episodes', {
        'detector': 'hearing_hands_ros.train.detector',
        'look-match': 'hearing_hands_ros.train.look_match',
        'contact-rule': 'hearing_hands_ros.train.contact_rule',
        'predictor': 'hearing_hands_ros.train.predictor',
        'events': 'hearing_hands_ros.train.events',
        'monitor': 'hearing_hands_ros.train.monitor'}),
    'export': ('export a trained model to an ONNX bundle (+ metadata) for the nodes', {
        'detector': 'hearing_hands_ros.train.export_detector',
        'look-match': 'hearing_hands_ros.train.export_look_match',
        'predictor': 'hearing_hands_ros.train.export_predictor',
        'events': 'hearing_hands_ros.train.export_events'}),
    'evaluate': ('evaluate on held-out episodes against baselines (JSON + pictures)', {
        'detector': 'hearing_hands_ros.eval.detector',
        'predictor': 'hearing_hands_ros.eval.predictor',
        'events': 'hearing_hands_ros.eval.events',
        'monitor': 'hearing_hands_ros.eval.monitor',
        'materials': 'hearing_hands_ros.eval.materials'}),
}

#: Exception types that are the user's to fix (bad files, bad formats): one line, exit 2.
#: Given as 'module:Class'; only modules already imported are looked at.
USER_ERRORS = [
    'hearing_hands_ros.errors:UserError',
    'hearing_hands_ros.audio:AudioFormatError',
    'hearing_hands_ros.images:ImageError',
    'hearing_hands_ros.trajectory:TrajectoryError',
    'hearing_hands_ros.errors:ModelError',
]


def _user_error_types() -> tuple[type, ...]:
    types = []
    for spec in USER_ERRORS:
        module, _, name = spec.partition(':')
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            types.append(cls)
    return tuple(types)


def _load(name: str):
    module, _, attr = COMMANDS[name][0].partition(':')
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows defaults (except None and False)."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as one line ``hearing-hands: error: ...`` and exit code 2, and reads
    argument files: ``@FILE`` on the command line stands for the arguments written in FILE
    (``recipes/*.args``), one argument or ``--flag value`` per line, words split on whitespace;
    blank lines and lines starting with ``#`` are skipped. Every sub-parser does the same."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault('fromfile_prefix_chars', '@')
        super().__init__(*args, **kwargs)

    def convert_arg_line_to_args(self, arg_line: str) -> list[str]:
        line = arg_line.strip()
        return [] if not line or line.startswith('#') else line.split()

    def error(self, message):
        hint = f' (see {self.prog} --help)'
        self.exit(2, f'{PROG}: error: {" ".join(message.split())}{hint}\n')


def _add_command(sub, name: str, cmd, help_line: str) -> None:
    p = sub.add_parser(name, help=help_line, formatter_class=_Formatter,
                       description=getattr(cmd, 'DESCRIPTION', help_line),
                       epilog=getattr(cmd, 'EXAMPLES', None))
    cmd.add_arguments(p)
    p.set_defaults(_run=cmd.run)


def build_parser(chosen: str | None = None, target: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen command's module is imported (all when None)."""
    from hearing_hands_ros import __version__
    parser = _Parser(
        prog=PROG, formatter_class=_Formatter,
        description='Ears for a robot\'s hands: simulate a sound world and record rosbag2 '
                    'episodes, train and evaluate the sounding-object detector and the '
                    'contact-sound predictor, and run them as ROS 2 nodes.',
        epilog='examples:\n'
               f'  {PROG} demo                                  # a few episodes + a report\n'
               f'  {PROG} simulate --episodes 20 --seed 0 --out data/sim\n'
               f'  {PROG} train detector --data data/sim --out runs/detector\n'
               f'  {PROG} evaluate detector --data data/test --json out/detector.json\n'
               f'  {PROG} train detector @recipes/train_detector.args   # arguments from a file\n'
               f'  {PROG} simulate --help                       # options of one subcommand\n'
               '\nROS 2 nodes: ros2 launch hearing_hands_ros hearing_hands.launch.py use_sim:=true')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='<command>', required=True)
    for name, (_, help_line) in COMMANDS.items():
        if chosen not in (None, name):
            sub.add_parser(name, help=help_line)
        else:
            _add_command(sub, name, _load(name), help_line)
    for verb, (help_line, targets) in GROUPS.items():
        g = sub.add_parser(verb, help=help_line, description=help_line, formatter_class=_Formatter)
        gsub = g.add_subparsers(dest='target', metavar='<target>', required=True)
        for tname, module in targets.items():
            if chosen == verb and target in (None, tname):
                cmd = importlib.import_module(module)
                _add_command(gsub, tname, cmd, getattr(cmd, 'HELP', tname))
            else:
                gsub.add_parser(tname, help=f'{verb} the {tname}')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hearing-hands``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if a in COMMANDS or a in GROUPS), None)
    target = None
    if chosen in GROUPS:
        rest = argv[argv.index(chosen) + 1:]
        target = next((a for a in rest if a in GROUPS[chosen][1]), None)
    parser = build_parser(chosen, target)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted', file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only the package's own user errors are caught
        if not isinstance(exc, _user_error_types()):
            raise
        message = ' '.join(str(exc).split()) or type(exc).__name__
        print(f'{PROG}: error: {message}', file=sys.stderr)
        return 2


# --- argument checks ---------------------------------------------------------------------------
def _ranged(kind, lo, hi, what, lo_open=False):
    """An argparse type: ``kind`` within [lo, hi] (or (lo, hi] with ``lo_open``)."""
    def check(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{what} must be a number, not {text!r}') from None
        if not (lo < value if lo_open else lo <= value) or value > hi:
            raise argparse.ArgumentTypeError(
                f'{what} must be in {"(" if lo_open else "["}{lo}, {hi}], not {text}')
        return value
    check.__name__ = what
    return check


def prepare_output(out: Path, names: list[str], overwrite: bool) -> Path:
    """Create ``out`` and make room for episodes ``names`` (bag folder + truth + masks).

    Raises ``UserError`` if ``out`` cannot be written, or an episode exists and not ``overwrite``.
    """
    out = Path(out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f'cannot create output folder {out}: {exc.strerror or exc}') from None
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f'output folder {out} is not a writable folder')
    paths = [p for name in names
             for p in (out / name, out / f'{name}.truth.json', out / f'{name}.masks.npz')]
    existing = [p for p in paths if p.exists() and not (p.is_dir() and not any(p.iterdir()))]
    if existing and not overwrite:
        raise UserError(f'{existing[0]} already exists ({len(existing)} file(s) of these episodes '
                        'do); use --overwrite to replace them or choose another --out')
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return out


def simulate_episodes(out: Path, episodes: int, seed: int, scenarios: list[str],
                      overwrite: bool = False, quiet: bool = False, prefix: str = 'episode',
                      **sim_options) -> list[dict]:
    """Simulate and record ``episodes`` episodes into ``out``; returns one summary per episode.

    Episode ``i`` uses seed ``seed + i`` and scenario ``scenarios[i % len(scenarios)]``;
    ``sim_options`` are further ``SimConfig`` fields (width, height, fps, ...).
    """
    names = [f'{prefix}_{i:04d}' for i in range(episodes)]
    out = prepare_output(out, names, overwrite)
    from tqdm import tqdm

    from hearing_hands_ros.data.bags import write_episode
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld

    offset = sim_options.pop('sound_seed_offset', None)
    summaries = []
    disable = True if quiet else None       # None: tqdm shows no bars when not on a terminal
    bar = tqdm(names, desc='episodes', unit='ep', disable=disable, dynamic_ncols=True)
    for i, name in enumerate(bar):
        config = SimConfig(scenario=scenarios[i % len(scenarios)], seed=seed + i,
                           sound_seed=None if offset is None else seed + i + offset, **sim_options)
        t0 = time.perf_counter()
        world = SoundWorld(config)
        with tqdm(desc=f'  {name}', unit='sim s', position=1, leave=False, disable=disable,
                  bar_format='{desc}: {n:.1f} sim s [{elapsed}, {rate_fmt}]') as ep_bar:
            bag = write_episode(_Progress(world, ep_bar), out, name)
        wall = time.perf_counter() - t0
        truth = world.truth
        contacts = truth.get('contacts', [])
        duration = float(truth.get('duration') or 0.0)
        summaries.append(dict(name=name, bag=Path(bag), seed=config.seed, scenario=config.scenario,
                              duration=duration, wall=wall, contacts=len(contacts),
                              materials=sorted({m for c in contacts for m in c.get('materials', [])})))
        bar.set_postfix(sim_s=f'{duration:.1f}', rtf=f'{duration / max(wall, 1e-9):.2f}')
    return summaries


class _Progress:
    """A ``SoundWorld`` whose ``run()`` also advances a tqdm bar in simulated seconds."""

    def __init__(self, world, bar):
        self._world, self._bar = world, bar

    def __getattr__(self, name):
        return getattr(self._world, name)

    def run(self):
        shown = 0.0
        for ev in self._world.run():
            if ev.t - shown >= 0.1:
                self._bar.update(ev.t - shown)
                shown = ev.t
            yield ev


def print_summary(summaries: list[dict], out: Path) -> None:
    """Print a small table of recorded episodes and totals."""
    sim = sum(s['duration'] for s in summaries)
    wall = sum(s['wall'] for s in summaries)
    print(f'{"episode":<16}{"scenario":<11}{"seed":>6}{"sim s":>8}{"wall s":>8}{"contacts":>10}'
          '  materials heard')
    for s in summaries:
        print(f'{s["name"]:<16}{s["scenario"]:<11}{s["seed"]:>6}{s["duration"]:>8.1f}'
              f'{s["wall"]:>8.1f}{s["contacts"]:>10}  '
              f'{", ".join(m for m in s["materials"] if m != "gripper")}')
    size = sum(f.stat().st_size for s in summaries for f in Path(s['bag']).rglob('*') if f.is_file())
    print(f'{len(summaries)} episode(s), {sim:.1f} s simulated in {wall:.1f} s '
          f'(real-time factor {sim / max(wall, 1e-9):.2f}), {size / 1e6:.1f} MB of bags in {out}')


def _add_sim_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('simulation')
    g.add_argument('--width', type=_ranged(int, 16, 4096, 'width'), default=128,
                   help='wrist-camera image width [px]')
    g.add_argument('--height', type=_ranged(int, 16, 4096, 'height'), default=128,
                   help='wrist-camera image height [px]')
    g.add_argument('--fps', type=_ranged(float, 0, 240, 'fps', lo_open=True), default=30.0,
                   help='camera frame rate [Hz]')
    g.add_argument('--sample-rate', type=_ranged(int, 8000, 192000, 'sample rate'), default=16000,
                   help='microphone sample rate [Hz]')
    g.add_argument('--actions', type=_ranged(int, 1, 1000, 'actions'), default=None,
                   help='scripted actions per episode (default: the scenario\'s)')
    g.add_argument('--sound-seed-offset', type=int, default=0,
                   help='draw the sound from seed SEED+i+OFFSET instead of SEED+i: the same scenes '
                        'and motions, a second take of their sound (modes, strikes, noise)')
    g.add_argument('--faults', type=_ranged(float, 0, 1, 'faults'), default=0.0,
                   help='share of the actions that go wrong after their paths were published '
                        '(target moved or removed, an obstacle on the path, a grasped object '
                        'slips), in [0, 1]; recorded in the ground truth\'s "faults" (default 0: '
                        'none)')


def _sim_options(args) -> dict:
    options = dict(width=args.width, height=args.height, fps=args.fps, sample_rate=args.sample_rate)
    if args.actions is not None:
        options['n_actions'] = args.actions
    if getattr(args, 'sound_seed_offset', 0):
        options['sound_seed_offset'] = args.sound_seed_offset
    if getattr(args, 'faults', 0):
        options['faults'] = args.faults
    return options


class Simulate:
    """``hearing-hands simulate``: record sound-world episodes as rosbag2 + ground truth."""

    DESCRIPTION = ('Simulate randomized table-top scenes in which a gripper taps, hits, scrapes, '
                   'pushes and drops objects of different materials, and record each episode as '
                   'a rosbag2 (MCAP) folder with the robot topics, plus ground truth '
                   '(NAME.truth.json) and instance masks (NAME.masks.npz). Episode i uses seed '
                   'SEED+i.')
    EXAMPLES = ('examples:\n'
                f'  {PROG} simulate --episodes 20 --seed 0 --out data/sim\n'
                f'  {PROG} simulate --episodes 5 --seed 100 --out data/ambiguous --scenario ambiguous\n'
                f'  {PROG} simulate --episodes 1 --out /tmp/small --width 64 --height 64 --actions 2 --overwrite')

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument('--episodes', type=_ranged(int, 1, 100000, 'episodes'), default=1,
                       help='number of episodes')
        p.add_argument('--seed', type=int, default=0, help='seed of the first episode')
        p.add_argument('--out', type=Path, required=True, help='output folder')
        p.add_argument('--scenario', choices=['mixed', 'ambiguous', 'alternating'], default='mixed',
                       help='mixed: varied materials and actions; ambiguous: strikes between two '
                            'adjacent objects of different materials, a few millimetres apart in '
                            'height, where only the sound tells which one was touched; '
                            'alternating: the same pair, each object struck alone first, then '
                            'strikes at the gap and lone strikes in turn')
        p.add_argument('--overwrite', action='store_true', help='replace existing episodes')
        p.add_argument('--quiet', action='store_true', help='no progress bar')
        _add_sim_options(p)

    @staticmethod
    def run(args) -> int:
        summaries = simulate_episodes(args.out, args.episodes, args.seed, [args.scenario],
                                      overwrite=args.overwrite, quiet=args.quiet,
                                      **_sim_options(args))
        print_summary(summaries, args.out)
        return 0


class Demo:
    """``hearing-hands demo``: a short tour (simulate a few episodes, write a report)."""

    DESCRIPTION = ('Simulate a few short episodes (alternating the mixed and ambiguous '
                   'scenarios), record them as rosbag2, and write a report with wrist-camera '
                   'contact sheets and spectrograms marked with the ground-truth contacts; then '
                   'run the detector live on the simulated robot, predict recorded paths\' '
                   'sounds, and run the execution monitor live on a normal and a faulty tap. '
                   'Re-running replaces the previous demo episodes in the same folder.')
    EXAMPLES = f'examples:\n  {PROG} demo\n  {PROG} demo --out /tmp/demo --episodes 4'

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument('--out', type=Path, default=Path('out/demo'), help='output folder')
        p.add_argument('--episodes', type=_ranged(int, 1, 100, 'episodes'), default=2,
                       help='number of episodes')
        p.add_argument('--seed', type=int, default=0, help='seed of the first episode')
        p.add_argument('--quiet', action='store_true', help='no progress bar')
        _add_sim_options(p)
        p.set_defaults(actions=4)

    @staticmethod
    def run(args) -> int:
        from hearing_hands_ros.report import write_report
        summaries = simulate_episodes(args.out / 'episodes', args.episodes, args.seed,
                                      ['mixed', 'ambiguous'], overwrite=True, quiet=args.quiet,
                                      prefix='demo', **_sim_options(args))
        print_summary(summaries, args.out / 'episodes')
        bags = [s['bag'] for s in summaries]
        report = write_report(bags, args.out / 'report')
        print(f'report: {report}')
        html = report.with_suffix('.html')
        if html.exists():
            print(f'open in a browser: file://{html.resolve()}')
        for title, run in (('sounding-object detector', Demo.detector),
                           ('contact-sound predictor', Demo.predictor),
                           ('execution monitor', Demo.monitor)):
            print(f'--- {title}')
            for line in run(bags, args):
                print(line)
        return 0

    @staticmethod
    def detector(bags, args) -> list[str]:
        """The detector live on the sim robot (real nodes on loopback DDS): detections vs truth."""
        from hearing_hands_ros.paths import model_path
        model = model_path('sounding_object_detector.onnx')
        if not model.is_file():
            return [f'skipped: no shipped detector model at {model}']
        from hearing_hands_ros.demo import demo_live
        return [f'wrote {p}' for p in demo_live(args.out / 'detector', model, seed=args.seed)]

    @staticmethod
    def monitor(bags, args) -> list[str]:
        """contact_monitor live on the sim robot: a normal hit, then the same hit with its
        target taken away (real nodes on loopback DDS)."""
        from hearing_hands_ros.planner import default_model_path
        if not default_model_path().with_name('contact_events.json').is_file():
            return ['skipped: no shipped contact_events model']
        from hearing_hands_ros.demo import MONITOR_SCRIPT, demo_monitor
        files, got = demo_monitor(args.out / 'monitor', seed=args.seed)
        lines = [f'{t:>6.2f} s  {a:<28} {s:<12} {an}' for t, a, s, an in got['rows']]
        return [f'script: {MONITOR_SCRIPT}', *lines] + [f'wrote {p}' for p in files]

    @staticmethod
    def predictor(bags, args) -> list[str]:
        """Predict each planned motion's sound before it runs; compare with the recording."""
        from hearing_hands_ros.planner import default_model_path
        model = default_model_path()
        if not model.is_file():
            return [f'skipped: no shipped predictor model at {model}']
        from hearing_hands_ros.demo import demo_side_by_side
        files = demo_side_by_side(bags, args.out / 'predictor', model)
        return [f'wrote {len(files)} files (spectrograms + WAVs) to {args.out / "predictor"}']


if __name__ == '__main__':
    sys.exit(main())
