"""The training recipes (``recipes/*.args``) and the commands of ``recipes/README.md`` parse with
the real ``hearing-hands`` parser, so a recipe can never name a flag, a choice or a value the CLI
does not take; and they agree with what the shipped models' metadata records. Nothing runs."""
import json
import shlex
from pathlib import Path

import pytest

from hearing_hands_ros import cli

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / 'recipes'
COMMAND_RECIPES = sorted(RECIPES.glob('*.args'))
INCLUDES = sorted((RECIPES / 'include').glob('*.args'))


def command_of(recipe: Path) -> list[str]:
    """The command a recipe's first line names: ``# hearing-hands VERB [TARGET] @recipes/NAME``."""
    words = recipe.read_text().splitlines()[0].lstrip('#').split()
    assert words[0] == 'hearing-hands' and words[-1] == f'@recipes/{recipe.name}', words
    return words[1:-1]


def parse(argv: list[str], capsys=None):
    """``argv`` parsed as ``hearing-hands`` parses it (only the chosen command's module loaded)."""
    chosen = next(a for a in argv if a in cli.COMMANDS or a in cli.GROUPS)
    target = argv[argv.index(chosen) + 1] if chosen in cli.GROUPS else None
    try:
        return cli.build_parser(chosen, target).parse_args(argv)
    except SystemExit:
        err = capsys.readouterr().err if capsys else ''
        pytest.fail(f'hearing-hands {" ".join(argv)} does not parse: {err}')


def readme_commands() -> list[list[str]]:
    """The ``hearing-hands`` command lines of the README's bash blocks (no comments, no ``&``)."""
    commands, in_block = [], False
    for line in (RECIPES / 'README.md').read_text().splitlines():
        if line.startswith('```'):
            in_block = line.strip() == '```bash'
        elif in_block and line.startswith('hearing-hands '):
            words = [w for w in shlex.split(line, comments=True) if w != '&']
            commands.append(words[1:])
    return commands


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)      # recipes name data, runs and includes from the repository root


def test_there_are_recipes_for_every_step():
    names = {p.stem for p in COMMAND_RECIPES}
    assert {'simulate_train', 'simulate_test', 'train_detector', 'train_look_match',
            'train_predictor_flow', 'train_predictor_vocoder', 'export_detector',
            'export_look_match', 'export_predictor', 'evaluate_detector',
            'evaluate_predictor_test'} <= names


@pytest.mark.parametrize('recipe', COMMAND_RECIPES, ids=lambda p: p.name)
def test_recipe_parses(recipe, at_root, capsys):
    command = command_of(recipe)
    args = parse(command + [f'@recipes/{recipe.name}'], capsys)
    assert args.command == command[0]
    assert callable(args._run)


def test_readme_names_every_recipe_and_its_commands_parse(at_root, capsys):
    commands = readme_commands()
    named = {w[len('@recipes/'):] for c in commands for w in c if w.startswith('@recipes/')}
    assert named == {p.name for p in COMMAND_RECIPES}
    for command in commands:
        recipe = RECIPES / next(w for w in command if w.startswith('@'))[len('@recipes/'):]
        assert command[:len(command_of(recipe))] == command_of(recipe), command
        parse(command, capsys)


def test_every_include_is_used():
    text = '\n'.join(p.read_text() for p in COMMAND_RECIPES + INCLUDES)
    for inc in INCLUDES:
        assert f'@recipes/include/{inc.name}' in text, inc


def test_detector_recipes_train_on_mixed_episodes_and_choose_on_labelled_ones(at_root, capsys):
    meta = json.loads((ROOT / 'models' / 'sounding_object_detector.json').read_text())
    slots = parse(['train', 'detector', '@recipes/train_detector.args'], capsys)
    assert len(slots.data) == 63 and len(slots.val) == 21          # 220 and 50 episodes
    assert not set(slots.data) & set(slots.val)
    assert slots.variant == meta['variant'] and slots.num_slots == meta['num_slots']
    assert (slots.image_size, slots.n_mels, slots.n_fft, slots.hop) == (
        meta['image_size'], meta['n_mels'], meta['n_fft'], meta['hop'])
    for name, variant in (('vision_only', 'vision_only'), ('global_av', 'global_av')):
        args = parse(['train', 'detector', f'@recipes/train_detector_{name}.args'], capsys)
        bundle = ROOT / 'models' / f'sounding_object_detector_{name}.json'
        shipped = json.loads(bundle.read_text())
        assert args.variant == shipped['variant'] == variant
        assert args.data == slots.data and args.cache == 'runs/detector/dataset.npz'
    look = parse(['train', 'look-match', '@recipes/train_look_match.args'], capsys)
    assert look.data == slots.data and look.val == slots.val + ['data/sim/train_amb_seg']
    assert meta['look_match']['weight'] in look.weights


def test_predictor_recipes_are_one_run_split_over_two_processes(at_root, capsys):
    from hearing_hands_ros.train.predictor import STAGES
    flow = vars(parse(['train', 'predictor', '@recipes/train_predictor_flow.args'], capsys))
    rest = vars(parse(['train', 'predictor', '@recipes/train_predictor_vocoder.args'], capsys))
    stages = flow.pop('stages').split(',') + rest.pop('stages').split(',')
    assert sorted(stages) == sorted(STAGES)
    assert flow == rest
    shipped = json.loads((ROOT / 'models' / 'contact_sound_predictor.json').read_text())
    data = shipped['training_data']
    assert [Path(b).name for b in flow['data']] == [Path(b).name for b in data['bags']]
    assert flow['holdout_combos'].split(',') == data['holdout_combos']
    assert flow['view_looks'] and shipped['look_dim'] > 0


def test_the_shipped_recipes_use_no_experimental_switch(at_root):
    """``train``/``export`` switches in the group "experimental (no shipped model uses these)" say
    so in their help, and every recipe of a shipped model leaves them at their defaults."""
    import importlib
    seen = 0
    for recipe in COMMAND_RECIPES:
        command = command_of(recipe)
        if command[0] not in ('train', 'export'):
            continue
        parser = cli._Parser(prog=' '.join(command))
        importlib.import_module(cli.GROUPS[command[0]][1][command[1]]).add_arguments(parser)
        args = parser.parse_args([f'@recipes/{recipe.name}'])
        for group in parser._action_groups:
            if group.title and group.title.startswith('experimental'):
                for action in group._group_actions:
                    assert action.help.startswith('[experimental]'), action.option_strings
                    assert getattr(args, action.dest) == action.default, (recipe.name, action.dest)
                    seen += 1
    assert seen >= 5 * 2 + 4 * 3                  # predictor (2 recipes) and detector (3) at least


def test_argument_files_skip_comments_and_blank_lines_and_nest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path('inner.args').write_text('# the folder\n--out  data/x  \n')
    Path('outer.args').write_text('# a recipe\n\n--episodes 3\n   \n@inner.args\n--seed 7\n')
    args = parse(['simulate', '@outer.args', '--quiet'])
    assert (args.episodes, args.seed, str(args.out), args.quiet) == (3, 7, 'data/x', True)


def test_a_missing_or_wrong_argument_file_is_a_one_line_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path('bad.args').write_text('--out x\n--no-such-flag 1\n')
    for argv in (['simulate', '@missing.args'], ['simulate', '@bad.args']):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('hearing-hands: error: ')
