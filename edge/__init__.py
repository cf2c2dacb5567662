"""moviemind edge: the latency-critical tier that runs near the user."""
