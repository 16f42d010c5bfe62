"""Issue 14, finding 2, reproduced: keyword assignments in docs, the AWS secret beside its key id in a
Slack message, and a document with one secret line — the value goes, the line and the document stay."""

from __future__ import annotations

import pytest

from orgmem.governance import govern

PASSWORD = "Vq3nR8tLp2Xw"
AWS_ID = "AKIAQ3EGRTYU7XNPLM2Z"
AWS_SECRET = "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"
INTRO = "# Billing database\n\nThe billing export runs nightly from the Kestrel runner.\n\n"
OUTRO = "\nAsk #billing-ops before rotating anything.\n"


@pytest.mark.parametrize("path", ["runbook.md", "notes.txt", "config.ini", "settings.yaml", ""])
@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (f"password = {PASSWORD}", "password = [REDACTED:password]"),
        (f"password={PASSWORD}", "password=[REDACTED:password]"),
        (f"password: {PASSWORD}", "password: [REDACTED:password]"),
        (f"db_password = {PASSWORD}", "db_password = [REDACTED:password]"),
        (
            f"MYSQL_PWD={PASSWORD} mysql -u billing billing",
            "MYSQL_PWD=[REDACTED:password] mysql -u billing billing",
        ),
    ],
)
def test_issue14_keyword_assignment_value_redacted_line_kept(path, line, kept):
    text = INTRO + line + "\n" + OUTRO
    out = govern(text, path=path)
    assert PASSWORD not in out.text
    assert kept in out.text.splitlines()
    assert out.text == INTRO + kept + "\n" + OUTRO
    assert out.skip_reason is None


def test_issue14_aws_secret_beside_key_id_in_slack_message():
    text = (
        "#billing 2024-03-01\n"
        f"[2024-03-01 09:12] alice: temp creds for the billing bucket: {AWS_ID} / {AWS_SECRET}\n"
        "[2024-03-01 09:13] bob: thanks, rotating them after the export"
    )
    out = govern(text, path="#billing 2024-03-01")
    assert AWS_ID not in out.text and AWS_SECRET not in out.text
    assert (
        "temp creds for the billing bucket: [REDACTED:aws-access-key] / [REDACTED:aws-secret-key]" in out.text
    )
    assert "thanks, rotating them after the export" in out.text


def test_issue14_one_secret_line_never_drops_the_document():
    token = "".join(f"{PASSWORD}{i:02d}" for i in range(12))  # one long secret line, a short note
    short = govern(f"Kestrel billing runner\nDB_PASSWORD={token} ./export\n", path="runner.env")
    assert short.skip_reason is None  # today: "secret-only", the note is lost with the secret
    assert short.text == "Kestrel billing runner\nDB_PASSWORD=[REDACTED:password] ./export\n"
    text = f"DB_PASSWORD={PASSWORD}\nrun the export with make export\n"
    out = govern(text, path="deploy.env")
    assert out.text == "DB_PASSWORD=[REDACTED:password]\nrun the export with make export\n"


def test_issue14_redaction_records_kind_and_line_not_value():
    text = INTRO + f"password = {PASSWORD}\n" + OUTRO
    out = govern(text, path="runbook.md")
    [r] = out.redactions
    assert (r.rule, r.line) == ("password", INTRO.count("\n") + 1)
    assert text[r.start : r.end] == PASSWORD and PASSWORD not in repr(r)


def test_rule_set_identity_names_the_new_rules():
    from orgmem.governance import RULESET
    from orgmem.governance.record import rule_names

    assert "+orgmem-cloud-2+orgmem-assign-1+orgmem-cred-1" in RULESET
    names = rule_names()
    assert "KeywordDetector" in names and "orgmem:assignment:password" in names
    assert "orgmem:credential:aws-secret-beside-key-id" in names and "orgmem:gitlab-token" in names
