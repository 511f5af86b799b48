"""The offline guard that every test runs under (tests/conftest.py), tested itself.

Every test runs with IP networking blocked, in the test process and in every Python subprocess it
starts; a blocked attempt fails the test that made it, naming the address, even when the code that
tried swallowed the error. The explicit end-to-end run of ``adaqat segment`` with networking disabled
is in tests/test_reliability_privacy.py; the viewer's GUI tests run in this process, under the guard.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from multiprocessing.connection import Client, Listener
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ip_connections_and_lookups_are_blocked_and_recorded(network_guard):
    try:
        with pytest.raises(OSError, match=r"network access is blocked in the tests: socket.connect \('192.0.2.1', 443\)"):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
        with pytest.raises(OSError, match="socket.getaddrinfo 'updates.example.com'"):
            socket.getaddrinfo("updates.example.com", 443)
        with pytest.raises(OSError, match="socket.bind"):
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).bind(("127.0.0.1", 0))
        with pytest.raises(OSError, match="socket.sendto"):
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53))
        attempts = network_guard.collect()
        assert len(attempts) == 4 and "192.0.2.1" in attempts[0] and "updates.example.com" in attempts[1]
    finally:
        network_guard.reset()  # the attempts above were this test's purpose


def test_local_ipc_still_works(tmp_path):
    """AF_UNIX sockets (multiprocessing, Qt's local servers) never leave the machine: allowed."""
    address = str(tmp_path / "ipc.sock")
    with Listener(address, family="AF_UNIX") as listener:
        with Client(address, family="AF_UNIX") as client:
            with listener.accept() as server:
                client.send("ping")
                assert server.recv() == "ping"
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ok")
        assert right.recv(2) == b"ok"


def test_python_subprocesses_are_guarded_too(network_guard):
    code = "import socket\ntry:\n    socket.create_connection(('192.0.2.7', 80), timeout=1)\nexcept OSError as e:\n    print(e)\n"
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "network access is blocked in the tests: socket.connect ('192.0.2.7', 80)" in result.stdout
        attempts = network_guard.collect()  # swallowed by the child, still seen here
        assert len(attempts) == 1 and "192.0.2.7" in attempts[0] and "pid" in attempts[0]
    finally:
        network_guard.reset()


def test_a_test_that_touches_the_network_fails_naming_the_address(tmp_path, network_guard):
    """Run a throw-away test session with this suite's conftest: the test swallows the error, and
    still fails with a message that names the address."""
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(
        """
        import socket

        def test_phones_home():
            try:
                socket.create_connection(("198.51.100.9", 8080), timeout=1)
            except OSError:
                pass  # a library that hides its failure

        def test_stays_home():
            assert True
        """
    ), encoding="utf-8")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", "--rootdir",
             str(tmp_path), str(tmp_path / "test_leaky.py")],
            capture_output=True, text=True, cwd=str(REPO), timeout=120,
        )
    finally:
        network_guard.reset()  # this session's guard saw the inner attempt too: intended here
    assert result.returncode == 1, result.stdout[-3000:]
    assert "2 passed, 1 error" in result.stdout, result.stdout[-3000:]  # the teardown error is reported apart
    assert "ERROR at teardown of test_phones_home" in result.stdout
    assert ("the product must work offline, but this test tried to use the network: socket.connect "
            "('198.51.100.9', 8080)") in result.stdout
