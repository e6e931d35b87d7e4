"""Which LSMs start: the list lsm= gives on the command line (the last one), else CONFIG_LSM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kpolicy.cmdline.passes import Event

# Event stages in which a registered handler actually ran.
HANDLER_STAGES = ("early", "main", "setup")


def lsm_listed(name: str, values: Mapping[str, str], events: Sequence[Event]) -> tuple[bool, str]:
    """Whether the LSM NAME is in the list that starts LSMs: lsm= if the command line has one
    (the last), else CONFIG_LSM; and the reason."""
    lsm_list, origin = values.get("LSM", ""), "CONFIG_LSM"
    for ev in events:
        if ev.name == "lsm" and ev.stage in HANDLER_STAGES:
            lsm_list, origin = ev.value or "", "lsm= on the command line"
    started = name in [n.strip() for n in lsm_list.split(",")]
    return started, f"the {name} LSM is {'' if started else 'not '}listed in {origin}"
