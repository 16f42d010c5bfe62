"""Constrained decoding in the batched engine (xgrammar through ``TokenConstraint``) and the tool-call
text format, on the tiny base: outputs parse and validate; a constrained row and a free row of
another org share one batch and each behaves as alone."""

from __future__ import annotations

import json
import threading

import jsonschema
import pytest

from orgmem.models.tokens import encode_chat
from orgmem.serving.engine import Failed, Finished, GenerationEngine, GenerationRequest
from orgmem.serving.grammar import GrammarError, GrammarSpec, compiler_for
from orgmem.serving.sampling import SamplingParams
from orgmem.serving.toolcalls import (
    CALL_CLOSE,
    CALL_OPEN,
    ToolCallSplitter,
    call_schema,
    parse_tool_calls,
    plain_messages,
)
from tests.serving.test_serving_engine import perturbed_memory, row_memory

# Bounded schemas: a random model must be able to finish them within max_tokens.
SCHEMAS = {
    "flat": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "age"],
        "properties": {
            "name": {"type": "string", "maxLength": 8},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
    },
    "nested_enum_array": {
        "type": "object",
        "required": ["color", "tags", "inner"],
        "properties": {
            "color": {"enum": ["red", "green", "blue"]},
            "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
            "inner": {
                "type": "object",
                "required": ["ok", "level"],
                "additionalProperties": False,
                "properties": {"ok": {"type": "boolean"}, "level": {"enum": ["low", "high"]}},
            },
        },
    },
    "array_of_objects": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "integer", "maximum": 99, "minimum": 0}},
                },
            }
        },
    },
}


def _run(engine, prompt, constraint=None, memory=None, max_tokens=200, temperature=0.0, seed=0):
    done, box = threading.Event(), {}

    def on_event(event):
        if isinstance(event, Finished | Failed):
            box["end"] = event
            done.set()

    req = GenerationRequest(
        prompt_ids=prompt,
        memory=memory,
        on_event=on_event,
        constraint=constraint,
        params=SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed),
    )
    engine.submit(req)
    return done, box


def _compiler(engine):
    return compiler_for(engine.tokenizer, engine.model.config.vocab_size, engine.stop_ids)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_json_schema_row_always_parses_and_validates(tiny_base, name, temperature):
    engine = GenerationEngine(tiny_base).start()
    try:
        comp = _compiler(engine)
        runs = [
            _run(
                engine,
                encode_chat(tiny_base.tokenizer, "hi"),
                comp.constraint(GrammarSpec.json_schema(SCHEMAS[name])),
                temperature=temperature,
                seed=s,
            )
            for s in range(3)
        ]
        for done, _ in runs:
            assert done.wait(60)
    finally:
        engine.stop()
    for _, box in runs:
        end = box["end"]
        assert isinstance(end, Finished) and end.reason == "stop", end
        jsonschema.validate(json.loads(end.text), SCHEMAS[name])


def test_json_object_row_is_one_json_object(tiny_base):
    engine = GenerationEngine(tiny_base).start()
    try:
        done, box = _run(
            engine,
            encode_chat(tiny_base.tokenizer, "hi"),
            _compiler(engine).constraint(GrammarSpec.json_object()),
            temperature=1.0,
            seed=3,
        )
        assert done.wait(60)
    finally:
        engine.stop()
    assert box["end"].reason == "stop"
    assert isinstance(json.loads(box["end"].text), dict)


def test_max_tokens_cuts_a_constrained_reply_with_length(tiny_base):
    engine = GenerationEngine(tiny_base).start()
    try:
        done, box = _run(
            engine,
            encode_chat(tiny_base.tokenizer, "hi"),
            _compiler(engine).constraint(GrammarSpec.json_schema(SCHEMAS["flat"])),
            max_tokens=4,
        )
        assert done.wait(60)
    finally:
        engine.stop()
    assert box["end"].reason == "length" and box["end"].completion_tokens == 4
    assert box["end"].text.startswith("{")


def test_mixed_batch_constrained_row_and_free_row_of_another_org_each_behave_as_alone(tiny_base):
    acme, globex = (row_memory(tiny_base, perturbed_memory(tiny_base, "cms", seed=s)[0]) for s in (6, 7))
    prompt = encode_chat(tiny_base.tokenizer, "hi")
    engine = GenerationEngine(tiny_base, max_batch=4)
    comp = _compiler(engine)
    schema = SCHEMAS["nested_enum_array"]
    # submitted before start: the first step prefills both rows together; they decode in one batch
    c_done, c_box = _run(engine, prompt, comp.constraint(GrammarSpec.json_schema(schema)), memory=acme)
    f_done, f_box = _run(engine, prompt, None, memory=globex, max_tokens=30)
    engine.start()
    try:
        assert c_done.wait(60) and f_done.wait(60)
        assert engine.stats.max_batch_seen == 2
        solo_c_done, solo_c = _run(
            engine, prompt, comp.constraint(GrammarSpec.json_schema(schema)), memory=acme
        )
        solo_f_done, solo_f = _run(engine, prompt, None, memory=globex, max_tokens=30)
        assert solo_c_done.wait(60) and solo_f_done.wait(60)
    finally:
        engine.stop()
    jsonschema.validate(json.loads(c_box["end"].text), schema)
    assert c_box["end"].text == solo_c["end"].text
    assert f_box["end"].text == solo_f["end"].text, "the free row of the batch is not constrained"
    assert f_box["end"].completion_tokens == 30 and f_box["end"].reason == "length"
    assert not f_box["end"].text.startswith("{")


def test_a_forced_tool_call_follows_the_function_schema(tiny_base):
    params = {
        "type": "object",
        "required": ["city", "unit"],
        "additionalProperties": False,
        "properties": {"city": {"type": "string", "maxLength": 10}, "unit": {"enum": ["c", "f"]}},
    }
    engine = GenerationEngine(tiny_base).start()
    try:
        spec = GrammarSpec.framed(
            call_schema([{"name": "get_weather", "parameters": params}]), CALL_OPEN, CALL_CLOSE
        )
        done, box = _run(
            engine,
            encode_chat(tiny_base.tokenizer, "hi"),
            _compiler(engine).constraint(spec),
            temperature=1.0,
            seed=5,
        )
        assert done.wait(60)
    finally:
        engine.stop()
    content, calls = parse_tool_calls(box["end"].text, frozenset({"get_weather"}))
    assert content == "" and len(calls) == 1 and calls[0].name == "get_weather"
    jsonschema.validate(json.loads(calls[0].arguments), params)


def test_logits_wider_than_the_tokenizer_are_never_allowed(tiny_base):
    width = tiny_base.model.config.vocab_size
    assert width > len(tiny_base.tokenizer)  # the tiny base pads its embedding: 512 rows, 259 tokens
    engine = GenerationEngine(tiny_base)
    constraint = _compiler(engine).constraint(GrammarSpec.json_object())
    mask = constraint.allowed(width)
    assert mask.shape == (width,) and not bool(mask[len(tiny_base.tokenizer) :].any())
    assert constraint.allowed(width + 64).shape == (width + 64,)


def test_an_unusable_schema_is_a_grammar_error(tiny_base):
    engine = GenerationEngine(tiny_base)
    with pytest.raises(GrammarError, match="JSON schema"):
        _compiler(engine).compiled(GrammarSpec("json_schema", "{not json"))


def test_tool_call_blocks_are_read_whole_and_streamed_the_same():
    names = frozenset({"f"})
    text = (
        'ok <tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
        '<tool_call>{"name": "g"}</tool_call>'
    )
    content, calls = parse_tool_calls(text, names)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("f", {"a": 1})]
    assert content == 'ok <tool_call>{"name": "g"}</tool_call>', "an unknown tool's block stays content"
    splitter = ToolCallSplitter(names)
    streamed, got = [], []
    for i in range(0, len(text), 3):
        piece, new = splitter.feed(text[i : i + 3])
        streamed.append(piece)
        got += new
    streamed.append(splitter.finish())
    assert [(c.name, c.arguments) for c in got] == [(c.name, c.arguments) for c in calls]
    assert "".join(streamed) == 'ok <tool_call>{"name": "g"}</tool_call>'


def test_plain_rendering_puts_tools_in_the_system_turn_and_results_in_a_user_turn():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    turns = plain_messages(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                ],
            },
            {"role": "tool", "content": "r1", "tool_call_id": "call_1"},
            {"role": "tool", "content": "r2", "tool_call_id": "call_2"},
        ],
        tools,
    )
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert '"name": "f"' in turns[0]["content"] and "<tools>" in turns[0]["content"]
    assert turns[2]["content"] == '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    assert turns[3]["content"] == (
        "<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response>"
    )


def test_auto_mode_reads_a_written_call_whole_and_streamed():
    from orgmem.api.structured import ChatShaper, chat_message, chat_plan

    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    plan = chat_plan({"tools": tools})
    assert plan.grammar is None and plan.names == {"f"}, "auto: rendered and read back, not constrained"
    text = 'Let me check.<tool_call>\n{"name": "f", "arguments": {"q": "x"}}\n</tool_call>'
    message, reason = chat_message(plan, text, "stop")
    assert reason == "tool_calls" and message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"q": "x"}'}
    shaper = ChatShaper(plan)
    deltas = [shaper.delta(text[i : i + 4]) for i in range(0, len(text), 4)] + [shaper.final_delta()]
    assert "".join(d.get("content", "") for d in deltas) == "Let me check."
    (call,) = [c for d in deltas for c in d.get("tool_calls", [])]
    assert call["index"] == 0 and call["function"] == message["tool_calls"][0]["function"]
    assert shaper.finish_reason("stop") == "tool_calls"
    assert chat_message(chat_plan({"tools": tools, "tool_choice": "none"}), text, "stop") == (
        {"role": "assistant", "content": text, "refusal": None},
        "stop",
    )


def test_a_template_that_takes_tools_renders_them_itself(tiny_base):
    import copy

    from orgmem.serving.toolcalls import encode_with_tools

    tokenizer = copy.deepcopy(tiny_base.tokenizer)
    tokenizer.chat_template = (
        "{% for t in tools %}[TOOL {{ t.function.name }}]{% endfor %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}"
        "{% for c in m.tool_calls or [] %}[CALL {{ c.function.name }} {{ c.function.arguments.a }}]"
        "{% endfor %}"
        "{% endfor %}<assistant>"
    )
    tools = [{"type": "function", "function": {"name": "f"}}]
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 7}'}}
            ],
        },
        {"role": "tool", "content": "r", "tool_call_id": "c1"},
    ]
    text = tokenizer.decode(encode_with_tools(tokenizer, messages, tools))
    assert text == "[TOOL f]<user>q<assistant>[CALL f 7]<tool>r<assistant>", "arguments reach it as a dict"
