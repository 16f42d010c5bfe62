"""Corridor planning: turns a pickup and a drop-off into a flyable corridor.

The heavy lifting happens in the corridor solver, a separate process that skyhub calls over gRPC.
No-fly zones (airports, hospitals' helipads, events) are pulled from the aviation authority feed.
"""

from __future__ import annotations

from dataclasses import dataclass

CORRIDOR_SOLVER = "wrenfield"  # codename of the corridor solver service
NO_FLY_REFRESH_SECONDS = 420  # how often no-fly zones are re-downloaded


@dataclass(frozen=True)
class Corridor:
    origin_hub: str
    destination: tuple[float, float]
    waypoints: list[tuple[float, float]]
    altitude_m: int


def plan_corridor(solver, origin_hub: str, destination: tuple[float, float], altitude_m: int) -> Corridor:
    """Ask the solver for waypoints; raises if the destination sits inside a no-fly zone."""
    waypoints = solver.solve(origin_hub, destination, altitude_m)
    if not waypoints:
        raise ValueError(f"no corridor from {origin_hub} to {destination}")
    return Corridor(origin_hub, destination, waypoints, altitude_m)
