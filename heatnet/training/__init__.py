"""Training, as a small package:

    budget.py  a run's budget, typed (Epochs | Steps | Minutes), and its conversion into steps
    setup.py   a new or resumed run: settings, data, model, the run folder, checkpoints
    loop.py    the loop, top to bottom: steps, validation, best.pt, the test once at the end
    result.py  RunResult, written to and read from metrics.json in one place
    seeds.py   several seeds under one step budget
    step.py    one optimizer step

    result = train("experiments/unet_kl.py", dataclasses.replace(settings, epochs=3))
    result = resume(Path("runs/unet_kl/<time>"), {"epochs": 6})   # extends a finished run
"""
from heatnet.training.budget import (Budget, Epochs, Minutes, Steps, budget_of, describe, steps_for_minutes,
                                     total_steps, with_budget)
from heatnet.training.loop import finish, resume, train, train_epoch, validate_and_save
from heatnet.training.result import UNFINISHED, RunResult, read_result
from heatnet.training.seeds import train_seeds
from heatnet.training.setup import BUDGET_SETTINGS, RESUMABLE_SETTINGS, Run, start_resumed, start_run, \
    trained_settings
from heatnet.training.step import NonFiniteLoss, make_optimizer, training_step

__all__ = ["BUDGET_SETTINGS", "Budget", "Epochs", "Minutes", "NonFiniteLoss", "RESUMABLE_SETTINGS", "Run",
           "RunResult", "Steps", "UNFINISHED", "budget_of", "describe", "finish", "make_optimizer", "read_result",
           "resume", "start_resumed", "start_run", "steps_for_minutes", "total_steps", "train", "train_epoch",
           "train_seeds", "trained_settings", "training_step", "validate_and_save", "with_budget"]
