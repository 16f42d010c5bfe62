"""``response_format``, ``tools`` and ``tool_choice``: from the request to a grammar, a prompt and a reply.

One ``StructuredPlan`` per request says what the reply must be (a grammar for the engine, see
``orgmem.serving.grammar``), which tool schemas the prompt carries, and which tool names are read
back out of the reply as ``tool_calls`` (``orgmem.serving.toolcalls``). The chat route renders
the finished reply (``chat_message``) or its stream (``ChatShaper``) through it; the Responses
route (``orgmem.api.responses_routes``) builds the same plan from its own field names.

Modes: ``tool_choice`` "none" renders no tools and reads no calls; "auto" (the default when
tools are given) renders them and reads the calls the model chose to write; "required" and a
named function constrain the reply to exactly one call whose arguments follow the function's
``parameters`` schema. ``response_format`` json_object / json_schema constrain the reply to JSON
(a forced tool call wins over it). A reply cut by ``max_tokens`` ends "length" and may then be
unfinished JSON, as with OpenAI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orgmem.errors import ApiError
from orgmem.models.tokens import has_chat_template
from orgmem.serving.constraint import TokenConstraint
from orgmem.serving.generation import encode_conversation
from orgmem.serving.grammar import GrammarError, GrammarSpec, compiler_for
from orgmem.serving.toolcalls import (
    CALL_CLOSE,
    CALL_OPEN,
    ToolCallSplitter,
    call_schema,
    encode_with_tools,
    parse_tool_calls,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionDef(_Strict):
    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(_Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Strict):
    name: str


class NamedChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Strict):
    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class AssistantCall(_Strict):
    id: str = ""
    type: Literal["function"] = "function"
    function: dict[str, Any]


@dataclass(frozen=True)
class StructuredPlan:
    grammar: GrammarSpec | None = None
    tools: tuple[dict[str, Any], ...] = ()  # OpenAI tool objects rendered into the prompt
    names: frozenset[str] = field(default_factory=frozenset)  # tool names read back as calls


def _parsed(model: type[BaseModel], value: Any, param: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in (param, *first["loc"]))
        raise ApiError(400, f"{where}: {first['msg']}", param=where) from None


def _checked_schema(schema: dict[str, Any], param: str) -> dict[str, Any]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ApiError(400, f"{param} is not a valid JSON schema: {exc.message}", param=param) from None
    return schema


def response_format_grammar(value: Any, param: str = "response_format") -> GrammarSpec | None:
    if value is None:
        return None
    fmt = _parsed(ResponseFormat, value, param)
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return GrammarSpec.json_object()
    if fmt.json_schema is None:
        raise ApiError(400, f"{param}.json_schema is required when type is 'json_schema'",
                       param=f"{param}.json_schema")
    schema = _checked_schema(fmt.json_schema.schema_, f"{param}.json_schema.schema")
    return GrammarSpec.json_schema(schema, strict=bool(fmt.json_schema.strict))


def _forced_functions(choice: Any, tools: list[ToolDef], param: str) -> list[FunctionDef] | None:
    """The functions a call is forced to (None: not forced); ``[]`` means tool_choice "none"."""
    if choice in (None, "auto"):
        return None
    if choice == "none":
        return []
    if choice == "required":
        return [t.function for t in tools]
    named = _parsed(NamedChoice, choice, param) if not isinstance(choice, str) else None
    if named is None:
        raise ApiError(400, f"{param} must be 'none', 'auto', 'required' or "
                       "{'type': 'function', 'function': {'name': ...}}", param=param)
    match = [t.function for t in tools if t.function.name == named.function.name]
    if not match:
        raise ApiError(400, f"{param} names function {named.function.name!r}, which is not in tools",
                       param=param)
    return match


def plan_for(tools_value: Any, tool_choice: Any, response_format: Any, *, tools_param: str = "tools",
             choice_param: str = "tool_choice", format_param: str = "response_format") -> StructuredPlan:
    """The plan of one request; every malformed field answers 400 naming it."""
    grammar = response_format_grammar(response_format, format_param)
    if not tools_value:
        if tool_choice not in (None, "none", "auto"):
            raise ApiError(400, f"{choice_param} is set but no tools are given", param=choice_param)
        return StructuredPlan(grammar=grammar)
    if not isinstance(tools_value, list):
        raise ApiError(400, f"{tools_param} must be a list of tools", param=tools_param)
    tools = [_parsed(ToolDef, t, f"{tools_param}.{i}") for i, t in enumerate(tools_value)]
    for i, t in enumerate(tools):
        if t.function.parameters is not None:
            _checked_schema(t.function.parameters, f"{tools_param}.{i}.function.parameters")
    forced = _forced_functions(tool_choice, tools, choice_param)
    if forced == []:
        return StructuredPlan(grammar=grammar)
    rendered = tuple(t.model_dump(exclude_none=True) for t in tools)
    names = frozenset(t.function.name for t in tools)
    if forced:
        schema = call_schema([f.model_dump(exclude_none=True) for f in forced])
        return StructuredPlan(GrammarSpec.framed(schema, CALL_OPEN, CALL_CLOSE), rendered, names)
    return StructuredPlan(grammar, rendered, names)


def chat_plan(extra: dict[str, Any]) -> StructuredPlan:
    """The plan of a chat completion body's extra fields."""
    return plan_for(extra.get("tools"), extra.get("tool_choice"), extra.get("response_format"))


def completion_plan(extra: dict[str, Any]) -> StructuredPlan:
    """Text completions take ``response_format`` only (OpenAI's completions have no tools)."""
    for name in ("tools", "tool_choice"):
        if extra.get(name) not in (None, [], {}):
            raise ApiError(400, f"parameter {name!r} is only supported by /v1/chat/completions",
                           param=name, code="unsupported_parameter")
    return plan_for(None, None, extra.get("response_format"))


def constraint_for(plan: StructuredPlan, engine) -> TokenConstraint | None:
    """A fresh grammar matcher for one reply (compiled on the caller's thread, cached per schema)."""
    if plan.grammar is None:
        return None
    compiler = compiler_for(engine.tokenizer, int(engine.model.config.vocab_size), engine.stop_ids)
    try:
        return compiler.constraint(plan.grammar)
    except GrammarError as exc:
        param = "tools" if plan.grammar.kind == "tool_call" else "response_format"
        raise ApiError(400, str(exc), param=param) from None


# -- input messages ------------------------------------------------------------------------------

def chat_turn(role: str, text: str, extra: dict[str, Any], index: int) -> dict[str, Any]:
    """One input message for the template: a tool result keeps its call id, an assistant turn its calls."""
    if role == "tool":
        return {"role": "tool", "content": text, "tool_call_id": str(extra.get("tool_call_id") or "")}
    calls = extra.get("tool_calls")
    if role == "assistant" and calls:
        if not isinstance(calls, list):
            raise ApiError(400, f"messages[{index}].tool_calls must be a list",
                           param=f"messages.{index}.tool_calls")
        parsed = [_parsed(AssistantCall, c, f"messages.{index}.tool_calls.{j}") for j, c in enumerate(calls)]
        for j, c in enumerate(parsed):
            if not isinstance(c.function.get("name"), str):
                raise ApiError(400, f"messages[{index}].tool_calls[{j}].function.name is required",
                               param=f"messages.{index}.tool_calls.{j}.function.name")
        return {"role": "assistant", "content": text, "tool_calls": [c.model_dump() for c in parsed]}
    return {"role": role, "content": text}


def encoder(plan: StructuredPlan, conversation: list[dict[str, Any]]) -> Callable[[Any], list[int]]:
    """Prompt ids of the conversation: with tools or tool turns through ``encode_with_tools``."""
    has_tool_turns = any(m["role"] == "tool" or m.get("tool_calls") for m in conversation)
    if not plan.tools and not has_tool_turns:
        return lambda tok: encode_conversation(tok, conversation)

    def encode(tok) -> list[int]:
        if not has_chat_template(tok):
            encode_conversation(tok, conversation)  # its refusal: no chat on a base without a template
        return encode_with_tools(tok, conversation, plan.tools)
    return encode


# -- the reply -----------------------------------------------------------------------------------

def chat_message(plan: StructuredPlan, text: str, reason: str) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason of a finished reply ("tool_calls" when it called)."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if not plan.names:
        return message, reason
    content, calls = parse_tool_calls(text, plan.names)
    if not calls:
        return message, reason
    message["content"] = content or None
    message["tool_calls"] = [c.wire() for c in calls]
    return message, "tool_calls"


class ChatShaper:
    """A streamed reply as chat deltas: content as it comes, each tool call in one
    ``delta.tool_calls`` entry (id, name and whole arguments) once its block is complete."""

    def __init__(self, plan: StructuredPlan) -> None:
        self.splitter = ToolCallSplitter(plan.names) if plan.names else None
        self.calls = 0

    def delta(self, text: str) -> dict[str, Any]:
        if self.splitter is None:
            return {"content": text}
        content, calls = self.splitter.feed(text)
        return self._delta(content, calls)

    def final_delta(self) -> dict[str, Any]:
        if self.splitter is None:
            return {}
        return self._delta(self.splitter.finish(), [])

    def finish_reason(self, reason: str) -> str:
        return "tool_calls" if self.calls else reason

    def _delta(self, content: str, calls: list) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if content:
            delta["content"] = content
        if calls:
            delta["tool_calls"] = []
            for call in calls:
                wire = call.wire()
                delta["tool_calls"].append({"index": self.calls, **wire})
                self.calls += 1
        return delta
