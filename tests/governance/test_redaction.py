"""Governance: secrets replaced by typed placeholders, records without the secret, key files skipped."""

from __future__ import annotations

import pytest

from orgmem.governance import RULESET, GovernancePolicy, govern, plugin_names

AWS_ID = "AKIAQ3EGRTYU7XNPLM2Z"
AWS_SECRET = "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"
GITHUB = "ghp_" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7\nqLk2==\n-----END RSA PRIVATE KEY-----"

CODE = f'''import boto3

AWS_ACCESS_KEY_ID = "{AWS_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
GITHUB_TOKEN = "{GITHUB}"
session_token = "{JWT}"


def client():
    """Build the S3 client used by the nightly export."""
    return boto3.client("s3", aws_access_key_id=AWS_ACCESS_KEY_ID)
'''


def test_secrets_become_typed_placeholders_and_records_hold_no_secret():
    out = govern(CODE, path="config/settings.py")
    for secret in (AWS_ID, AWS_SECRET, GITHUB, JWT):
        assert secret not in out.text
    assert 'AWS_ACCESS_KEY_ID = "[REDACTED:aws-access-key]"' in out.text
    assert 'AWS_SECRET_ACCESS_KEY = "[REDACTED:aws-secret-key]"' in out.text
    assert "[REDACTED:github-token]" in out.text and "[REDACTED:jwt]" in out.text
    assert "Build the S3 client used by the nightly export." in out.text  # the rest is intact
    assert out.skip_reason is None and out.ruleset == RULESET and RULESET.startswith("detect-secrets==")
    for r in out.redactions:  # positions point at the secret in the original text
        assert CODE[r.start : r.end] in (AWS_ID, AWS_SECRET, GITHUB, JWT)
        assert r.placeholder == f"[REDACTED:{r.rule}]"
        assert not any(s in repr(r) for s in (AWS_ID, AWS_SECRET, GITHUB, JWT))


@pytest.mark.parametrize(
    ("path", "text", "secret"),
    [
        (".env", "DB_PASSWORD=sup3rS3cretPw!\nDEBUG=1\nLOG_LEVEL=info\nWORKERS=4\n", "sup3rS3cretPw!"),
        (
            "settings.yaml",
            'db:\n  password: "hunter2-is-long"\n  host: db.internal\n  port: 5432\n',
            "hunter2-is-long",
        ),
        (
            "deploy.sh",
            f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\naws s3 sync build s3://site\n",
            AWS_SECRET,
        ),
        (
            "notes.md",
            "Our Google key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW is in the console.\n",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
        ),
        (
            "README.md",
            "Connect with postgres://app:Pa55w0rdXyz@db.internal:5432/app from the VPN.\n",
            "Pa55w0rdXyz",
        ),
        (
            "chat",
            f"here is the key:\n{PEM}\nplease rotate it tomorrow after the release is done",
            "MIIEowIBAAKCAQEAx7",
        ),
    ],
)
def test_config_passwords_cloud_keys_and_private_keys(path, text, secret):
    out = govern(text, path=path)
    assert secret not in out.text and "[REDACTED:" in out.text


def test_ordinary_code_is_left_alone():
    text = (
        'def total(items):\n    """Sum prices."""\n    key = "price"\n    return sum(i[key] for i in items)\n'
    )
    out = govern(text, path="shop/cart.py")
    assert out.text == text and out.redactions == []


def test_key_files_and_secret_only_documents_are_skipped():
    assert govern(PEM, path="deploy/id_rsa").skip_reason == "secret-file"
    assert govern("anything", path="certs/server.pem").skip_reason == "secret-file"
    out = govern(PEM, path="notes/key.txt")
    assert out.skip_reason == "secret-only" and "MIIEow" not in out.text


def test_pii_is_opt_in():
    text = "Call Alice at alice.ng@example.com or +1 415-555-0132 about release 1.2.3 on 2024-03-01."
    assert govern(text).text == text
    out = govern(text, policy=GovernancePolicy(pii=frozenset({"email", "phone"})))
    assert out.text == "Call Alice at [REDACTED:email] or [REDACTED:phone] about release 1.2.3 on 2024-03-01."
    with pytest.raises(ValueError, match="unknown PII kinds"):
        govern(text, policy=GovernancePolicy(pii=frozenset({"ssn"})))


def test_rule_set_is_named():
    names = plugin_names()
    assert "AWSKeyDetector" in names and "KeywordDetector" in names and "orgmem:gcp-api-key" in names
    assert "IPPublicDetector" not in names
