"""infra/ci/audit_gate.py: a pip-audit report that audited nothing is a warning, not a pass that
looks like "no known vulnerabilities"; a finding fails; a clean audit passes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

GATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "ci" / "audit_gate.py"
_spec = importlib.util.spec_from_file_location("audit_gate", GATE_PATH)
gate = sys.modules["audit_gate"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(gate)

SKIPPED = {"name": "orgmem", "skip_reason": "Dependency not found on PyPI and could not be audited"}
CLEAN_DEP = {"name": "httpx", "version": "0.29.0", "vulns": []}
VULN = {"name": "jinja2", "version": "3.1.2",
        "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}]}


def report(*deps) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


def test_a_finding_fails_naming_package_id_and_fix():
    result = gate.verdict(report(CLEAN_DEP, VULN, SKIPPED), 1)
    assert result.code == gate.FINDINGS and not result.warning
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in result.message


def test_a_clean_audit_passes_and_counts_what_was_skipped():
    result = gate.verdict(report(CLEAN_DEP, SKIPPED), 0)
    assert (result.code, result.warning) == (gate.CLEAN, False)
    assert "1 packages audited" in result.message and "1 skipped" in result.message


def test_every_package_skipped_is_a_warning_not_a_silent_pass():
    """What PyPI's JSON API answering 404 behind a mirror looks like: all skipped, exit 0."""
    result = gate.verdict(report(SKIPPED, {**SKIPPED, "name": "torch"}), 0)
    assert (result.code, result.warning) == (gate.CLEAN, True) and "NOT audited" in result.message


def test_no_report_at_all_is_a_warning_naming_the_error():
    stderr = "requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'"
    result = gate.verdict("", 1, stderr)
    assert (result.code, result.warning) == (gate.CLEAN, True) and "api.osv.dev" in result.message


def test_main_reads_the_files_scan_sh_writes(tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text(report(VULN))
    assert gate.main(["audit_gate.py", str(path), "1", str(tmp_path / "missing")]) == gate.FINDINGS
    assert "GHSA-h5c8-rqwp-cp95" in capsys.readouterr().err
