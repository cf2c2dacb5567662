"""Load tests: Locust scenarios, a runner that starts a local stack, objectives, reports."""
