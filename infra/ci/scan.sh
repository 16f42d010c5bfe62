#!/usr/bin/env bash
# Security scans, run by infra/ci/test.sh after ruff (alone: bash infra/ci/scan.sh, or make scan).
#
# bandit: orgmem/, connectors/, workers/ with pyproject.toml's [tool.bandit] (its skipped checks are
#   listed there with why; a line that trips a check carries `# nosec BXXX  # why`). Any finding,
#   of any severity, fails.
# pip-audit: the installed environment against PyPI's vulnerability data. A finding fails unless its
#   id is in IGNORE_VULNS below with the reason; a vulnerability service out of reach (CI reaches
#   the package registries only) is a WARNING, not a failure: infra/ci/audit_gate.py tells the two
#   apart, since pip-audit then skips every package and still exits 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}

# Known vulnerabilities accepted for now, one id per line, each with why it does not apply here
# and until when, e.g.:   "PYSEC-2024-00"  # only the CLI's --serve-docs path uses it; until 1.2
IGNORE_VULNS=(
)

echo "== bandit (orgmem connectors workers)"
"$VENV/bin/bandit" -c pyproject.toml -q -r orgmem connectors workers
echo "bandit: no findings"

echo "== pip-audit (installed environment, PyPI vulnerability service)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--vulnerability-service pypi --format json --output "$work/report.json" --progress-spinner off
      --timeout 30)
for id in "${IGNORE_VULNS[@]}"; do
  args+=(--ignore-vuln "$id")
done
rc=0
"$VENV/bin/pip-audit" "${args[@]}" 2> "$work/stderr" || rc=$?
"$VENV/bin/python" infra/ci/audit_gate.py "$work/report.json" "$rc" "$work/stderr"
