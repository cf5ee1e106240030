"""``python -m examples.content``: run the content pipeline once, end to end, on this machine.

A publication endpoint starts on 127.0.0.1; the run's editor approves the last draft, which is
then POSTed there. Exits 0 when the workflow completed. Set ``OPENAI_BASE_URL`` (with
``OPENAI_API_KEY`` and ``ORCH_LLM_MODEL``) to draft with a real model instead of the fake one.
"""

from __future__ import annotations

import sys

import click

from examples.common import run_example
from examples.content import content_example
from examples.content.receiver import PublicationReceiver


def main() -> int:
    """Start the endpoint, run the example against it, report what it received."""
    with PublicationReceiver() as receiver:
        code = run_example(content_example(receiver.publish_url))
        for publication in receiver.publications:
            click.echo(f"published {publication.title!r} at {publication.url}")
    return code


if __name__ == "__main__":
    sys.exit(main())
