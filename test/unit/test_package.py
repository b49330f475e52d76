"""Packaging checks (no ROS needed): package.xml, setup.py data files, launch files, configs."""
import ast
import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PKG = 'hearing_hands_ros'
#: Top-level import names that are ROS packages (must be <exec_depend>s), besides *_msgs.
ROS_IMPORTS = {'rclpy', 'ament_index_python', 'cv_bridge', 'launch', 'launch_ros',
               'rcl_interfaces', 'builtin_interfaces', 'rosidl_runtime_py', 'tf2_ros',
               'message_filters', 'rosbag2_py', 'image_transport'}


@pytest.fixture(scope='module')
def setup_kwargs():
    """The keyword arguments setup.py passes to setuptools.setup (run in the repo root)."""
    import os
    import setuptools
    captured = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with mock.patch.object(setuptools, 'setup', lambda **kw: captured.update(kw)):
            exec(compile((ROOT / 'setup.py').read_text(), 'setup.py', 'exec'), {'__name__': '__main__'})
    finally:
        os.chdir(cwd)
    return captured


def _package_xml():
    return ET.parse(ROOT / 'package.xml').getroot()


def _imported_top_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split('.')[0])
    return names


def test_package_xml_format_and_name():
    root = _package_xml()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == PKG
    assert root.find('export/build_type').text == 'ament_python'
    assert (ROOT / 'resource' / PKG).exists()


def test_package_xml_declares_every_imported_ros_package():
    deps = {e.text.strip() for e in _package_xml() if e.tag in ('exec_depend', 'depend')}
    files = list((ROOT / PKG).rglob('*.py')) + list((ROOT / 'launch').glob('*.py'))
    missing = {}
    for f in files:
        for name in _imported_top_names(f):
            if (name.endswith('_msgs') or name in ROS_IMPORTS) and name not in deps:
                missing.setdefault(name, []).append(str(f.relative_to(ROOT)))
    assert not missing, f'imported but not <exec_depend> in package.xml: {missing}'


def test_setup_data_files_cover_launch_and_config(setup_kwargs):
    assert setup_kwargs['name'] == PKG
    installed = {(dest, Path(src).as_posix()) for dest, srcs in setup_kwargs['data_files']
                 for src in srcs}
    for folder, pattern in (('launch', '*.py'), ('config', '*.yaml')):
        files = sorted((ROOT / folder).glob(pattern))
        assert files, f'no {folder}/{pattern}'
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            assert (f'share/{PKG}/{folder}', rel) in installed, f'{rel} is not installed'


def _console_scripts(setup_kwargs) -> dict[str, str]:
    scripts = setup_kwargs['entry_points']['console_scripts']
    return dict(tuple(p.strip() for p in s.split('=', 1)) for s in scripts)


@pytest.mark.parametrize('launch_file', sorted((ROOT / 'launch').glob('*.launch.py')),
                         ids=lambda p: p.name)
def test_launch_file_compiles_and_names_existing_executables(launch_file, setup_kwargs):
    source = launch_file.read_text()
    compile(source, str(launch_file), 'exec')  # launch_ros is not importable here
    assert 'def generate_launch_description' in source
    scripts = _console_scripts(setup_kwargs)
    for exe in re.findall(r"executable=['\"](\w+)['\"]", source):
        assert exe in scripts, f'{launch_file.name} starts {exe!r}, which setup.py does not install'
    for cfg in re.findall(r"'config',\s*'([\w.]+\.yaml)'", source):
        assert (ROOT / 'config' / cfg).exists(), cfg


@pytest.mark.parametrize('config_file', sorted((ROOT / 'config').glob('*.yaml')),
                         ids=lambda p: p.name)
def test_config_matches_node_parameters(config_file, setup_kwargs):
    """Top-level key = a node installed by setup.py; every parameter is in that node's PARAMS."""
    data = yaml.safe_load(config_file.read_text())
    scripts = _console_scripts(setup_kwargs)
    assert len(data) == 1, 'one node per config file'
    (node_name, body), = data.items()
    assert node_name in scripts, f'{config_file.name}: no node executable named {node_name!r}'
    params = body['ros__parameters']
    module = importlib.import_module(scripts[node_name].split(':')[0])
    declared = module.PARAMS  # name -> (default, description), passed to declare_params
    unknown = set(params) - set(declared)
    assert not unknown, f'{config_file.name}: parameters not declared by {node_name}: {unknown}'
    for name, value in params.items():
        default = declared[name][0]
        # ROS 2 rejects e.g. 1 for a double parameter: the YAML type must be the default's.
        assert type(value) is type(default), \
            f'{node_name}.{name}: {value!r} does not match the type of default {default!r}'
        assert declared[name][1], f'{node_name}.{name} has no description'
