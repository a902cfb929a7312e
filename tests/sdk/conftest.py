"""Fixtures for the official-SDK tests: one real `keyvol-dev dev-vault` process per session.

The process is the binary under test (KEYVOL_DEV_BIN, default target/debug/keyvol-dev), started on free
loopback ports with a seed written here (it needs a freshly generated OIDC issuer key for the
workload-identity tests). Clients reach the vault by IP over TLS, trusting the dev vault's CA
file; they pass verify_challenge_resource=False because the challenge names
https://vault.azure.net:PORT while the request goes to 127.0.0.1 (see docs/dev-vault.md).
"""

import json
import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TENANT = "11111111-2222-3333-4444-555555555555"
APP_ID = "sdk-app"
APP_SECRET = "sdk-app-secret-value"
READER_ID = "sdk-reader"
READER_SECRET = "sdk-reader-secret-value"
WORKLOAD_ID = "sdk-workload"
ISSUER = "https://oidc.sdk.test"
SUBJECT = "system:serviceaccount:apps:web"
VM_USER_ID = "vm-user-identity"
VAULT = "sdk-vault"

REPO = Path(__file__).resolve().parents[2]


def simple_seed() -> str:
    """One app, one vault, one secret: for tests that start their own dev vault."""
    return f"""
clients:
  - clientId: {APP_ID}
    clientSecret: {APP_SECRET}
vaults:
  - name: {VAULT}
    secrets:
      - name: seeded
        value: seeded-value
"""


def _seed(issuer_public_pem: str) -> str:
    indented = "\n".join("      " + line for line in issuer_public_pem.strip().splitlines())
    return f"""
tenantId: {TENANT}
clients:
  - clientId: {APP_ID}
    clientSecret: {APP_SECRET}
  - clientId: {READER_ID}
    clientSecret: {READER_SECRET}
  - clientId: {WORKLOAD_ID}
    federatedCredentials:
      - issuer: {ISSUER}
        subject: {SUBJECT}
oidcIssuers:
  - issuer: {ISSUER}
    publicKeyPem: |
{indented}
managedIdentities:
  - clientId: vm-system-identity
    systemAssigned: true
  - clientId: {VM_USER_ID}
vaults:
  - name: {VAULT}
    accessPolicies:
      - identity: {APP_ID}
        secrets: [all]
        keys: [all]
        certificates: [all]
      - identity: {READER_ID}
        secrets: [get]
      - identity: {WORKLOAD_ID}
        secrets: [get]
      - identity: {VM_USER_ID}
        secrets: [get]
    secrets:
      - name: seeded
        contentType: text/plain
        value: seeded-value
"""


class DevVault:
    """A running dev vault and what clients need to reach it."""

    def __init__(self, proc, url, identity_url, ca_file, issuer_key, tenant=TENANT):
        self.proc = proc
        self.url = url
        self.identity_url = identity_url
        self.ca_file = ca_file
        self.issuer_key = issuer_key
        self.tenant = tenant

    def client_kwargs(self):
        return {"connection_verify": self.ca_file, "verify_challenge_resource": False}

    def credential(self, client_id=APP_ID, secret=APP_SECRET):
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            self.tenant,
            client_id,
            secret,
            authority=self.url,
            disable_instance_discovery=True,
            connection_verify=self.ca_file,
        )

    def admin(self, method, path, body=None):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_admin/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            text = resp.read()
            return json.loads(text) if text else None


def start_devvault(work: Path, seed_text: str, extra_args=(), issuer_key=None):
    """Starts `keyvol-dev dev-vault` with `seed_text` and returns a DevVault once it is ready."""
    binary = Path(os.environ.get("KEYVOL_DEV_BIN", REPO / "target" / "debug" / "keyvol-dev"))
    if not binary.exists():
        pytest.fail(f"{binary} is missing; run `cargo build -p keyvol-dev` first")
    seed = work / "seed.yaml"
    seed.write_text(seed_text)
    ca_file = str(work / "ca.pem")
    proc = subprocess.Popen(
        [
            str(binary),
            "dev-vault",
            "--listen",
            "127.0.0.1:0",
            "--identity-listen",
            "127.0.0.1:0",
            "--seed",
            str(seed),
            "--ca-file",
            ca_file,
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    lines = {}
    deadline = time.monotonic() + 60
    while "identity" not in lines:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            pytest.fail("keyvol-dev dev-vault exited before it was ready")
        key, _, value = line.strip().partition(" ")
        lines[key] = value
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("keyvol-dev dev-vault did not report its listeners")
    url = lines["listening"].removeprefix("on ")
    return DevVault(proc, url, lines["identity"], ca_file, issuer_key, lines.get("tenant"))


def stop_devvault(vault):
    vault.proc.terminate()
    try:
        vault.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        vault.proc.kill()


@pytest.fixture(scope="session")
def devvault(tmp_path_factory):
    work = tmp_path_factory.mktemp("devvault")
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        issuer_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    vault = start_devvault(work, _seed(public_pem), issuer_key=issuer_key)
    yield vault
    stop_devvault(vault)


@pytest.fixture
def secrets(devvault):
    from azure.keyvault.secrets import SecretClient

    return SecretClient(devvault.url, devvault.credential(), **devvault.client_kwargs())


@pytest.fixture
def keys(devvault):
    from azure.keyvault.keys import KeyClient

    return KeyClient(devvault.url, devvault.credential(), **devvault.client_kwargs())


@pytest.fixture
def certificates(devvault):
    from azure.keyvault.certificates import CertificateClient

    return CertificateClient(devvault.url, devvault.credential(), **devvault.client_kwargs())


@pytest.fixture
def no_faults(devvault):
    devvault.admin("DELETE", "faults")
    yield
    devvault.admin("DELETE", "faults")
