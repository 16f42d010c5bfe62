"""Checks on a refused CLI command, shared by the ``source add`` validation and confinement tests."""

from __future__ import annotations


def refused(result, *needles: str) -> str:
    """Assert the command failed and its output names every needle; the output, for more checks."""
    text = result.stdout + result.stderr
    assert result.exit_code != 0, f"accepted: {text}"
    for needle in needles:
        assert needle in text, text
    return text
