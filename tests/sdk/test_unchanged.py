"""The SDK with no dev-vault accommodations at all: real Azure host names (resolved to the dev
vault the way a hosts entry would), the default authority, and challenge-resource verification
left on. Only the CA is added."""

import socket

import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from conftest import APP_ID, APP_SECRET, TENANT, VAULT, simple_seed, start_devvault, stop_devvault


def _point_azure_names_at(monkeypatch, url):
    """A hosts entry for the Azure names, with the dev vault's port standing in for 443."""
    port = int(url.rsplit(":", 1)[1])
    real = socket.getaddrinfo

    def resolve(host, service, *args, **kwargs):
        if isinstance(host, str) and (
            host.endswith(".vault.azure.net") or host == "login.microsoftonline.com"
        ):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, service, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_an_unmodified_client_reads_a_secret_through_the_real_host_names(devvault, monkeypatch):
    _point_azure_names_at(monkeypatch, devvault.url)
    credential = ClientSecretCredential(
        TENANT, APP_ID, APP_SECRET, connection_verify=devvault.ca_file
    )
    client = SecretClient(
        f"https://{VAULT}.vault.azure.net", credential, connection_verify=devvault.ca_file
    )
    secret = client.get_secret("seeded")
    assert secret.value == "seeded-value"
    assert secret.id.startswith(f"https://{VAULT}.vault.azure.net/secrets/seeded/")


def test_several_vaults_are_told_apart_by_host_name(tmp_path, monkeypatch):
    # Vault names no other test uses: the SDK caches each vault host's challenge per process.
    seed = f"tenantId: {TENANT}\n" + simple_seed().replace(f"name: {VAULT}", "name: first-vault")
    seed += "  - name: second-vault\n    secrets:\n      - name: seeded\n        value: from-the-second\n"
    vault = start_devvault(tmp_path, seed)
    try:
        _point_azure_names_at(monkeypatch, vault.url)
        credential = ClientSecretCredential(
            TENANT, APP_ID, APP_SECRET, connection_verify=vault.ca_file
        )
        first = SecretClient(
            "https://first-vault.vault.azure.net", credential, connection_verify=vault.ca_file
        )
        second = SecretClient(
            "https://second-vault.vault.azure.net", credential, connection_verify=vault.ca_file
        )
        assert first.get_secret("seeded").value == "seeded-value"
        assert second.get_secret("seeded").value == "from-the-second"
    finally:
        stop_devvault(vault)


def test_without_the_ca_the_sdk_refuses_the_dev_vault(devvault, monkeypatch):
    from azure.core.exceptions import ServiceRequestError

    _point_azure_names_at(monkeypatch, devvault.url)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    # A host no other test used, so the SDK has no cached challenge and goes to the vault first.
    client = SecretClient(
        "https://never-trusted.vault.azure.net",
        ClientSecretCredential(TENANT, APP_ID, APP_SECRET),
    )
    with pytest.raises(ServiceRequestError) as err:
        client.get_secret("seeded")
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
