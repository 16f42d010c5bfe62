"""What infra/ must agree with: the real ``orgmem`` CLI, the real ``ORGMEM_*`` settings, the Dockerfile.

The compose file and the Kubernetes manifests are checked by the same helpers, so a renamed
command, option or setting breaks the deployment test instead of a production rollout.
Nothing here runs a command: argv is parsed through the click tree of ``orgmem.cli.main.app``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from unittest import mock

import typer.main
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
DOCKERFILE = INFRA / "docker" / "Dockerfile"

#: Settings classes every deployment relies on; discovery must find at least these.
CORE_SETTINGS_CLASSES = (
    ("orgmem.config", "Settings"),
    ("orgmem.jobs.settings", "JobSettings"),
    ("orgmem.serving.config", "ServeSettings"),
)
#: Read straight from ``os.environ`` rather than through a settings class.
PLAIN_ENV = frozenset({"ORGMEM_ACTOR"})
#: Settings that hold credentials: manifests must take them from a Secret, never a literal.
SECRET_SETTINGS = frozenset({
    "ORGMEM_DATABASE_URL", "ORGMEM_BROKER_URL", "ORGMEM_S3_ACCESS_KEY_ID", "ORGMEM_S3_SECRET_ACCESS_KEY",
    "ORGMEM_SERVE_OPERATOR_KEY",
})
S3_CREDENTIALS = ("ORGMEM_S3_ACCESS_KEY_ID", "ORGMEM_S3_SECRET_ACCESS_KEY")


# -- settings ----------------------------------------------------------------------------------

def _load_module_alone(module: str) -> ModuleType:
    """Import one module by file without running its package's ``__init__``.

    ``orgmem.pipeline``'s ``__init__`` pulls in torch and the memory kinds (seconds); the settings
    module beside it needs none of that, and this test stays fast.
    """
    if module in sys.modules:
        return sys.modules[module]
    path = REPO / Path(*module.split(".")).with_suffix(".py")
    name = f"_deploy_checks.{module}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded  # pydantic resolves annotations through sys.modules
        spec.loader.exec_module(loaded)
    return sys.modules[name]


@lru_cache(maxsize=1)
def settings_classes() -> tuple[type, ...]:
    """Every pydantic-settings class in the source, so a new group of settings is known at once."""
    out = []
    for mod, name in sorted(declared_settings_classes()):
        try:
            module = _load_module_alone(mod)
        except ImportError:  # relative imports need the package: import it the ordinary way
            module = importlib.import_module(mod)
        out.append(getattr(module, name))
    return tuple(out)


def env_name(cls: type, field: str) -> str:
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def known_env_names() -> set[str]:
    """Every ``ORGMEM_*`` variable some part of orgmem reads."""
    names = {env_name(cls, field) for cls in settings_classes() for field in cls.model_fields}
    return names | PLAIN_ENV


def declared_settings_classes() -> set[tuple[str, str]]:
    """(module, class) of every ``class X(BaseSettings)`` in the project's packages."""
    found = set()
    for package in ("orgmem", "workers", "connectors"):
        for path in (REPO / package).rglob("*.py"):
            for name in re.findall(r"^class (\w+)\((?:\w+\.)?BaseSettings\)", path.read_text(), re.M):
                module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                found.add((module.removesuffix(".__init__"), name))
    return found


@contextmanager
def clean_orgmem_env() -> Iterator[None]:
    """No ``ORGMEM_*`` variable of this process leaks into a settings computation."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORGMEM_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        yield


def per_container_settings() -> set[str]:
    """Core settings whose default is derived from ORGMEM_HOME, i.e. private to one container.

    Left unset, each container would use its own SQLite file, folder store or filesystem broker:
    a deployment of several containers must set every one of them explicitly.
    """
    from orgmem.config import Settings

    with clean_orgmem_env():
        a, b = Settings(home=Path("/a")), Settings(home=Path("/b"))
    return {env_name(Settings, f) for f in Settings.model_fields
            if f != "home" and getattr(a, f) != getattr(b, f)}


def missing_required(env: dict[str, str]) -> list[str]:
    """Required names absent from a container's effective environment."""
    required = set(per_container_settings())
    if env.get("ORGMEM_STORE_URL", "").startswith("s3://"):
        required |= set(S3_CREDENTIALS)
    return sorted(required - set(env))


def unknown_env_names(names) -> list[str]:
    known = known_env_names()
    return sorted(n for n in names if n.startswith("ORGMEM_") and n not in known)


# -- CLI ---------------------------------------------------------------------------------------

class CliMismatch(ValueError):
    """An argv that the real ``orgmem`` CLI would refuse."""


def parse_cli(argv: list[str]) -> tuple[list[str], dict]:
    """Parse ``orgmem ARGV`` without running it: (command path, parsed parameters).

    Raises ``CliMismatch`` for an unknown command or option or a bad value, as the CLI would refuse.
    Typer ships its own click, so groups are recognised by ``get_command``, not by class.
    """
    from orgmem.cli.main import app

    cmd = typer.main.get_command(app)
    ctx = typer.Context(cmd, info_name="orgmem")
    path: list[str] = []
    rest = list(argv)
    while hasattr(cmd, "get_command"):
        if not rest or rest[0].startswith("-"):
            raise CliMismatch(f"`orgmem {' '.join(path)}` needs a sub-command, got {rest!r}")
        name, rest = rest[0], rest[1:]
        sub = cmd.get_command(ctx, name)
        if sub is None:
            raise CliMismatch(f"no command `orgmem {' '.join([*path, name])}`")
        path.append(name)
        cmd, ctx = sub, typer.Context(sub, info_name=name, parent=ctx)
    try:
        leaf = cmd.make_context(path[-1], rest, parent=ctx.parent)
    except Exception as exc:  # typer's click raises its own UsageError / BadParameter
        raise CliMismatch(f"`orgmem {' '.join(argv)}`: {exc}") from exc
    return path, leaf.params


def check_worker(params: dict) -> list[str]:
    """The queues of a parsed ``orgmem worker`` (valid names, consolidate workers one at a time)."""
    from workers.worker import parse_queues, worker_argv

    queues = parse_queues(params["queues"])
    worker_argv(queues, concurrency=params.get("concurrency"), pool=params.get("pool"))
    return queues


def worker_node_name(queues: list[str]) -> str:
    """The Celery node name ``orgmem worker`` gives itself, with the host as ``$HOSTNAME``."""
    import socket

    from workers.worker import worker_argv

    argv = worker_argv(queues)
    name = argv[argv.index("-n") + 1]
    return name.replace(socket.gethostname(), "$HOSTNAME").replace("%h", "$HOSTNAME")


def celery_ping_target(command: str) -> tuple[str, str]:
    """(app module, destination node) of a ``celery -A MODULE inspect ping -d NODE`` command line."""
    words = shlex.split(command)
    assert words[:1] == ["celery"] and "inspect" in words and "ping" in words, command
    return words[words.index("-A") + 1], words[words.index("-d") + 1]


# -- Dockerfile --------------------------------------------------------------------------------

def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        lines.append(current)
        current = ""
    out = []
    for line in lines:
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    return out


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in dockerfile_instructions():
        if word == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def dockerfile_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for word, text in dockerfile_instructions():
        if word == "ARG":
            key, _, value = text.partition("=")
            args[key] = value
    return args


def dockerfile_entrypoint() -> list[str]:
    (entry,) = [args for word, args in dockerfile_instructions() if word == "ENTRYPOINT"]
    return yaml.safe_load(entry)  # exec form is a JSON array
