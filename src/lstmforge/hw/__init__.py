"""Hardware back ends of the compressed model: the cycle-level ESE simulator (:mod:`.sim`)."""

from lstmforge.hw.sim.config import SimConfig, load_config, load_preset
from lstmforge.hw.sim.report import SimReport
from lstmforge.hw.sim.simulate import simulate

__all__ = ["SimConfig", "SimReport", "load_config", "load_preset", "simulate"]
