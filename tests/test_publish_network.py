"""A Hub endpoint that accepts the connection and never answers: publishing gives up in bounded time,
with one line naming the endpoint (issue 13, item 13). Loopback only."""

import socket
import time

import pytest
from huggingface_hub import constants

import model_cards.publish as publish
from model_cards.publish import HubUnreachableError, publish_dataset
from tests.test_publish import make_projection_run
from xner.cli import main


@pytest.fixture
def silent_endpoint(monkeypatch):
    """A listening socket nobody reads: the kernel completes the handshake, no byte ever comes back."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_xnerSilentEndpointToken000000")
    monkeypatch.setattr(publish, "HUB_TIMEOUT_S", 0.5)
    monkeypatch.setattr(publish.time, "sleep", lambda seconds: None)  # the verdict, not the back-off
    yield endpoint
    server.close()


def test_publish_to_a_silent_endpoint_gives_up_and_names_it(silent_endpoint, tmp_path, capsys):
    run = make_projection_run(tmp_path / "run")
    started = time.monotonic()
    with pytest.raises(
        HubUnreachableError,
        match=f"the Hub endpoint {silent_endpoint} did not answer "
        r"\(2 attempts, 0.5 s limit per request",
    ):
        publish_dataset(run, "xner-test/silent", attempts=2)
    assert time.monotonic() - started < 10

    started = time.monotonic()
    assert main(["publish", "dataset", run, "--repo-id", "xner-test/silent"]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - started < 15
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        f"xner publish: error: pushing to xner-test/silent: the Hub endpoint {silent_endpoint} "
        "did not answer (3 attempts"
    )


def test_the_client_keeps_its_own_timeout_after_a_push(silent_endpoint, tmp_path):
    from huggingface_hub import get_session

    before = get_session().timeout
    with pytest.raises(HubUnreachableError):
        publish_dataset(make_projection_run(tmp_path / "run"), "xner-test/silent", attempts=1)
    assert get_session().timeout == before
