"""The agent-loop example: a model that calls tools in a DO_WHILE until it answers.

Each step of the loop calls LLM_CHAT_COMPLETE with the conversation so far and the tools'
schemas, then runs the first tool the model chose: ``calculator`` or ``lookup`` as a DYNAMIC
task, ``research`` as a SUB_WORKFLOW of its own. The tool's result goes back into the
conversation, until the model answers or ``maxSteps`` steps ran. Run it with
``python -m examples.agent``; see README.md.
"""

from __future__ import annotations

from pathlib import Path

from examples.common import Example

__all__ = ["EXAMPLE", "QUESTION"]

HERE = Path(__file__).resolve().parent
QUESTION = "What is 6 * 7, what is Kafka, and what does event sourcing mean here?"

EXAMPLE = Example(
    name="agent",
    workflow="tool_agent",
    definitions=[
        HERE / "definitions" / "agent_research.json",
        HERE / "definitions" / "agent_loop.json",
    ],
    worker_modules=["examples.agent.workers"],
    input={"question": QUESTION, "maxSteps": 10},
    fake_script=HERE / "fake_llm.json",
    timeout_s=120.0,
)
