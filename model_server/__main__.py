"""`python -m model_server` serves; `python -m model_server compat IN.gguf OUT.gguf` rewrites.

Configuration and model problems print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import sys

from model_server.chat_template import ChatTemplateError
from model_server.engines.base import EngineError
from model_server.gguf_file import GgufError
from model_server.model_source import ModelSourceError
from model_server.settings import SettingsError, load_settings

USAGE = """usage: python -m model_server            serve (settings from MOVIEMIND_MODEL_* variables)
       python -m model_server compat IN.gguf OUT.gguf   rewrite a GGUF so ctransformers loads it"""

_EXPECTED = (SettingsError, GgufError, ModelSourceError, ChatTemplateError, EngineError)


def main(argv: list[str]) -> int:
    """Entry point; returns the exit code."""
    try:
        if argv[:1] == ["compat"]:
            if len(argv) != 3:
                print(USAGE, file=sys.stderr)
                return 2
            from model_server.compat import main as compat_main

            return compat_main(argv[1], argv[2])
        if argv:
            print(USAGE, file=sys.stderr)
            return 0 if argv[0] in ("-h", "--help", "help") else 2
        settings = load_settings()
        from model_server.server import configure_logging, serve

        configure_logging(settings.log_level)
        return serve(settings)
    except _EXPECTED as exc:
        message = " ".join(str(exc).split())  # one line, whatever the library said
        print(f"model_server: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
