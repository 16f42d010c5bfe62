"""Restricted folders: a source's ``restricted`` globs send matching files to a group's memory;
they never reach the org memory's training inputs, and bad globs or groups are refused by name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.base import restricted_audience
from orgmem.db import models as m
from orgmem.errors import OrgmemError
from orgmem.ingest import add_source, sync_source
from orgmem.pipeline.inputs import gather_inputs


def _folder(tmp_path):
    docs = tmp_path / "handbook"
    (docs / "hr" / "cases").mkdir(parents=True)
    (docs / "public.md").write_text("# Office\n\nThe Heron office opens at 07:45 on weekdays.\n")
    (docs / "hr" / "salaries.md").write_text("# Pay\n\nThe Osprey pay band tops out at 91,400.\n")
    (docs / "hr" / "cases" / "c17.md").write_text("# Case 17\n\nCase 17 was settled on 3 March.\n")
    return docs


def test_restricted_paths_go_to_their_group_and_never_to_the_org(session, org, tmp_path, count_tokens):
    docs = _folder(tmp_path)
    source = add_source(session, org, "docs", "handbook", {"path": str(docs), "restricted": {"hr/*": "hr"}})
    sync_source(session, source, progress=False, count_tokens=count_tokens)
    audiences = dict(session.execute(select(m.Document.external_id, m.Document.audience)).tuples().all())
    assert audiences == {"public.md": "org", "hr/salaries.md": "hr", "hr/cases/c17.md": "hr"}
    org_inputs = gather_inputs(session, org, replay_max=0, digest_extra={})
    texts = " ".join(c.text for c in org_inputs.new)
    assert "07:45" in texts and "91,400" not in texts and "Case 17" not in texts
    hr_inputs = gather_inputs(session, org, replay_max=0, digest_extra={}, audience="hr")
    hr_texts = " ".join(c.text for c in hr_inputs.new)
    assert "91,400" in hr_texts and "Case 17" in hr_texts and "07:45" not in hr_texts


def test_first_matching_glob_wins():
    config = {"restricted": {"hr/cases/*": "legal", "hr/*": "hr"}}
    assert restricted_audience(config, "hr/cases/c17.md") == "legal"
    assert restricted_audience(config, "hr/salaries.md") == "hr"
    assert restricted_audience(config, "public.md") is None
    assert restricted_audience({}, "hr/salaries.md") is None


@pytest.mark.parametrize("restricted", [{"hr/*": "org"}, {"": "hr"}, {"hr/*": " "}])
def test_bad_restriction_is_refused_by_name(session, org, tmp_path, restricted):
    config = {"path": str(_folder(tmp_path)), "restricted": restricted}
    with pytest.raises(OrgmemError, match="restricted"):
        add_source(session, org, "docs", "handbook", config)


def test_source_add_restrict_flag(session, org, tmp_path):
    from typer.testing import CliRunner

    from orgmem.cli.main import app

    docs = _folder(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["source", "add", "acme", "docs", "--path", str(docs),
                                 "--restrict", "hr/cases/*=legal", "--restrict", "hr/*=hr", "--json"])
    assert result.exit_code == 0, result.stderr
    session.expire_all()
    source = session.scalar(select(m.Source).where(m.Source.name == "docs"))
    assert list(source.config["restricted"].items()) == [("hr/cases/*", "legal"), ("hr/*", "hr")]
    bad = runner.invoke(app, ["source", "add", "acme", "docs", "--name", "d2", "--path", str(docs),
                              "--restrict", "hr-only"])
    assert bad.exit_code != 0 and "GLOB=GROUP" in bad.output + (bad.stderr or "")
