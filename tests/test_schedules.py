"""Learning-rate schedules: closed forms, functions of the step alone."""
import math

import pytest

from heatnet.schedules import Constant, Cosine, Exponential, StepDecay, lr_factor


def test_warm_up_then_half_a_cosine():
    # 10 steps per epoch, half an epoch of warm-up, 100 steps in all
    assert lr_factor(Cosine(), 0.5, 0, 100, 10) == pytest.approx(1 / 5 * 0.5 * (1 + math.cos(0)))
    assert lr_factor(Cosine(), 0.5, 4, 100, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 100)))
    assert lr_factor(Cosine(), 0.5, 50, 100, 10) == pytest.approx(0.5)
    assert lr_factor(Cosine(), 0.5, 100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(Cosine(), 0.0, 0, 100, 10) == 1.0  # no warm-up


def test_step_exponential_and_constant_decays():
    assert [StepDecay(every_epochs=2, gamma=0.5)(step, 100, 10) for step in (0, 19, 20, 45)] == [1, 1, 0.5, 0.25]
    assert Exponential(gamma=0.9)(15, 100, 10) == pytest.approx(0.9**1.5)
    assert Constant()(99, 100, 10) == 1.0


def test_a_schedule_is_the_same_for_the_same_step():
    first = [lr_factor(Cosine(), 0.5, step, 37, 8) for step in range(37)]
    assert first == [lr_factor(Cosine(), 0.5, step, 37, 8) for step in range(37)]
    assert all(a >= b for a, b in zip(first[4:], first[5:]))  # after warm-up it only decreases


def test_a_one_step_budget_and_step_decay_through_lr_factor():
    assert Cosine()(0, 1, 1) == 1.0 and Cosine()(1, 1, 1) == pytest.approx(0.0, abs=1e-12)  # one step: the whole half cosine
    assert Cosine()(5, 0, 1) == pytest.approx(0.0, abs=1e-12)  # an empty budget is over
    # lr_factor hands the schedule the epoch length: 10 steps per epoch, halving every 2 epochs, 1 epoch of warm-up
    assert [lr_factor(StepDecay(every_epochs=2, gamma=0.5), 1.0, step, 100, 10) for step in (4, 9, 25, 40)] == \
        [pytest.approx(0.5), 1.0, 0.5, 0.25]
    assert lr_factor(Exponential(gamma=0.5), 0.0, 20, 100, 10) == pytest.approx(0.25)
