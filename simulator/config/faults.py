"""Faults injected during a run: an access point (or the server link) down, a server maintenance
pause, devices forced offline. Each is a scenario entry under ``faults:`` with a start and an end in
simulated seconds; each is recorded in the summary, and the run goes on.

- ``link_down``: the link's capacity is zero for the interval, so transfers across it stall and resume
  afterwards (TCP keeps the connection); with ``drop_transfers: true`` the transfers in flight are cut
  instead and their jobs are lost.
- ``server_pause``: the server takes nothing in and sends nothing out; arrivals, deadline timers and
  devices coming online wait in order and are handled when the pause ends.
- ``devices_offline``: the named devices (``name#i`` or index) go offline, losing the work in hand,
  exactly as with an availability trace.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, model_validator

from simulator.config.numbers import NoBoolNumbers


class _Fault(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "_Fault":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class LinkDown(_Fault):
    kind: Literal["link_down"]
    link: str = Field(description="an access point's name, or 'server' for both server links")
    drop_transfers: bool = False


class ServerPause(_Fault):
    kind: Literal["server_pause"]


class DevicesOffline(_Fault):
    kind: Literal["devices_offline"]
    devices: list[Union[int, str]] = Field(min_length=1, description="device indices or names like 'jetson-tx2#0'")


Fault = Annotated[Union[LinkDown, ServerPause, DevicesOffline], Field(discriminator="kind")]
