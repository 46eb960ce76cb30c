"""The cleaning pipeline on its own, against values worked out by hand."""

from __future__ import annotations

import pytest

from custom_components.hearth.cleaning import Calibration, Cleaner, HampelFilter


def _primed(values: list[float], window: int = 5, tolerance: float = 0.5) -> HampelFilter:
    hampel = HampelFilter(window, tolerance)
    for value in values:
        hampel.accept(value)
    return hampel


@pytest.mark.parametrize(
    ("candidate", "accepted"),
    [
        # Window [10 12 11 13 9]: median 11, |deviations| [1 1 0 2 2], MAD 1, so the
        # threshold is 3 * 1.4826 * 1 = 4.4478.
        (15.4, True),
        (15.5, False),
        (6.6, True),
        (6.5, False),
    ],
)
def test_hampel_threshold(candidate: float, accepted: bool) -> None:
    """Three scaled MADs either side of the median."""
    assert _primed([10, 12, 11, 13, 9]).accept(candidate) is accepted


def test_hampel_tolerance_floor_when_the_window_is_flat() -> None:
    """MAD 0 would reject any change at all; the per-quantity floor lets noise through."""
    assert _primed([20.0, 20.0, 20.0]).accept(20.5) is True
    assert _primed([20.0, 20.0, 20.0]).accept(20.6) is False


def test_hampel_needs_three_samples() -> None:
    """With fewer than three readings there is no basis for calling one an outlier."""
    assert _primed([20.0, 20.0]).accept(90.0) is True


def test_pipeline_order_bounds_filter_calibration() -> None:
    """Bounds and the filter judge raw values; calibration is applied to accepted ones."""
    cleaner = Cleaner(
        calibration={"temperature": Calibration(offset=-2.0, multiplier=1.1)}, filter_window=5
    )
    assert cleaner.clean({"temperature": 20.0, "humidity": 50.0}) == {
        "temperature": pytest.approx(20.0),  # 20 * 1.1 - 2
        "humidity": 50.0,
    }
    assert cleaner.clean({"humidity": 100.5, "temperature": -40.0}) == {
        "temperature": pytest.approx(-46.0)  # -40 is the sensor limit, still plausible
    }
    assert cleaner.stats.implausible == 1
    cleaner.clean({"temperature": 20.0})
    assert cleaner.clean({"temperature": 60.0}) == {}  # window [20 -40 20]: median 20
    assert (cleaner.stats.outliers, cleaner.stats.rejected) == (1, 2)


def test_without_filter_every_plausible_value_passes() -> None:
    """The filter is opt-in."""
    cleaner = Cleaner()
    for value in (20.0, 20.0, 20.0, 80.0):
        assert cleaner.clean({"temperature": value}) == {"temperature": value}
    assert cleaner.stats.rejected == 0
