"""Start the simulated robot (sound world) with config/sim_robot.yaml.

Usage:

    ros2 launch hearing_hands_ros sim_robot.launch.py
    ros2 launch hearing_hands_ros sim_robot.launch.py params_file:=/path/my_sim.yaml namespace:=robot1
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory('hearing_hands_ros'),
                                  'config', 'sim_robot.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='YAML file with the sim_robot parameters'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the simulated robot topics'),
        Node(
            package='hearing_hands_ros',
            executable='sim_robot',
            name='sim_robot',
            namespace=LaunchConfiguration('namespace'),
            parameters=[LaunchConfiguration('params_file')],
            output='screen',
            emulate_tty=True,
        ),
    ])
