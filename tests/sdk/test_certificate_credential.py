"""Applications that sign in with a certificate (issue 16): azure-identity's CertificateCredential
(an RS256 assertion naming the certificate by its SHA-1 `x5t`) and MSAL given the public
certificate (PS256 with `x5t#S256`), against an app registered with `clients[].certificates`.

The certificates are made here with `cryptography`, which azure-identity already depends on.
"""

import base64
import datetime
import time

import jwt
import msal
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import TENANT, VAULT, start_devvault, stop_devvault

CERT_APP = "sdk-cert-app"


def _certificate(common_name):
    """A self-signed RSA certificate and its key, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert, cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@pytest.fixture(scope="module")
def cert_vault(tmp_path_factory):
    registered = _certificate("registered")
    stranger = _certificate("stranger")
    indented = "\n".join("          " + line for line in registered[1].strip().splitlines())
    seed = f"""
tenantId: {TENANT}
clients:
  - clientId: {CERT_APP}
    certificates:
      - |
{indented}
vaults:
  - name: {VAULT}
    secrets:
      - name: seeded
        value: seeded-value
"""
    vault = start_devvault(tmp_path_factory.mktemp("certvault"), seed)
    yield vault, registered, stranger
    stop_devvault(vault)


def _client(vault, credential):
    return SecretClient(vault.url, credential, **vault.client_kwargs())


def _certificate_credential(vault, cert):
    _, cert_pem, key_pem = cert
    return CertificateCredential(
        TENANT,
        CERT_APP,
        certificate_data=(key_pem + cert_pem).encode(),
        authority=vault.url,
        disable_instance_discovery=True,
        connection_verify=vault.ca_file,
    )


def test_certificate_credential_with_a_registered_certificate_reads_a_secret(cert_vault):
    vault, registered, _ = cert_vault
    client = _client(vault, _certificate_credential(vault, registered))
    assert client.get_secret("seeded").value == "seeded-value"


def test_an_unregistered_certificate_gets_aadsts700027_naming_its_thumbprint(cert_vault):
    vault, _, stranger = cert_vault
    client = _client(vault, _certificate_credential(vault, stranger))
    with pytest.raises(ClientAuthenticationError) as err:
        client.get_secret("seeded")
    text = str(err.value)
    assert "AADSTS700027" in text
    assert stranger[0].fingerprint(hashes.SHA1()).hex().upper() in text


class _MsalCredential:
    """A TokenCredential over an MSAL confidential client (what azure-identity wraps)."""

    def __init__(self, app):
        self.app = app

    def get_token(self, *scopes, **_kwargs):
        result = self.app.acquire_token_for_client(list(scopes))
        if "access_token" not in result:
            raise ClientAuthenticationError(message=result.get("error_description", "no token"))
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))


class _RecordingSession(requests.Session):
    """Keeps the client assertions MSAL posts, to check their headers."""

    def __init__(self, ca_file):
        super().__init__()
        self.ca_file = ca_file
        self.assertions = []

    def request(self, method, url, *args, **kwargs):
        data = kwargs.get("data")
        if isinstance(data, dict) and "client_assertion" in data:
            self.assertions.append(data["client_assertion"])
        # Per request, so that REQUESTS_CA_BUNDLE in the environment cannot override it.
        kwargs["verify"] = self.ca_file
        return super().request(method, url, *args, **kwargs)


def test_msal_given_the_public_certificate_signs_ps256_with_a_sha256_thumbprint(cert_vault):
    vault, registered, _ = cert_vault
    cert, cert_pem, key_pem = registered
    session = _RecordingSession(vault.ca_file)
    app = msal.ConfidentialClientApplication(
        CERT_APP,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=f"{vault.url}/{TENANT}",
        instance_discovery=False,
        http_client=session,
    )
    client = _client(vault, _MsalCredential(app))
    assert client.get_secret("seeded").value == "seeded-value"
    header = jwt.get_unverified_header(session.assertions[-1])
    assert header["alg"] == "PS256"
    sha256 = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).decode()
    assert header["x5t#S256"].rstrip("=") == sha256.rstrip("=")
