"""``python -m examples.agent [--question TEXT] [--max-steps N]``: run the agent loop once."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from examples.agent import EXAMPLE, QUESTION
from examples.common import run_example


def main(argv: list[str] | None = None) -> int:
    """Run the example on an embedded broker; 0 if the workflow completed."""
    parser = argparse.ArgumentParser(prog="python -m examples.agent", description=__doc__)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--max-steps", type=int, default=10)
    args = parser.parse_args(argv)
    example = dataclasses.replace(
        EXAMPLE, input={"question": args.question, "maxSteps": args.max_steps}
    )
    return run_example(example)


if __name__ == "__main__":
    sys.exit(main())
