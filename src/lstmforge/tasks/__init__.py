"""Applications: one package per task (``nowcast``, ``speech``, ``emg``).

Each task registers a :class:`~lstmforge.tasks.interface.TaskSpec` so that task-agnostic
stages (compression with retraining, evaluation from an ``.lfz`` artifact, the demo) can load
any task's checkpoint, rebuild its data and score it: ``get_task(name)``.
"""

from lstmforge.tasks.interface import TaskSpec, get_task, task_names

__all__ = ["TaskSpec", "get_task", "task_names"]
