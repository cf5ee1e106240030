"""``python -m examples.support``: run the customer-service session once, end to end."""

from __future__ import annotations

import sys

from examples.common import run_example
from examples.support import EXAMPLE

if __name__ == "__main__":
    sys.exit(run_example(EXAMPLE))
