"""The sound world: randomized MuJoCo scenes, scripted gripper actions, modal contact sounds.

Import `hearing_hands_ros.sim.world` for `SoundWorld` / `SimConfig` (it imports MuJoCo)."""
