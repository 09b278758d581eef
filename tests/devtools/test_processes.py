"""The development server processes: what the tests, the benchmarks and the demo run."""

from __future__ import annotations

from pathlib import Path

from devtools.processes import ServerProcess

LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it (little-endian hex)
LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses with a socket listening on ``port`` (Linux /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == LISTEN and int(hex_port, 16) == port:
            found.add(address)
    return found


def test_the_model_server_listens_on_loopback_only(model_server: ServerProcess) -> None:
    # The server's own default is 0.0.0.0 (the SageMaker contract); off SageMaker, a server
    # reachable from the network is a leak. Its variable is SERVE_HOST (the settings' prefix).
    assert listening_addresses(model_server.port) == {LOOPBACK}
