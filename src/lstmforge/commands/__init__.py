"""CLI sub-commands, one module per pipeline stage; each exposes ``register(app)``."""

from lstmforge.commands import compress, demo, emg, nowcast, rtl, simulate, speech

REGISTRARS = [
    nowcast.register,
    speech.register,
    emg.register,
    compress.register,
    simulate.register,
    rtl.register,
    demo.register,
]
