"""Credentials from azure-identity against the dev vault's identity endpoints: client secret,
managed identity through IMDS, workload identity through a federated client assertion."""

import time

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from conftest import ISSUER, SUBJECT, TENANT, VM_USER_ID, WORKLOAD_ID


def test_a_wrong_client_secret_is_an_authentication_error(devvault):
    client = SecretClient(
        devvault.url, devvault.credential(secret="not-the-secret"), **devvault.client_kwargs()
    )
    with pytest.raises(ClientAuthenticationError) as err:
        client.get_secret("seeded")
    assert "AADSTS7000215" in str(err.value)
    assert "not-the-secret" not in str(err.value)


def test_managed_identity_credential_gets_a_token_from_imds(devvault, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", devvault.identity_url)
    credential = ManagedIdentityCredential(client_id=VM_USER_ID)
    client = SecretClient(devvault.url, credential, **devvault.client_kwargs())
    assert client.get_secret("seeded").value == "seeded-value"
    counters = devvault.admin("GET", "counters")
    assert counters["byIdentity"].get(VM_USER_ID, 0) >= 2, "IMDS token and the vault read"


def _assertion(devvault, subject):
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": "api://AzureADTokenExchange",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, devvault.issuer_key, algorithm="ES256")


def _workload_client(devvault, subject):
    credential = ClientAssertionCredential(
        TENANT,
        WORKLOAD_ID,
        lambda: _assertion(devvault, subject),
        authority=devvault.url,
        disable_instance_discovery=True,
        connection_verify=devvault.ca_file,
    )
    return SecretClient(devvault.url, credential, **devvault.client_kwargs())


def test_workload_identity_exchanges_a_service_account_token_for_a_vault_token(devvault):
    assert _workload_client(devvault, SUBJECT).get_secret("seeded").value == "seeded-value"


def test_a_service_account_token_with_another_subject_gets_aadsts70021(devvault):
    with pytest.raises(ClientAuthenticationError) as err:
        _workload_client(devvault, "system:serviceaccount:apps:intruder").get_secret("seeded")
    assert "AADSTS70021" in str(err.value)
