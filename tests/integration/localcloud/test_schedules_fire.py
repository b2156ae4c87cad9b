"""Firing a schedule invokes its target function with the schedule's Input."""

from __future__ import annotations

import pytest

from tests.integration.localcloud.conftest import recorded
from threadline.local.cloud import LocalCloud

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["Tick", "TickFunctionTick"])
def test_a_fired_schedule_invokes_its_target_with_its_input(lcloud: LocalCloud, name: str) -> None:
    # Given the ScheduleV2 event "Tick" of TickFunction with Input {"report": "weekly"}

    # When it is fired by its event name or its logical id
    result = lcloud.fire(name).wait().last

    # Then TickFunction ran once with exactly that input
    assert not result.errored
    assert result.payload == {"received": '{"report": "weekly"}', "function": "lct-TickFunction"}
    assert [(n, event) for n, event, _ in recorded()] == [("tick", {"report": "weekly"})]


def test_an_unknown_schedule_is_refused(lcloud: LocalCloud) -> None:
    # Given a name no schedule has
    # When it is fired / Then the error names the known schedules
    with pytest.raises(KeyError, match="TickFunctionTick"):
        lcloud.fire("Nope")
