"""Structured output, tools and the Responses API through the official ``openai`` client against a
running server on the tiny base (a random model: every guarantee here comes from the grammar)."""

from __future__ import annotations

import json
import threading
from enum import StrEnum

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.serving.test_structured_engine import SCHEMAS

WEATHER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["city", "unit"],
    "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]}},
}
TIME = {
    "type": "object",
    "additionalProperties": False,
    "required": ["zone"],
    "properties": {"zone": {"enum": ["UTC", "CET"]}},
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather in a city.", "parameters": WEATHER},
    },
    {"type": "function", "function": {"name": "get_time", "parameters": TIME}},
]
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]


def _json_schema(name: str, schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_chat_json_schema_output_parses_and_validates(deployment, name):
    client = deployment.client("acme-employee")
    for seed in (1, 2):
        resp = client.chat.completions.create(
            model="acme",
            messages=ASK,
            max_tokens=300,
            temperature=1.0,
            seed=seed,
            response_format=_json_schema(name, SCHEMAS[name]),
        )
        assert resp.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(resp.choices[0].message.content), SCHEMAS[name])


def test_streamed_structured_output_equals_the_whole_reply(deployment):
    client = deployment.client("acme-employee")
    kw = {"model": "acme", "messages": ASK, "max_tokens": 300, "temperature": 0,
          "response_format": _json_schema("nested", SCHEMAS["nested_enum_array"])}
    full = client.chat.completions.create(**kw)
    chunks = list(client.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    jsonschema.validate(json.loads(text), SCHEMAS["nested_enum_array"])
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


class Level(StrEnum):
    low = "low"
    high = "high"


class Item(BaseModel):
    id: int = Field(ge=0, le=9)
    ok: bool


class Report(BaseModel):
    level: Level
    items: list[Item] = Field(max_length=2)


def test_the_clients_parse_helper_gets_its_pydantic_model(deployment):
    client = deployment.client("acme-employee")
    resp = client.chat.completions.parse(
        model="acme", messages=ASK, max_tokens=300, temperature=1.0, seed=4, response_format=Report
    )
    parsed = resp.choices[0].message.parsed
    assert isinstance(parsed, Report) and len(parsed.items) <= 2


def test_json_object_on_chat_and_completions(deployment):
    client = deployment.client("acme-employee")
    # a random base may write one long string until max_tokens (then "length", unfinished JSON, as
    # OpenAI): every reply that ends by itself must parse, and some must end by themselves
    chat = client.chat.completions.create(model="acme", messages=ASK, max_tokens=100, temperature=1.0,
                                          seed=3, n=6, response_format={"type": "json_object"})
    ended = [c.message.content for c in chat.choices if c.finish_reason == "stop"]
    assert ended, [c.finish_reason for c in chat.choices]
    assert all(isinstance(json.loads(text), dict) for text in ended)
    text = client.completions.create(
        model="acme",
        prompt="JSON:",
        max_tokens=300,
        temperature=1.0,
        seed=5,
        extra_body={"response_format": _json_schema("flat", SCHEMAS["flat"])},
    )
    assert text.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(text.choices[0].text), SCHEMAS["flat"])


def test_max_tokens_cuts_structured_output_with_length(deployment):
    client = deployment.client("acme-employee")
    resp = client.chat.completions.create(
        model="acme",
        messages=ASK,
        max_tokens=3,
        temperature=0,
        response_format=_json_schema("flat", SCHEMAS["flat"]),
    )
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].message.content.startswith("{") and resp.usage.completion_tokens == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_malformed_structured_fields_answer_400_naming_them(deployment, body, param):
    resp = httpx.post(
        f"{deployment.url}/v1/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {deployment.keys['acme-employee']}"},
        json={"model": "acme", "messages": ASK, **body},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


def test_completions_refuse_tools(deployment):
    client = deployment.client("acme-employee")
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="acme", prompt="x", extra_body={"tools": TOOLS})
    assert err.value.body["code"] == "unsupported_parameter"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tool_choice_required_calls_a_declared_tool_with_valid_arguments(deployment, seed):
    client = deployment.client("acme-employee")
    resp = client.chat.completions.create(
        model="acme",
        messages=ASK,
        tools=TOOLS,
        tool_choice="required",
        max_tokens=300,
        temperature=1.0,
        seed=seed,
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    schema = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
    jsonschema.validate(json.loads(call.function.arguments), schema)


def test_a_named_tool_choice_calls_that_function(deployment):
    client = deployment.client("acme-employee")
    resp = client.chat.completions.create(
        model="acme",
        messages=ASK,
        tools=TOOLS,
        max_tokens=300,
        temperature=1.0,
        seed=7,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    (call,) = resp.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    jsonschema.validate(json.loads(call.function.arguments), TIME)


def test_tool_choice_none_and_auto_answer_with_a_message(deployment):
    client = deployment.client("acme-employee")
    plain = client.chat.completions.create(model="acme", messages=ASK, max_tokens=8, temperature=0)
    none = client.chat.completions.create(
        model="acme", messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=8, temperature=0
    )
    auto = client.chat.completions.create(
        model="acme", messages=ASK, tools=TOOLS, max_tokens=8, temperature=0
    )
    assert none.choices[0].message.content == plain.choices[0].message.content
    assert none.usage.prompt_tokens == plain.usage.prompt_tokens, "'none' renders no tools"
    assert auto.usage.prompt_tokens > plain.usage.prompt_tokens + 50, "'auto' renders the tool schemas"
    assert auto.choices[0].message.tool_calls is None  # the random model wrote no <tool_call> block
    assert auto.choices[0].finish_reason in ("stop", "length")


def test_streamed_tool_call_deltas_reassemble_to_the_non_streamed_call(deployment):
    client = deployment.client("acme-employee")
    kw = {
        "model": "acme",
        "messages": ASK,
        "tools": TOOLS,
        "tool_choice": "required",
        "max_tokens": 300,
        "temperature": 1.0,
        "seed": 11,
    }
    full = client.chat.completions.create(**kw).choices[0].message.tool_calls
    calls: dict[int, dict] = {}
    finish = []
    for chunk in client.chat.completions.create(**kw, stream=True):
        delta = chunk.choices[0].delta
        for piece in delta.tool_calls or []:
            call = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = piece.id or call["id"]
            call["name"] += piece.function.name or ""
            call["arguments"] += piece.function.arguments or ""
        if chunk.choices[0].finish_reason:
            finish.append(chunk.choices[0].finish_reason)
    assert finish == ["tool_calls"]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        (c.function.name, json.loads(c.function.arguments)) for c in full
    ]
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_tool_turns_in_the_input_are_accepted_and_rendered(deployment):
    client = deployment.client("acme-employee")
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo", "unit": "celsius"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees and rain"},
    ]
    without = client.chat.completions.create(
        model="acme", messages=ASK, tools=TOOLS, max_tokens=4, temperature=0
    )
    resp = client.chat.completions.create(
        model="acme", messages=messages, tools=TOOLS, max_tokens=4, temperature=0
    )
    assert resp.choices[0].finish_reason in ("stop", "length")
    tokenizer = deployment.state.engine.tokenizer
    added = len(
        tokenizer(
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}'
            "\n</tool_call><tool_response>\n4 degrees and rain\n</tool_response>",
            add_special_tokens=False,
        )["input_ids"]
    )
    assert resp.usage.prompt_tokens >= without.usage.prompt_tokens + added


def test_a_constrained_request_and_a_free_one_of_another_org_run_together(deployment):
    """Two orgs in flight at once: globex's free answer is its own, acme's follows the schema."""
    acme, globex = deployment.client("acme-employee"), deployment.client("globex-employee")
    alone = globex.completions.create(
        model="globex", prompt="The vault code is", max_tokens=12, temperature=0
    )
    box: dict = {}

    def constrained() -> None:
        box["acme"] = acme.chat.completions.create(
            model="acme",
            messages=ASK,
            max_tokens=300,
            temperature=1.0,
            seed=9,
            response_format=_json_schema("nested", SCHEMAS["nested_enum_array"]),
        )

    thread = threading.Thread(target=constrained)
    thread.start()
    together = globex.completions.create(
        model="globex", prompt="The vault code is", max_tokens=12, temperature=0
    )
    thread.join(60)
    assert together.choices[0].text == alone.choices[0].text and "9876" in together.choices[0].text
    jsonschema.validate(json.loads(box["acme"].choices[0].message.content), SCHEMAS["nested_enum_array"])


# -- Responses API -------------------------------------------------------------------------------


def test_responses_create_text_matches_chat(deployment):
    client = deployment.client("acme-employee")
    resp = client.responses.create(
        model="acme",
        input="What is the weather in Oslo?",
        instructions="Be brief.",
        max_output_tokens=8,
        temperature=0,
    )
    chat = client.chat.completions.create(
        model="acme", max_tokens=8, temperature=0, messages=[{"role": "system", "content": "Be brief."}, *ASK]
    )
    assert resp.object == "response" and resp.id.startswith("resp_")
    assert resp.output_text == chat.choices[0].message.content
    assert resp.output[0].type == "message" and resp.output[0].content[0].type == "output_text"
    assert resp.usage.input_tokens == chat.usage.prompt_tokens
    assert resp.usage.output_tokens == chat.usage.completion_tokens
    if chat.choices[0].finish_reason == "length":
        assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    else:
        assert resp.status == "completed"


def test_responses_json_schema_format_validates(deployment):
    client = deployment.client("acme-employee")
    resp = client.responses.create(
        model="acme",
        input=ASK,
        max_output_tokens=300,
        temperature=1.0,
        text={
            "format": {
                "type": "json_schema",
                "name": "nested",
                "schema": SCHEMAS["nested_enum_array"],
                "strict": True,
            }
        },
    )
    assert resp.status == "completed"
    jsonschema.validate(json.loads(resp.output_text), SCHEMAS["nested_enum_array"])


def test_responses_tool_call_and_its_output_as_next_input(deployment):
    client = deployment.client("acme-employee")
    tools = [
        {"type": "function", "name": t["function"]["name"], "parameters": t["function"]["parameters"]}
        for t in TOOLS
    ]
    first = client.responses.create(
        model="acme",
        input=ASK,
        tools=tools,
        max_output_tokens=300,
        tool_choice={"type": "function", "name": "get_weather"},
        temperature=1.0,
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER)
    second = client.responses.create(
        model="acme",
        tools=tools,
        max_output_tokens=5,
        temperature=0,
        input=[
            *ASK,
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "4 degrees"},
        ],
    )
    assert second.status in ("completed", "incomplete") and second.output[0].type == "message"


def test_responses_stream_sends_the_official_event_sequence(deployment):
    client = deployment.client("acme-employee")
    fmt = {"format": {"type": "json_schema", "name": "nested", "schema": SCHEMAS["nested_enum_array"]}}
    kw = {"model": "acme", "input": "Hello", "max_output_tokens": 300, "temperature": 0, "text": fmt}
    full = client.responses.create(**kw)
    with client.responses.stream(**kw) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == full.output_text == final.output_text
    assert final.status == full.status == "completed" and final.id == events[0].response.id
    jsonschema.validate(json.loads(final.output_text), SCHEMAS["nested_enum_array"])


def test_responses_stream_cut_by_max_output_tokens_ends_incomplete(deployment):
    client = deployment.client("acme-employee")
    with client.responses.stream(model="acme", input="Hello", max_output_tokens=4, temperature=0) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].response.usage.output_tokens == 4


def test_responses_stream_of_a_forced_tool_call(deployment):
    client = deployment.client("acme-employee")
    tools = [{"type": "function", "name": "get_time", "parameters": TIME}]
    with client.responses.stream(
        model="acme", input=ASK, tools=tools, tool_choice="required", max_output_tokens=300, temperature=1.0
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    (call,) = [item for item in final.output if item.type == "function_call"]
    args = next(e.arguments for e in events if e.type == "response.function_call_arguments.done")
    assert call.name == "get_time" and json.loads(args) == json.loads(call.arguments)
    jsonschema.validate(json.loads(call.arguments), TIME)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": [{"type": "input_image", "image_url": "x"}]}, "input.0.type"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"input": []}, "input"),
    ],
)
def test_responses_refuse_what_they_cannot_do_by_name(deployment, body, param):
    resp = httpx.post(
        f"{deployment.url}/v1/responses",
        timeout=30,
        json={"model": "acme", **body},
        headers={"Authorization": f"Bearer {deployment.keys['acme-employee']}"},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param
