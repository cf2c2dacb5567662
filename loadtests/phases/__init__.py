"""The load-test phases, one module each; each `run(session, ...)` adds its results and sections."""
