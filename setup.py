"""ament_python package: `colcon build` on a robot, or `pip install -e .` in the venv (scripts/setup.sh)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'hearing_hands_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/models', glob('models/*.onnx') + glob('models/*.json')
         + glob('models/*.pt')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='hearing_hands_ros maintainers',
    maintainer_email='maintainers@hearing-hands-ros.dev',
    description='Ears for a robot\'s hands: sounding-object detection and contact-sound prediction.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'hearing-hands = hearing_hands_ros.cli:main',
            'hearing_hands = hearing_hands_ros.cli:main',
            'sim_robot = hearing_hands_ros.nodes.sim_robot:main',
            'sounding_object_detector = hearing_hands_ros.nodes.sounding_object_detector:main',
            'contact_sound_predictor = hearing_hands_ros.nodes.contact_sound_predictor:main',
            'contact_monitor = hearing_hands_ros.nodes.contact_monitor:main',
        ],
    },
)
