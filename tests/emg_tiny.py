"""A tiny synthetic EMG setup (one subject, one movement, six repetitions) shared by tests."""

from lstmforge.data.emg_synthetic import SyntheticEMGConfig
from lstmforge.tasks.emg.dataset import EMGDataConfig, build_features

TINY = EMGDataConfig(
    synthetic=SyntheticEMGConfig(
        n_subjects=1, n_repetitions=6, movements=("index_flexion",), rest_s=1.0, hold_s=1.0
    )
)


def tiny_subject():
    """The features of :data:`TINY`'s only subject."""
    return build_features(TINY)[0]
