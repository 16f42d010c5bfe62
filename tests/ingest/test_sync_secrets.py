"""Issue 14, finding 2, end to end through the real ingest path: a docs folder with a config file and a
Slack export whose message carries an AWS key id and its secret. No value reaches a chunk; the
ordinary text around it does; redaction rows and the version's meta say what went, never the value."""

from __future__ import annotations

import json
import zipfile

from sqlalchemy import select

from orgmem.db import models as m
from orgmem.ingest import add_source, sync_source

PASSWORD = "Vq3nR8tLp2Xw"
DB_PASSWORD = "Zr7uQm4Hs9Kd"
MYSQL_PWD = "Lt6wNb2Jc8Pf"
AWS_ID = "AKIAQ3EGRTYU7XNPLM2Z"
AWS_SECRET = "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"
VALUES = (PASSWORD, DB_PASSWORD, MYSQL_PWD, AWS_ID, AWS_SECRET)

CONFIG_MD = f"""# Billing service configuration

The billing export reads its settings from this file on the Kestrel runner.

```ini
[database]
host = db.internal
password = {PASSWORD}
db_password = {DB_PASSWORD}
```

Run the export by hand with:

```sh
MYSQL_PWD={MYSQL_PWD} mysql -u billing -h db.internal billing < export.sql
```

Rotate the credentials every quarter.
"""


def _slack_zip(path):
    users = [{"id": "U1", "name": "alice", "real_name": "Alice Ng", "profile": {"display_name": "alice"}}]
    day = [
        {"type": "message", "ts": "1709280000.000100", "user": "U1",
         "text": f"temp creds for the billing bucket: {AWS_ID} / {AWS_SECRET}"},
        {"type": "message", "ts": "1709280060.000200", "user": "U1", "text": "they expire on Friday"},
    ]  # fmt: skip
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("users.json", json.dumps(users))
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "billing"}]))
        zf.writestr("billing/2024-03-01.json", json.dumps(day))
    return path


def test_issue14_secrets_never_reach_chunks_through_ingest(session, org, tmp_path, count_tokens):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "billing-config.md").write_text(CONFIG_MD)
    (docs / "runbook.txt").write_text(
        f"Billing runbook\n\npassword: {PASSWORD}\nCall ops if the export fails.\n"
    )
    sources = [
        add_source(session, org, "docs", "handbook", {"path": str(docs)}),
        add_source(session, org, "slack", "workspace", {"zip": str(_slack_zip(tmp_path / "export.zip"))}),
    ]
    for source in sources:
        report = sync_source(session, source, progress=False, count_tokens=count_tokens)
        assert report.ok and not report.skipped, report
    texts = "\n".join(session.scalars(select(m.Chunk.text)))
    assert not [v for v in VALUES if v in texts]
    for kept in (
        "The billing export reads its settings from this file on the Kestrel runner.",
        "password = [REDACTED:password]",
        "db_password = [REDACTED:password]",
        "MYSQL_PWD=[REDACTED:password] mysql -u billing -h db.internal billing < export.sql",
        "Rotate the credentials every quarter.",
        "password: [REDACTED:password]",
        "Call ops if the export fails.",
        "temp creds for the billing bucket: [REDACTED:aws-access-key] / [REDACTED:aws-secret-key]",
        "they expire on Friday",
    ):
        assert kept in texts
    rules = sorted(session.scalars(select(m.Redaction.rule)))
    assert rules == ["aws-access-key", "aws-secret-key", "password", "password", "password", "password"]
    metas = [v.meta["governance"] for v in session.scalars(select(m.DocumentVersion))]
    findings = sorted((f["rule"], f["line"]) for meta in metas for f in meta["findings"])
    assert ("password", 8) in findings and ("aws-secret-key", 2) in findings
    assert not [v for v in VALUES if v in json.dumps(metas)]
