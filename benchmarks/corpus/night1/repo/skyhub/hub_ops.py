"""Timings the hub robots use to plan turnarounds between flights."""

from __future__ import annotations


def battery_swap_seconds(model: str) -> int:
    """Time a hub robot needs to swap a drone battery, measured per airframe."""
    if model == "SK-4":
        return 74
    raise KeyError(f"unknown airframe {model!r}: add its swap time before it flies")


def turnaround_seconds(model: str, loading_seconds: int) -> int:
    """Battery swap plus loading; the two cannot overlap because the arm does both."""
    return battery_swap_seconds(model) + loading_seconds
