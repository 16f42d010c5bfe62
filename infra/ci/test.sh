#!/usr/bin/env bash
# The whole suite on real services: installs and starts PostgreSQL, Redis and a real S3 server
# (Ceph RGW) on 127.0.0.1, runs lint (ruff, import contracts, mypy, vulture), the security scans (bandit, pip-audit: infra/ci/scan.sh) and
# pytest against them (the schemathesis fuzz of the API among the tests), stops the services on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
. infra/ci/services.sh
install_service_packages
start_services
check_services
.venv/bin/ruff check .
# the architecture's checks (docs/architecture.md): import contracts, types, dead code (pyproject.toml)
.venv/bin/lint-imports --no-cache
.venv/bin/mypy
.venv/bin/vulture
bash infra/ci/scan.sh
.venv/bin/python -m pytest -p no:cacheprovider -q --timeout=900 "$@"
