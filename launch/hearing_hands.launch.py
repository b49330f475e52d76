"""The full hearing_hands stack, on the simulated robot or on a real one.

    ros2 launch hearing_hands_ros hearing_hands.launch.py                # simulated robot
    ros2 launch hearing_hands_ros hearing_hands.launch.py use_sim:=false \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

With a real robot, start the microphone driver yourself with WAVE output, e.g. ros-drivers
audio_capture:  ros2 launch audio_capture capture_wave.launch.xml   (or `format:=wave`; its
default mp3 cannot be decoded). It publishes `audio/audio_stamped` and `audio/audio_info`,
the names our nodes listen to; change `audio_topic` / `audio_info_topic` for other drivers.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'hearing_hands_ros'


def generate_launch_description():
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    arg = LaunchConfiguration
    # Robot topic names (sources): our nodes subscribe to the contract names below and are
    # remapped onto these, so a real robot only needs these arguments changed.
    robot_remappings = [
        ('wrist_camera/image_raw', arg('image_topic')),
        ('wrist_camera/camera_info', arg('camera_info_topic')),
        ('audio/audio_stamped', arg('audio_topic')),
        ('audio/audio_info', arg('audio_info_topic')),
        ('gripper/pose', arg('pose_topic')),
        ('planned_path', arg('path_topic')),
        ('planned_gripper', arg('gripper_plan_topic')),
    ]
    return LaunchDescription([
        DeclareLaunchArgument('use_sim', default_value='true',
                              description='start sim_robot (true) or use a real robot (false)'),
        DeclareLaunchArgument('sim_params_file', default_value=os.path.join(config, 'sim_robot.yaml'),
                              description='sim_robot parameters'),
        DeclareLaunchArgument('image_topic', default_value='wrist_camera/image_raw',
                              description='wrist-camera sensor_msgs/Image topic'),
        DeclareLaunchArgument('camera_info_topic', default_value='wrist_camera/camera_info',
                              description='wrist-camera sensor_msgs/CameraInfo topic'),
        DeclareLaunchArgument('audio_topic', default_value='audio/audio_stamped',
                              description='audio_common_msgs/AudioDataStamped topic '
                                          '(audio_capture: audio/audio_stamped, format:=wave)'),
        DeclareLaunchArgument('audio_info_topic', default_value='audio/audio_info',
                              description='audio_common_msgs/AudioInfo topic '
                                          '(audio_capture: audio/audio_info)'),
        DeclareLaunchArgument('pose_topic', default_value='gripper/pose',
                              description='gripper geometry_msgs/PoseStamped topic'),
        DeclareLaunchArgument('joint_states_topic', default_value='gripper/joint_states',
                              description='gripper sensor_msgs/JointState topic (aperture)'),
        DeclareLaunchArgument('path_topic', default_value='planned_path',
                              description='planned gripper nav_msgs/Path topic'),
        DeclareLaunchArgument('gripper_plan_topic', default_value='planned_gripper',
                              description='the finger opening along each planned path '
                                          '(trajectory_msgs/JointTrajectory, stamped as the path; '
                                          'optional)'),

        # The simulated robot publishes the robot topics; a real robot's drivers do otherwise.
        Node(
            package=PACKAGE, executable='sim_robot', name='sim_robot',
            parameters=[arg('sim_params_file')],
            remappings=robot_remappings,
            condition=IfCondition(arg('use_sim')),
            output='screen', emulate_tty=True,
        ),

        DeclareLaunchArgument('detector', default_value='true',
                              description='start the sounding_object_detector node'),
        DeclareLaunchArgument('detector_params_file',
                              default_value=os.path.join(config, 'sounding_object_detector.yaml'),
                              description='sounding_object_detector parameters'),
        # Which object made that sound: wrist camera + wrist mic -> Detection2DArray.
        Node(
            package=PACKAGE, executable='sounding_object_detector',
            name='sounding_object_detector',
            parameters=[arg('detector_params_file')],
            remappings=[('image', arg('image_topic')),
                        ('camera_info', arg('camera_info_topic')),
                        ('joint_states', arg('joint_states_topic')),
                        ('gripper_pose', arg('pose_topic')),
                        ('audio_stamped', arg('audio_topic')),
                        ('audio_info', arg('audio_info_topic'))],
            condition=IfCondition(arg('detector')),
            output='screen', emulate_tty=True,
        ),
        DeclareLaunchArgument('predictor', default_value='true',
                              description='start the contact_sound_predictor node'),
        DeclareLaunchArgument('predictor_params_file',
                              default_value=os.path.join(config, 'contact_sound_predictor.yaml'),
                              description='contact_sound_predictor parameters'),
        # What will this motion sound like: planned_path + wrist camera -> predicted audio.
        Node(
            package=PACKAGE, executable='contact_sound_predictor',
            name='contact_sound_predictor',
            parameters=[arg('predictor_params_file')],
            remappings=[('planned_path', arg('path_topic')),
                        ('planned_gripper', arg('gripper_plan_topic')),
                        ('image', arg('image_topic')),
                        ('camera_info', arg('camera_info_topic')),
                        ('joint_states', arg('joint_states_topic'))],
            condition=IfCondition(arg('predictor')),
            output='screen', emulate_tty=True,
        ),
        DeclareLaunchArgument('monitor', default_value='true',
                              description='start the contact_monitor node'),
        DeclareLaunchArgument('monitor_params_file',
                              default_value=os.path.join(config, 'contact_monitor.yaml'),
                              description='contact_monitor parameters'),
        # Did this motion sound as planned: planned_path + wrist camera + wrist mic -> anomalies.
        Node(
            package=PACKAGE, executable='contact_monitor', name='contact_monitor',
            parameters=[arg('monitor_params_file')],
            remappings=[('planned_path', arg('path_topic')),
                        ('planned_gripper', arg('gripper_plan_topic')),
                        ('image', arg('image_topic')),
                        ('camera_info', arg('camera_info_topic')),
                        ('joint_states', arg('joint_states_topic')),
                        ('audio_stamped', arg('audio_topic')),
                        ('audio_info', arg('audio_info_topic'))],
            condition=IfCondition(arg('monitor')),
            output='screen', emulate_tty=True,
        ),
    ])
