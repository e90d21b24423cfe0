"""Glitch energy of a synthesized MAC: every accumulator value checked in the zero-delay
and the timing simulation, their outputs equal, the multipliers' glitches counted."""

from __future__ import annotations

import pytest

from rcm_gen.power import glitch
from rcm_gen.power.glitch import format_glitch, glitch_factors, glitch_report


@pytest.mark.synth
def test_mac8_glitch_energy(monkeypatch):
    """mac8 in every mode: every accumulator value of the timing simulation equals
    numpy's, every sampled output the zero-delay run's; the multipliers toggle more with
    delays (glitches) and their energy rises; the clock and input nets do not change.
    The report is cached, and the factors are its groups' that moved by more than the
    threshold."""
    from rcm_gen.presets import preset

    r = glitch_report(preset("mac8"), cycles=60, simulator="icarus")
    assert r["checked"]["timed"] == r["checked"]["zero_delay"] > 6 * 60
    assert r["checked"]["outputs_equal"] > 6 * 60
    assert len(r["modes"]) == 6
    for m in r["modes"]:
        assert m["toggles_per_cycle"]["timed"] > m["toggles_per_cycle"]["zero_delay"]
        assert m["extra_toggles_per_cycle"]["multipliers"] > 0
        assert m["factors"]["multipliers"] > 1.05
        assert m["extra_toggles_per_cycle"]["clock"] == 0
        assert m["extra_toggles_per_cycle"]["inputs"] == 0
    assert r["factors"]["clock"] == pytest.approx(1.0, abs=1e-9)
    assert r["sdf"]["annotated_instances"] > 500
    print("\n" + format_glitch(r, "mac8"))
    # cached: the factors come from the same report, without simulating again
    monkeypatch.setattr(glitch, "glitch_energy", lambda *a, **k: pytest.fail("recomputed"))
    for threshold in (0.05, 0.5):
        f = glitch_factors(preset("mac8"), cycles=60, threshold=threshold)
        assert f == {g: (v if abs(v - 1) > threshold else 1.0)
                     for g, v in r["factors"].items()}
    assert glitch_factors(preset("mac8"), cycles=60)["multipliers"] > 1.05
    with pytest.raises(ValueError, match=r"^Threshold must be a number in \[0, 1\), not 1$"):
        glitch_factors(preset("mac8"), cycles=60, threshold=1)
