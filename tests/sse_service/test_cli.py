"""`sse-push-service`'s command line: where to listen, and the production flags always on."""

from __future__ import annotations

import pytest

from sse_service.cli import DEFAULT_GRACEFUL_SHUTDOWN_SECONDS, uvicorn_options

PRODUCTION = {
    "factory": True,
    "loop": "uvloop",
    "http": "httptools",
    "proxy_headers": False,
    "access_log": False,
}


def test_tcp_with_the_production_flags() -> None:
    options = uvicorn_options(["--host", "0.0.0.0", "--port", "8001"])
    assert options == {
        **PRODUCTION,
        "host": "0.0.0.0",
        "port": 8001,
        "timeout_graceful_shutdown": DEFAULT_GRACEFUL_SHUTDOWN_SECONDS,
    }


def test_defaults_listen_on_loopback_only() -> None:
    options = uvicorn_options([])
    assert (options["host"], options["port"]) == ("127.0.0.1", 8001)


def test_unix_socket_with_the_production_flags() -> None:
    options = uvicorn_options(["--uds", "/run/sse.sock", "--timeout-graceful-shutdown", "3"])
    assert options == {**PRODUCTION, "uds": "/run/sse.sock", "timeout_graceful_shutdown": 3}


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--uds", "/run/sse.sock", "--port", "80"], "--port does not go with --uds"),
        (["--uds", "/run/sse.sock", "--host", "0.0.0.0"], "not allowed with argument"),
        (["--port", "70000"], "not a TCP port"),
        (["--port", "http"], "not a whole number"),
        (["--timeout-graceful-shutdown", "-1"], "must not be negative"),
        (["--uds", "/" + "s" * 120], "longer than 107 bytes"),
    ],
)
def test_bad_command_lines_stop_with_a_usage_error(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        uvicorn_options(argv)
    assert stopped.value.code == 2
    assert complaint in capsys.readouterr().err
