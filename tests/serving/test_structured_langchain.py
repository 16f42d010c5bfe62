"""LangChain's ``ChatOpenAI`` (a real client nobody here wrote) against the running server: structured
output into a pydantic model and a forced tool call, through chat completions and the Responses API."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.serving.test_structured_openai import Level


class Finding(BaseModel):
    """One finding of the audit."""

    code: int = Field(ge=0, le=99)
    severe: bool


class Audit(BaseModel):
    """An audit of the vault."""

    level: Level
    findings: list[Finding] = Field(max_length=2)


class WeatherArgs(BaseModel):
    city: str = Field(max_length=12)  # bounded: the tiny base is random, only the grammar ends a string
    unit: Level


@tool(args_schema=WeatherArgs)
def get_weather(city: str, unit: Level) -> str:
    """The weather in a city."""
    return f"{city}: 4 degrees"


def _llm(deployment, responses_api: bool) -> ChatOpenAI:
    # seeded (the Responses API has no seed parameter: it travels in the body, as vLLM takes it)
    seed = {"extra_body": {"seed": 3}} if responses_api else {"seed": 3}
    return ChatOpenAI(base_url=f"{deployment.url}/v1", api_key=deployment.keys["acme-employee"], model="acme",
                      temperature=1.0, max_tokens=300, max_retries=0, timeout=60,
                      use_responses_api=responses_api, **seed)


@pytest.mark.parametrize("responses_api", [False, True])
def test_with_structured_output_returns_the_pydantic_model(deployment, responses_api):
    llm = _llm(deployment, responses_api)
    audit = llm.with_structured_output(Audit, method="json_schema", strict=True).invoke("Audit the vault.")
    assert isinstance(audit, Audit) and len(audit.findings) <= 2


@pytest.mark.parametrize("responses_api", [False, True])
def test_bind_tools_with_a_forced_choice_returns_a_tool_call(deployment, responses_api):
    llm = _llm(deployment, responses_api)
    reply = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("Weather in Oslo?")
    assert isinstance(reply, AIMessage)
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and set(call["args"]) == {"city", "unit"}
    assert call["args"]["unit"] in ("low", "high") and call["id"].startswith("call_")
    result = get_weather.invoke(call)  # the tool runs on what the model sent, and the turn goes on
    follow = llm.bind_tools([get_weather]).invoke(["Weather in Oslo?", reply, result])
    assert isinstance(follow, AIMessage)
