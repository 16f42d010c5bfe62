"""The verdict on a pip-audit JSON report, for infra/ci/scan.sh.

pip-audit alone cannot tell "no known vulnerabilities" from "nothing could be checked": where the
vulnerability service is out of reach (PyPI's JSON API behind a mirror that only serves the
package index, OSV's host not resolvable) it skips every package and still exits 0. This gate
says which it was: a finding fails the build (exit 1), a clean audit passes, and an audit that
reached nothing passes with a loud warning, since CI must not fail on a service it cannot reach.

Usage: ``python infra/ci/audit_gate.py REPORT.json PIP_AUDIT_EXIT_CODE [STDERR_FILE]``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLEAN, FINDINGS = 0, 1


@dataclass(frozen=True)
class Verdict:
    """The exit code and what to print (``warning``: printed as a WARNING line)."""

    code: int
    message: str
    warning: bool = False


def _findings(audited: list[dict[str, Any]]) -> list[str]:
    """``name version: ID (fixed in ...)`` for every vulnerability of every audited package."""
    out = []
    for dep in audited:
        for vuln in dep.get("vulns") or []:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no release yet"
            out.append(f"{dep['name']} {dep.get('version', '?')}: {vuln.get('id')} (fixed in {fixed})")
    return out


def verdict(report_text: str, exit_code: int, stderr: str = "") -> Verdict:
    """Decide on pip-audit's JSON output (empty when it crashed) and its exit code."""
    try:
        report = json.loads(report_text) if report_text.strip() else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        return Verdict(CLEAN, f"pip-audit produced no report (exit {exit_code}): the vulnerability service "
                       f"could not be reached ({tail[0][:300]}); dependencies NOT audited", warning=True)
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    found = _findings(audited)
    if found:
        return Verdict(FINDINGS, "pip-audit: known vulnerabilities (fix them, or list each in IGNORE_VULNS "
                       "of infra/ci/scan.sh with its reason):\n  " + "\n  ".join(found))
    if not audited:
        return Verdict(CLEAN, f"pip-audit could audit none of {len(deps)} packages (the vulnerability "
                       "service is out of reach: every package was skipped); dependencies NOT audited",
                       warning=True)
    if exit_code not in (CLEAN, FINDINGS):
        return Verdict(exit_code, f"pip-audit failed (exit {exit_code}) although it wrote a report")
    skipped = len(deps) - len(audited)
    return Verdict(CLEAN, f"pip-audit: {len(audited)} packages audited, no known vulnerabilities "
                   f"({skipped} skipped: not on PyPI, e.g. this project itself)")


def main(argv: list[str]) -> int:
    report = Path(argv[1]).read_text() if Path(argv[1]).exists() else ""
    stderr = Path(argv[3]).read_text(errors="replace") if len(argv) > 3 and Path(argv[3]).exists() else ""
    result = verdict(report, int(argv[2]), stderr)
    print(f"WARNING: {result.message}" if result.warning else result.message,
          file=sys.stderr if result.warning or result.code else sys.stdout)
    return result.code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
