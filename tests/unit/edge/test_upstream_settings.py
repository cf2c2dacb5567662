"""UpstreamSettings checks and the SSE decoder, without a network."""

from __future__ import annotations

import msgspec
import pytest

from edge.sse import SSEDecoder, SSEError
from edge.upstream import UpstreamSettings


@pytest.mark.parametrize(
    "bad",
    [
        dict(urls=()),
        dict(urls=("ftp://x",)),
        dict(connect_timeout_s=0),
        dict(breaker_failures=0),
    ],
)
def test_bad_settings_are_one_clear_line(bad):
    with pytest.raises(ValueError) as info:
        UpstreamSettings(**bad)
    # "field: why", so the settings reader can name the variable (MOVIEMIND_EDGE_...)
    message = str(info.value)
    assert "\n" not in message and message.split(":")[0] in bad


def test_settings_from_env_style_mapping_are_validated():
    ok = msgspec.convert({"urls": ["http://a:1", "http://b:2"], "token": "t"}, UpstreamSettings)
    assert ok.urls == ("http://a:1", "http://b:2")
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({"urls": ["a:1"]}, UpstreamSettings)
    assert "must start with http://" in str(info.value)


def test_sse_decoder_handles_split_lines_crlf_comments_and_multiline_data():
    dec = SSEDecoder()
    out = []
    stream = (
        b': hello\r\n\r\ndata: {"a":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\r'
    )
    for i in range(len(stream)):  # one byte at a time: every split point
        out += dec.feed(stream[i : i + 1])
    out += dec.feed(b"\n\r\n")
    assert out == ['{"a":1}', "line1\nline2", "[DONE]"]
    assert dec.flush() == []


def test_sse_decoder_flush_and_limits():
    dec = SSEDecoder(max_line_bytes=64)
    assert dec.feed(b"data: [DONE]") == []
    assert dec.flush() == ["[DONE]"]
    with pytest.raises(SSEError):
        SSEDecoder(max_line_bytes=64).feed(b"data: " + b"x" * 100)
    with pytest.raises(SSEError):
        SSEDecoder().feed(b"data: \xff\xfe\n\n")
