"""CLI sub-commands, one module per pipeline stage; each exposes ``register(app)``."""

from lstmforge.commands import (
    compress,
    demo,
    emg,
    export_c,
    nowcast,
    report,
    rtl,
    simulate,
    speech,
)

REGISTRARS = [
    nowcast.register,
    speech.register,
    emg.register,
    compress.register,
    simulate.register,
    rtl.register,
    export_c.register,
    report.register,
    demo.register,
]
