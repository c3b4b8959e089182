"""Energy and emissions of a training or inference phase, measured with CodeCarbon.

The offline tracker needs a country (its grid's carbon intensity) and never touches the
network, so a run without internet does not wait. CodeCarbon reports kg CO2eq; we report
grams, the paper's unit (Table 1: 0.1661 gCO2eq).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class EnergyReading:
    """What one measured phase cost. Filled in when the `measure` block exits."""

    energy_kwh: float = 0.0
    emissions_g: float = 0.0
    duration_s: float = 0.0


@dataclass(frozen=True)
class EnergyMeter:
    """Settings of CodeCarbon's offline tracker (`energy:`, conf/energy/codecarbon.yaml).

    Args:
        enabled: False skips CodeCarbon (energy and emissions are reported as 0).
        country_iso_code: 3-letter ISO code of the grid the machine draws from.
        measure_power_secs: how often CodeCarbon samples power during a phase.
        output_dir: where CodeCarbon writes its emissions.csv; None writes nothing.
        tracking_mode: "process" (this process's share, right for parallel trials) or
            "machine" (everything the machine runs).
    """

    enabled: bool = True
    country_iso_code: str = "DEU"
    measure_power_secs: float = 15.0
    output_dir: str | None = None
    tracking_mode: str = "process"

    def __post_init__(self) -> None:
        if len(self.country_iso_code) != 3 or not self.country_iso_code.isalpha():
            raise ValueError(
                f"energy.country_iso_code={self.country_iso_code!r} is not a 3-letter ISO code "
                "(e.g. DEU, USA, FRA)"
            )
        if self.measure_power_secs <= 0:
            raise ValueError(
                f"energy.measure_power_secs={self.measure_power_secs} must be > 0 seconds"
            )
        if self.tracking_mode not in ("machine", "process"):
            raise ValueError(
                f"energy.tracking_mode={self.tracking_mode!r}; allowed: machine, process"
            )

    @contextmanager
    def measure(self, phase: str) -> Iterator[EnergyReading]:
        """Measure the block: `with meter.measure("train") as reading: ...`."""
        reading = EnergyReading()
        start = time.perf_counter()
        tracker = self._tracker(phase) if self.enabled else None
        if tracker is not None:
            tracker.start()
        try:
            yield reading
        finally:
            reading.duration_s = time.perf_counter() - start
            if tracker is not None:
                emissions_kg = tracker.stop() or 0.0
                data = tracker.final_emissions_data
                reading.emissions_g = 1000.0 * emissions_kg
                reading.energy_kwh = float(data.energy_consumed) if data else 0.0

    def _tracker(self, phase: str):
        from codecarbon import OfflineEmissionsTracker  # deferred: 0.2 s import, threads

        return OfflineEmissionsTracker(
            project_name=phase,
            country_iso_code=self.country_iso_code,
            measure_power_secs=self.measure_power_secs,
            tracking_mode=self.tracking_mode,
            save_to_file=self.output_dir is not None,
            output_dir=self.output_dir or ".",
            log_level=logging.ERROR,
            # parallel trials (joblib, SLURM array) each run their own tracker
            allow_multiple_runs=True,
        )
