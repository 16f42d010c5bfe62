"""Tool calls: rendering tool schemas and past calls into the prompt, and reading calls back out.

The wire format the model is asked to use (and that a forced call is constrained to) is the
Hermes / Qwen one::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Oslo"}}
    </tool_call>

Rendering: a base whose chat template takes ``tools`` (its Jinja source names them) renders them
itself (``apply_chat_template(..., tools=...)``). Otherwise (SmolLM2, the tiny test base) the tool
schemas go into the system message (``tool_system_prompt``), an assistant turn's past calls into
its content as the blocks above, and tool results into a user turn of ``<tool_response>`` blocks:
the rendering Qwen2.5's template uses, which plain ChatML templates can carry.

Reading: every complete ``<tool_call>`` block whose JSON names a declared tool is a call; any
other text is content. ``ToolCallSplitter`` does the same on a stream, holding back text that
may still become a block.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orgmem.models.tokens import encode_chat

CALL_OPEN = "<tool_call>\n"
CALL_CLOSE = "\n</tool_call>"
_OPEN_TAG = "<tool_call>"
_CLOSE_TAG = "</tool_call>"
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)

TOOLS_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n"
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def template_takes_tools(tokenizer) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def tool_system_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """The tool schemas as a system prompt (bases whose template has no tool support)."""
    return TOOLS_PROMPT.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))


def encode_with_tools(tokenizer, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
                      ) -> list[int]:
    """Prompt ids of a conversation with tool schemas, past calls and tool results."""
    if template_takes_tools(tokenizer):
        native = [_native_message(m) for m in messages]
        text = tokenizer.apply_chat_template(native, tools=list(tools) or None, add_generation_prompt=True,
                                             tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return encode_chat(tokenizer, plain_messages(messages, tools))


def plain_messages(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
                   ) -> list[dict[str, str]]:
    """The conversation as role/content turns only, tool schemas in the system turn (see module doc)."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            blocks = [CALL_OPEN + json.dumps({"name": c["function"]["name"],
                                              "arguments": _arguments(c["function"].get("arguments"))},
                                             ensure_ascii=False) + CALL_CLOSE for c in m["tool_calls"]]
            text = "\n".join(filter(None, [m.get("content") or "", *blocks]))
            out.append({"role": "assistant", "content": text})
        elif m["role"] == "tool":
            block = f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1]["content"].startswith("<tool_response>"):
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + block}
            else:
                out.append({"role": "user", "content": block})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    if tools:
        prompt = tool_system_prompt(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{prompt}"}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def _native_message(m: dict[str, Any]) -> dict[str, Any]:
    """HF chat-template form: a call's arguments as a dict (templates apply ``tojson`` to them)."""
    if m["role"] == "assistant" and m.get("tool_calls"):
        calls = [{"type": "function", "id": c.get("id"), "function": {
            "name": c["function"]["name"], "arguments": _arguments(c["function"].get("arguments"))}}
            for c in m["tool_calls"]]
        return {"role": "assistant", "content": m.get("content") or "", "tool_calls": calls}
    return dict(m)


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments if arguments is not None else {}


def call_schema(functions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """JSON schema of one call of any of ``functions`` (OpenAI ``function`` objects)."""
    options = [{"type": "object", "properties": {
        "name": {"const": f["name"]},
        "arguments": f.get("parameters") or {"type": "object", "properties": {}}},
        "required": ["name", "arguments"], "additionalProperties": False} for f in functions]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _read_block(body: str, names: frozenset[str]) -> ToolCall | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("name") not in names:
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return ToolCall(new_call_id(), str(value["name"]), text)


def parse_tool_calls(text: str, names: frozenset[str]) -> tuple[str, list[ToolCall]]:
    """(content outside the calls, the calls) of a finished reply."""
    calls: list[ToolCall] = []
    content: list[str] = []
    last = 0
    for match in _BLOCK.finditer(text):
        call = _read_block(match.group(1), names)
        if call is None:
            continue
        content.append(text[last:match.start()])
        calls.append(call)
        last = match.end()
    content.append(text[last:])
    return ("".join(content).strip() if calls else text), calls


class ToolCallSplitter:
    """Streaming ``parse_tool_calls``: ``feed`` text deltas, get (content, calls) ready to send."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.buffer = ""
        self.in_call = False
        self.calls = 0

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        self.buffer += text
        content: list[str] = []
        calls: list[ToolCall] = []
        while True:
            if self.in_call:
                end = self.buffer.find(_CLOSE_TAG)
                if end < 0:
                    break
                body, self.buffer = self.buffer[:end], self.buffer[end + len(_CLOSE_TAG):]
                self.in_call = False
                call = _read_block(body, self.names)
                if call is None:
                    content.append(_OPEN_TAG + body + _CLOSE_TAG)
                else:
                    calls.append(call)
                continue
            start = self.buffer.find(_OPEN_TAG)
            if start < 0:
                keep = _partial_tail(self.buffer, _OPEN_TAG)
                content.append(self.buffer[:len(self.buffer) - keep])
                self.buffer = self.buffer[len(self.buffer) - keep:]
                break
            content.append(self.buffer[:start])
            self.buffer, self.in_call = self.buffer[start + len(_OPEN_TAG):], True
        self.calls += len(calls)
        return "".join(content), calls

    def finish(self) -> str:
        """Text still held back when the reply ended (an unfinished block is content)."""
        rest = (_OPEN_TAG if self.in_call else "") + self.buffer
        self.buffer, self.in_call = "", False
        return rest


def _partial_tail(text: str, tag: str) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
