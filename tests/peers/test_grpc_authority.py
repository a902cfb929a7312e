"""keyvol's unix-socket gRPC servers answer a real gRPC client (grpcio, gRPC's C core) whatever
:authority it sends: its default for unix targets (localhost), the raw socket path (older
grpc-go, grpc-java), and the percent-encoded path kubelet's plugin watcher sends (grpc-go 1.72).

Messages are encoded by hand from the published field numbers, so no generated stubs are needed.
"""

import os
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
KEYVOL = os.environ.get("KEYVOL_BIN", str(REPO / "target" / "debug" / "keyvol"))
DRIVER = "secrets-store.csi.k8s.io"


def field_string(number: int, text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


def strings(message: bytes) -> dict:
    """The length-delimited fields of a flat message, by field number (last one wins)."""
    out, i = {}, 0
    while i < len(message):
        key = message[i]
        i += 1
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, shift = 0, 0
            while True:
                b = message[i]
                i += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            out[number] = message[i : i + length]
            i += length
        elif wire == 0:
            while message[i] & 0x80:
                i += 1
            i += 1
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise AssertionError(f"{KEYVOL} exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return
        except OSError:
            time.sleep(0.025)
    raise AssertionError(f"{path} never accepted a connection")


def authorities(path: Path):
    """(label, value or None for grpcio's default) for a socket path."""
    return [
        ("grpcio default", None),
        ("localhost", "localhost"),
        ("raw path", str(path)),
        ("percent-encoded path", urllib.parse.quote(str(path), safe="")),
    ]


def call(path: Path, authority, method: str, request: bytes) -> bytes:
    options = [] if authority is None else [("grpc.default_authority", authority)]
    with grpc.insecure_channel(f"unix:{path}", options=options) as channel:
        rpc = channel.unary_unary(method)
        return rpc(request, timeout=10)


@pytest.fixture(scope="module")
def node():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc = subprocess.Popen(
            [
                KEYVOL,
                "node",
                f"--endpoint=unix://{tmp / 'csi.sock'}",
                "--nodeid=node-a",
                f"--plugin-registration-dir={tmp / 'registry'}",
                f"--provider-volume={tmp / 'providers'}",
                "--additional-provider-volume-paths=",
                "--metrics-addr=",
                "--health-addr=",
            ],
            env={"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(tmp / "none")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(tmp / "csi.sock", proc)
            yield tmp
        finally:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def provider():
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "azure.sock"
        proc = subprocess.Popen(
            [KEYVOL, "provider", f"--endpoint=unix://{sock}", "--healthz-port=0", "--prometheus-port=0"],
            env={"PATH": os.environ.get("PATH", "")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(sock, proc)
            yield sock
        finally:
            proc.kill()
            proc.wait()


def test_registration_socket_answers_kubelets_plugin_watcher(node):
    sock = node / "registry" / f"{DRIVER}-reg.sock"
    for label, authority in authorities(sock):
        info = strings(call(sock, authority, "/pluginregistration.Registration/GetInfo", b""))
        assert info[1] == b"CSIPlugin", label
        assert info[2] == DRIVER.encode(), label
        # RegistrationStatus{plugin_registered: true}
        ack = call(sock, authority, "/pluginregistration.Registration/NotifyRegistrationStatus", b"\x08\x01")
        assert ack == b"", label


def test_csi_socket_answers_every_authority(node):
    sock = node / "csi.sock"
    for label, authority in authorities(sock):
        info = strings(call(sock, authority, "/csi.v1.Identity/GetPluginInfo", b""))
        assert info[1] == DRIVER.encode(), label
        node_info = strings(call(sock, authority, "/csi.v1.Node/NodeGetInfo", b""))
        assert node_info[1] == b"node-a", label


def test_provider_socket_answers_every_authority(provider):
    for label, authority in authorities(provider):
        reply = strings(
            call(provider, authority, "/v1alpha1.CSIDriverProvider/Version", field_string(1, "v1alpha1"))
        )
        assert reply[1] == b"v1alpha1", label
