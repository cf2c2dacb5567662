"""`python -m model_server` serves; `compat IN.gguf OUT.gguf` rewrites; `weights upload` uploads.

Configuration and model problems print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import sys

from model_server.chat_template import ChatTemplateError
from model_server.engines.base import EngineError
from model_server.gguf_file import GgufError
from model_server.model_source import ModelSourceError
from model_server.settings import SettingsError, load_settings
from model_server.weights_upload import UploadError

USAGE = """usage: python -m model_server            serve (settings from MOVIEMIND_MODEL_* variables)
       python -m model_server compat IN.gguf OUT.gguf   rewrite a GGUF so ctransformers loads it
       python -m model_server weights upload FILE --bucket B [--key K] [--endpoint URL]
                                                 put a GGUF into S3 storage with its sha256"""

_EXPECTED = (
    SettingsError,
    GgufError,
    ModelSourceError,
    ChatTemplateError,
    EngineError,
    UploadError,
)


def main(argv: list[str]) -> int:
    """Entry point; returns the exit code."""
    try:
        if argv[:1] == ["compat"]:
            if len(argv) != 3:
                print(USAGE, file=sys.stderr)
                return 2
            from model_server.compat import main as compat_main

            return compat_main(argv[1], argv[2])
        if argv[:2] == ["weights", "upload"]:
            from model_server.weights_upload import main as upload_main

            return upload_main(argv[2:])
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
