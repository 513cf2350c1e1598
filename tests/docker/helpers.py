"""What the Docker lab tests share: the probe and echo scripts, the docker CLI, the base image."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

requires_docker = [
    pytest.mark.docker,
    pytest.mark.skipif(os.environ.get("DRLAB_DOCKER_TESTS") != "1", reason="Docker lab tests: make test-docker"),
]

# Connects to the server, optionally waits for a line on stdin (to hold the connection across a
# cut), sends a line and prints what happened: ok, refused, reset or timeout.
PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("server.test", 7000))
    if sys.argv[1:] == ["hold"]:
        print("connected", flush=True)
        sys.stdin.readline()
    s.sendall(b"ping\\n")
    print("ok" if s.recv(100) == b"ping\\n" else "closed", flush=True)
except ConnectionRefusedError:
    print("refused", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except TimeoutError:
    print("timeout", flush=True)
"""
ECHO = """
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())
socketserver.ThreadingTCPServer(("0.0.0.0", 7000), Echo).serve_forever()
"""


def docker(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, **kwargs)


def base_image() -> str | None:
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        return None
    images = docker("images", "-q", "--filter", "label=drlab.image=base").stdout.split()
    return images[0] if images else None
