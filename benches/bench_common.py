"""Helpers the Python benchmarks share: a free loopback port and waiting for a server's 220."""
import socket, sys, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_greeting(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                if c.recv(64).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server on {port} did not greet")
