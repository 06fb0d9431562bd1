"""A Ray address nothing answers at is one clear paragraph at once, not minutes of Ray's retries."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from simulator.cluster.ray_start import check_reachable
from simulator.errors import InputError
from tests.helpers.cli import assert_bad_input, cli_subprocess
from tests.helpers.markers import needs_ray

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_nothing_answers_at_is_refused_naming_the_option() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(InputError) as caught:
        check_reachable(address)
    assert caught.value.field == "--ray-address" and caught.value.value == address
    assert "no Ray cluster answers" in caught.value.message and "ray start --head" in caught.value.message


def test_a_listening_head_and_the_addresses_ray_resolves_itself_pass() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")
    for address in ("auto", "local", f"ray://127.0.0.1:{_closed_port()}"):  # Ray's to resolve or to refuse
        check_reachable(address)


@pytest.mark.slow
@needs_ray
def test_run_with_a_wrong_ray_address_says_so_and_writes_nothing(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    out = tmp_path / "run"
    result = cli_subprocess("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--executor", "ray",
                            "--ray-address", address, "--out", str(out))
    assert_bad_input(result, file=None, field="--ray-address", value=repr(address), also=("no Ray cluster answers",))
    assert not out.exists()
