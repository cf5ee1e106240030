"""Netflix Conductor workflow definitions, each with a case: input, signals, expected result."""
