"""``orgmem source add`` options generated from each connector's config class.

Every field of a kind's pydantic config becomes ``--field-name`` (help from the field's description,
other spellings from ``connectors.base.cli_hints``), so a new connector, or a new field, needs no
edit here. The options of all kinds are parsed together, so a flag of another kind reaches the
config check and is refused there naming the field; ``orgmem source add ORG KIND --help`` shows only
KIND's. ``--set key=value`` reaches any field too (nested values as JSON).
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic.fields import FieldInfo
from typer.core import TyperCommand

from connectors.base import SourceConfig
from connectors.registry import config_class, kinds

if TYPE_CHECKING:  # the Context TyperCommand's methods take: Typer's own copy of click's
    from typer._click.core import Context

Shape = Literal["flag", "scalar", "list", "pairs"]
_PARAMS, _VALUES, _HELP_KIND = "source_add.params", "source_add.values", "source_add.help_kind"
_SCALARS: dict[type, type] = {str: str, int: int, float: float}


@dataclass(frozen=True)
class FieldOption:
    """One generated option: the config field it fills, for which kinds, and how its value is read."""

    field: str
    flags: tuple[str, ...]
    kinds: tuple[str, ...]
    shape: Shape
    item_type: type
    help: str
    panel: str
    metavar: str | None = None
    local_path: bool = False

    @property
    def param(self) -> str:
        """The click parameter name: prefixed, so a field never collides with ``--name`` and friends."""
        return f"field__{self.field}"

    def entry(self, value: Any) -> Any:
        """The config value for what was given on the command line."""
        if self.shape == "pairs":
            return pairs(self.flags, self.metavar or "KEY=VALUE", list(value))
        if self.shape == "list":
            return list(value)
        return absolute(value) if self.local_path else value


def absolute(value: str) -> str:
    """A local path as the absolute path the worker will read (sources name absolute paths)."""
    return str(Path(value).expanduser().absolute())


def pairs(flags: tuple[str, ...], metavar: str, values: list[str]) -> dict[str, str]:
    """``["hr/*=hr", ...]`` -> ``{"hr/*": "hr"}`` in the order given (``restricted``: first match wins)."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, item = value.rpartition("=")
        if not sep or not key or not item:
            raise typer.BadParameter(f"{'/'.join(flags)} {value!r}: expected {metavar}, e.g. 'hr/*=hr'")
        out[key] = item
    return out


def shape_of(annotation: Any) -> tuple[Shape, type] | None:
    """How a field is given on the command line; None for what only ``--set``/``--config`` can give."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return shape_of(args[0])
    if annotation is bool:
        return "flag", bool
    if annotation in _SCALARS:
        return "scalar", _SCALARS[annotation]
    if origin is Literal:
        return "scalar", str
    if origin is list and len(args) == 1:
        inner = shape_of(args[0])
        return ("list", inner[1]) if inner and inner[0] == "scalar" else None
    if origin is dict and args == [str, str]:
        return "pairs", str
    return None


def _hints(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    hints = extra.get("cli")
    return hints if isinstance(hints, dict) else {}


def _describe(info: FieldInfo) -> str:
    text = (info.description or "").rstrip(".")
    if info.is_required():
        return f"{text} (required)." if text else "(required)."
    default = info.get_default(call_default_factory=True)
    if default not in (None, False, [], {}, ""):
        shown = ", ".join(map(str, default)) if isinstance(default, list) else default
        return f"{text} (default {shown})."
    return f"{text}." if text else ""


def field_options(selected: list[str], taken: set[str]) -> list[FieldOption]:
    """The options of the ``selected`` kinds; a field shared by several kinds is one option, and flags
    in ``taken`` (the command's own) are left to ``--set``."""
    seen: dict[str, list[tuple[str, FieldInfo]]] = {}
    for kind in selected:
        for name, info in config_class(kind).model_fields.items():
            seen.setdefault(name, []).append((kind, info))
    options, used = [], set(taken)
    base = set(SourceConfig.model_fields)
    for name, owners in sorted(seen.items(), key=lambda item: (item[0] in base, 0)):
        found = {shape_of(info.annotation) for _, info in owners}
        shapes = {shape for shape in found if shape is not None}
        if len(shapes) < len(found):
            continue
        if len(shapes) > 1:
            owned = [kind for kind, _ in owners]
            raise TypeError(f"config field {name!r} has different types in {owned}: rename it in one")
        ((shape, item_type),) = shapes
        hints = _hints(owners[0][1])
        flags = tuple(f for f in (f"--{name.replace('_', '-')}", *hints.get("aliases", [])) if f not in used)
        if not flags:
            continue
        used.update(flags)
        helps = {kind: _describe(info) for kind, info in owners}
        owner_kinds = tuple(kind for kind, _ in owners)
        every = name in base or len(owner_kinds) == len(selected) > 1
        text = (
            next(iter(helps.values()))
            if len(set(helps.values())) == 1
            else " ".join(f"{kind}: {text}" for kind, text in helps.items())
        )
        panel = "Every source" if every else f"{' / '.join(owner_kinds)} sources"
        options.append(
            FieldOption(name, flags, owner_kinds, shape, item_type, text, panel,
                        hints.get("metavar"), bool(hints.get("local_path")))  # fmt: skip
        )
    return options


def click_params(options: list[FieldOption]) -> list[Any]:
    """The options as Typer builds them (rich help panels included): from a throwaway command whose
    signature is the options, through Typer's public ``get_command``."""

    def command(**_: Any) -> None:
        """Never run: only its parameters are used."""

    parameters = []
    for opt in options:
        annotation: Any = bool if opt.shape == "flag" else opt.item_type | None
        if opt.shape in ("list", "pairs"):
            annotation = list[opt.item_type] | None  # type: ignore[name-defined]
        declared = typer.Option(*opt.flags, help=opt.help, metavar=opt.metavar, rich_help_panel=opt.panel,
                                show_default=False)  # fmt: skip
        parameters.append(
            inspect.Parameter(opt.param, inspect.Parameter.KEYWORD_ONLY,
                              default=False if opt.shape == "flag" else None,
                              annotation=Annotated[annotation, declared])  # fmt: skip
        )
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    throwaway = typer.Typer(add_completion=False)
    throwaway.command()(command)
    built = typer.main.get_command(throwaway)  # one command: the command itself, not a group
    return [p for p in built.params if p.name != "help"]


class SourceAddCommand(TyperCommand):
    """``source add``: its own options plus the generated ones, read out of ``ctx.params`` before the
    function runs (``given_fields``)."""

    def _generated(self, ctx: Context) -> list[tuple[FieldOption, Any]]:
        if _PARAMS not in ctx.meta:
            taken = {flag for p in self.params for flag in getattr(p, "opts", [])} | {"--help"}
            wanted = kinds()
            help_kind = ctx.meta.get(_HELP_KIND)
            options = field_options([help_kind] if help_kind in wanted else wanted, taken)
            ctx.meta[_PARAMS] = list(zip(options, click_params(options), strict=True))
        return ctx.meta[_PARAMS]

    def get_params(self, ctx: Context) -> list[Any]:
        own = super().get_params(ctx)
        tail = [p for p in own if p.name == "help"]
        return [*[p for p in own if p.name != "help"], *(p for _, p in self._generated(ctx)), *tail]

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if any(a in ctx.help_option_names for a in args):  # help for one kind: find the KIND given
            try:
                opts, _, _ = self.make_parser(ctx).parse_args(args=list(args))
            except Exception:  # a bad command line: the real parse below says what is wrong
                opts = {}
            ctx.meta.pop(_PARAMS, None)
            ctx.meta[_HELP_KIND] = opts.get("kind")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        values = {}
        for opt, param in self._generated(ctx):
            value = ctx.params.pop(param.name or "", None)
            source = ctx.get_parameter_source(param.name or "")
            if source is None or source.name != "COMMANDLINE":  # (Typer's click is its own copy)
                continue
            if opt.local_path and not value:  # `--path ""` names no path, as before: the field is not given
                continue
            values[opt.field] = opt.entry(value)
        ctx.meta[_VALUES] = values
        return super().invoke(ctx)


def given_fields(ctx: Context) -> dict[str, Any]:
    """The config entries given as generated options (only those on the command line)."""
    return dict(ctx.meta.get(_VALUES, {}))


def set_entries(kind: str, values: list[str]) -> dict[str, Any]:
    """``--set key=value`` entries checked against ``kind``'s fields; a value starting with ``[``, ``{``
    or ``"`` is JSON, any other is the text (the config model converts numbers and booleans)."""
    fields = config_class(kind).model_fields
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise typer.BadParameter(f"--set {item!r}: expected KEY=VALUE, e.g. 'branch=main'")
        if key not in fields:
            from connectors.base import SourceConfigError

            raise SourceConfigError(
                f"--set {key!r}: {kind} sources have no field {key!r}; fields of {kind}: {', '.join(fields)}"
            )
        value: Any = raw
        if raw[:1] in ('[', '{', '"'):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"--set {key}: the value is not valid JSON: {exc}") from None
        shape = shape_of(fields[key].annotation)
        if shape and shape[0] == "list" and not isinstance(value, list):
            out.setdefault(key, []).append(value)
            continue
        local = bool(_hints(fields[key]).get("local_path"))
        out[key] = absolute(value) if local and isinstance(value, str) and value else value
    return out
