"""The restart-intensity rule alone: a pure function, no threads."""

from __future__ import annotations

import pytest

from supervisors import exceeds_intensity


def test_first_restart_is_within_intensity() -> None:
    restarts, exceeded = exceeds_intensity([], now=10.0, intensity=3, period=5.0)

    assert restarts == [10.0]
    assert not exceeded


def test_restarts_up_to_intensity_within_period_are_allowed() -> None:
    restarts, exceeded = exceeds_intensity([1.0, 2.0], now=3.0, intensity=3, period=5.0)

    assert restarts == [1.0, 2.0, 3.0]
    assert not exceeded


def test_one_restart_more_than_intensity_within_period_exceeds_it() -> None:
    _, exceeded = exceeds_intensity([1.0, 2.0, 3.0], now=4.0, intensity=3, period=5.0)

    assert exceeded


def test_restarts_older_than_period_are_forgotten() -> None:
    restarts, exceeded = exceeds_intensity([1.0, 2.0, 3.0], now=7.5, intensity=3, period=5.0)

    assert restarts == [3.0, 7.5]
    assert not exceeded


def test_restart_exactly_one_period_old_still_counts() -> None:
    restarts, exceeded = exceeds_intensity([1.0, 2.0, 3.0], now=6.0, intensity=3, period=5.0)

    assert restarts == [1.0, 2.0, 3.0, 6.0]
    assert exceeded


def test_zero_intensity_exceeds_on_the_first_restart() -> None:
    assert exceeds_intensity([], now=0.0, intensity=0, period=1.0)[1]


def test_given_timestamps_are_not_modified() -> None:
    given = [1.0, 2.0]

    exceeds_intensity(given, now=30.0, intensity=3, period=5.0)

    assert given == [1.0, 2.0]


def test_steady_restarts_slower_than_the_limit_never_exceed_it() -> None:
    restarts: list[float] = []
    for n in range(100):
        restarts, exceeded = exceeds_intensity(restarts, now=n * 1.7, intensity=3, period=5.0)
        assert not exceeded


@pytest.mark.parametrize(("intensity", "period"), [(-1, 5.0), (3, 0.0), (3, -1.0)])
def test_negative_intensity_or_non_positive_period_is_rejected(
    intensity: int, period: float
) -> None:
    with pytest.raises(ValueError):
        exceeds_intensity([], now=0.0, intensity=intensity, period=period)
