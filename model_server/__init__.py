"""moviemind's model server: a GGUF model on CPU behind an OpenAI-compatible HTTP API."""
