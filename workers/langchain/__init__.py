"""LangChain on the engine: runnables as task handlers, workflows as tools.

Install with ``pip install 'orchestrator[langchain]'`` (langchain-core).

```python
from langchain_core.prompts import ChatPromptTemplate
from orchestrator.client import Client
from orchestrator.worker import Worker
from workers.langchain import WorkflowTool, runnable_task

worker = Worker(name="langchain")
chain = ChatPromptTemplate.from_template("Summarize: {text}") | chat_model
runnable_task(worker, "summarize", chain)          # output: {"output": {"role", "content"}}

tool = WorkflowTool.from_definition(Client(settings), definition, timeout=120)
chat_model.bind_tools([tool])                       # an agent's tool call runs the workflow
```

:func:`runnable_task` serves any ``Runnable`` (a chain built with ``|``, a tool, a model) as a
task type; how its exceptions fail the task is in :mod:`workers.langchain.tasks`.
:class:`WorkflowTool` is a ``BaseTool`` that starts a workflow with the call's arguments and
returns its output.
"""

from __future__ import annotations

try:
    from workers.langchain.convert import RunnableOutputError, to_json
    from workers.langchain.tasks import RunnableInputError, RunnableTask, runnable_task
    from workers.langchain.tool import WorkflowRunner, WorkflowTool
except ModuleNotFoundError as exc:  # pragma: no cover - only without the extra
    if not (exc.name or "").startswith("langchain_core"):
        raise
    raise ModuleNotFoundError(
        "workers.langchain needs langchain-core: pip install 'orchestrator[langchain]'",
        name=exc.name,
    ) from exc

__all__ = [
    "RunnableInputError",
    "RunnableOutputError",
    "RunnableTask",
    "WorkflowRunner",
    "WorkflowTool",
    "runnable_task",
    "to_json",
]
