"""``slack`` connector: a workspace export zip, or the Web API.

Export mode: the cursor is the zip's sha256, so re-importing the same export reads nothing.
API mode: the cursor holds the newest message ts per channel (see ``connectors.slack.api``).
The bot token is never stored in the source config: ``token_env`` names the variable holding it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path

from pydantic import Field, model_validator
from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler

from connectors.base import (
    Connector,
    Cursor,
    DocumentFailure,
    Fetch,
    SourceConfig,
    SourceError,
    cli_hints,
    config_as,
)
from connectors.confine import confine_path
from connectors.netguard import check_url
from connectors.slack.api import ApiReader, RetryAfterHandler
from connectors.slack.export import check_export, read_export


class SlackConfig(SourceConfig):
    """Either ``zip`` (export file) or the Web API (``token_env``, ``base_url``)."""

    zip: str | None = Field(
        None,
        description="Workspace export zip (or give token_env).",
        json_schema_extra=cli_hints(local_path=True),
    )
    token_env: str | None = Field(None, description="Web API: the variable holding the bot token.")
    base_url: str = Field("https://slack.com/api/", description="Web API: endpoint.")
    workspace_url: str = Field("https://slack.com", description="Links in documents point here.")
    channels: list[str] = Field(
        [], description="Only this channel (repeat it).", json_schema_extra=cli_hints("--channel")
    )
    include_private: bool = Field(False, description="Private channels too.")
    lookback_days: int = Field(7, description="Web API: days re-read at each sync (new thread replies).")
    max_retries: int = Field(5, description="Web API: retries of a rate-limited (HTTP 429) call.")
    max_retry_wait_s: float = Field(60.0, description="Web API: longest Retry-After wait, in seconds.")

    @model_validator(mode="after")
    def _one_mode(self) -> SlackConfig:
        if bool(self.zip) == bool(self.token_env):
            raise ValueError(
                "exactly one of 'zip' (export file) or 'token_env' (Web API token variable) is required"
            )
        if not self.base_url.endswith("/"):
            self.base_url += "/"
        if self.lookback_days < 0 or self.max_retries < 0:
            raise ValueError("'lookback_days' and 'max_retries' must not be negative")
        return self


def org_token_env(org: str) -> str:
    """The variable an org admin may name for its Slack token: SLACK_TOKEN_<SLUG> (``-`` as ``_``)."""
    return "SLACK_TOKEN_" + org.upper().replace("-", "_")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SlackConnector(Connector):
    kind = "slack"
    config_cls = SlackConfig

    def __init__(self) -> None:
        super().__init__()
        self._reader: ApiReader | None = None

    def _zip(self, config: SlackConfig) -> Path:
        path = confine_path(config.zip or "", self.confinement, what="slack export")
        if not path.is_file():
            raise SourceError(f"slack export {config.zip} does not exist")
        return path

    def _check_api(self, config: SlackConfig) -> None:
        """The Web API endpoint must be an allowed address (slack_sdk does its own requests)."""
        check_url(config.base_url, self.confinement, what="slack base_url")

    def check(self, config: SourceConfig) -> None:
        config = config_as(config, SlackConfig)
        if config.zip:
            check_export(self._zip(config))
            return
        policy = self.confinement
        if not policy.operator:  # the token is sent to base_url: an admin names only its org's variable
            own = org_token_env(policy.org or "")
            if config.token_env != own and not (config.token_env or "").startswith(own + "__"):
                raise SourceError(
                    f"slack token_env {config.token_env!r} is refused: sources added through the API read "
                    f"the token from {own} (or {own}__<NAME>), which the operator sets on the server"
                )
        self._check_api(config)

    def fetch(self, config: SourceConfig, cursor: Cursor | None) -> Fetch:
        """Export mode returns the zip's digest, API mode the newest ts per channel."""
        config = config_as(config, SlackConfig)
        previous = dict(cursor or {})
        return (yield from self._export(config, previous) if config.zip else self._api(config, previous))

    def _export(self, config: SlackConfig, previous: Cursor) -> Fetch:
        path = self._zip(config)
        digest = _file_sha256(path)
        if previous.get("zip_sha256") == digest:
            return previous
        failed = False
        for item in read_export(
            path,
            include_private=config.include_private,
            only=config.channels,
            uri_base=config.workspace_url.rstrip("/"),
        ):
            failed |= isinstance(item, DocumentFailure)
            yield item
        # any gap (an unreadable channel): keep the old digest so the whole export is read again
        return previous if failed else {"zip_sha256": digest}

    def _api(self, config: SlackConfig, previous: Cursor) -> Fetch:
        token = os.environ.get(config.token_env or "")
        if not token:
            raise SourceError(
                f"slack source: environment variable {config.token_env} holding the bot token is not set"
            )
        self._check_api(config)
        client = WebClient(
            token=token,
            base_url=config.base_url,
            timeout=30,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RetryAfterHandler(config.max_retries, config.max_retry_wait_s),
            ],
        )
        self._reader = ApiReader(
            client,
            include_private=config.include_private,
            only=config.channels,
            lookback_days=config.lookback_days,
            uri_base=config.workspace_url.rstrip("/"),
        )
        yield from self._reader.read(dict(previous.get("channels", {})))
        return {"channels": self._reader.channel_latest}

    def retry_cursor(self, previous: Cursor | None, cursor: Cursor, unstored: Collection[str]) -> Cursor:
        """Export: any unstored document keeps the old digest. API: each channel with an unstored
        document goes back to its old newest ts (or is read whole again when it had none)."""
        before = dict(previous or {})
        if not unstored:
            return cursor
        if "channels" not in cursor:
            return before
        channels = dict(cursor["channels"])
        old = before.get("channels", {})
        for external_id in unstored:
            channel_id = external_id.split("/", 1)[0]
            if channel_id in old:
                channels[channel_id] = old[channel_id]
            else:
                channels.pop(channel_id, None)
        return {"channels": channels}
