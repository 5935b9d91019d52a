"""Finger kinematics from surface EMG: LE-ConvMN (Guo et al., J. Neural Eng. 2021) and baselines.

``dataset`` builds features for the synthetic data or NinaPro DB2/DB8, ``datamodule`` and
``module`` train through :func:`lstmforge.training.fit`, ``baselines`` holds ridge and sparse-GP
regression, ``evaluate`` the per-subject/per-joint metrics, ``stream`` the causal
window-by-window run, ``plots`` the trajectory figures and ``spec`` the task registration.
"""
