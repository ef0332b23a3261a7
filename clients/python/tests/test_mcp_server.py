"""qefleet-mcp over stdio, driven by the MCP SDK's own client against the
live server: the tools are listed, each one is called, and the server's
rows show what they did."""

import asyncio
import json
import os
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = {
    "recommend_strategy",
    "report_task",
    "learning_status",
    "memory_get",
    "memory_put",
    "memory_query",
    "hints_read",
    "hint_add",
}


async def session_calls(server, state_dir):
    parameters = StdioServerParameters(
        command=str(Path(sys.executable).with_name("qefleet-mcp")),
        env={
            **os.environ,
            "QEFLEET_URL": server.url,
            "QEFLEET_TOKEN": server.tokens["mcp-agent"],
            "QEFLEET_AGENT": "mcp-agent",
            "QEFLEET_STATE_DIR": str(state_dir),
            # Patience for a loaded machine: a fallback here would not be the server's answer.
            "QEFLEET_FALLBACK_AFTER": "120",
            "QEFLEET_TIMEOUT": "60",
        },
    )
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}

        async def call(name, **arguments):
            result = await session.call_tool(name, arguments)
            assert not result.isError, result.content
            return json.loads(result.content[0].text)

        answers = {"recommend_strategy": await call("recommend_strategy", task_type="unit-test", complexity=0.3)}
        answers["report_task"] = await call(
            "report_task",
            ticket=answers["recommend_strategy"]["ticket"],
            success=False,
            execution_time_ms=1200,
            errors=["AssertionError: 2 tests failed"],
            coverage=0.7,
        )
        answers["learning_status"] = await call("learning_status")
        answers["memory_put"] = await call(
            "memory_put", partition="notes", key="mcp/seen", value={"n": 1}, access_level="swarm"
        )
        answers["memory_get"] = await call("memory_get", partition="notes", key="mcp/seen")
        answers["memory_query"] = await call("memory_query", partition="notes", prefix="mcp/")
        answers["hint_add"] = await call("hint_add", key="mcp/tip", value="run the slow suite last")
        answers["hints_read"] = await call("hints_read", prefix="mcp/")
        unknown = await session.call_tool("report_task", {"ticket": "nope", "success": True, "execution_time_ms": 1})
        return tools, answers, unknown


def test_every_tool_is_listed_described_and_works_against_the_server(server, tmp_path):
    tools, answers, unknown = asyncio.run(session_calls(server, tmp_path))
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description) > 20 and tool.inputSchema["type"] == "object"
    assert tools["report_task"].inputSchema["required"] == ["ticket", "success", "execution_time_ms"]

    recommended = answers["recommend_strategy"]
    assert recommended["source"] == "server" and recommended["strategy"]
    reported = answers["report_task"]
    assert reported["queued"] is False
    assert (
        server.count(
            "learning_execution",
            id=reported["execution_id"],
            success=False,
            error_count=1,
            decision_id=recommended["decision_id"].replace("-", ""),
        )
        == 1
    )
    assert answers["learning_status"]["agent_id"] == "mcp-agent" and answers["learning_status"]["tasks"] >= 1
    assert answers["memory_get"]["value"] == {"n": 1}
    assert [entry["key"] for entry in answers["memory_query"]["items"]] == ["mcp/seen"]
    assert server.count("memory_entries", owner="mcp-agent", key="mcp/seen") == 1
    assert [hint["id"] for hint in answers["hints_read"]["items"]] == [answers["hint_add"]["id"]]
    assert server.count("hints", owner="mcp-agent", key="mcp/tip") == 1
    assert unknown.isError and "recommend_strategy first" in unknown.content[0].text
