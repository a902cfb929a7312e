"""`keyvol-dev dev-vault` flags seen through the SDK, each on its own process: --tenant, --fault
(a 429 burst from the first request) and --data (secrets, the CA and tokens survive a restart)."""

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient

from conftest import simple_seed, start_devvault, stop_devvault

OTHER_TENANT = "99999999-8888-7777-6666-555555555555"


def test_tenant_and_fault_flags_shape_the_first_answers(tmp_path):
    vault = start_devvault(
        tmp_path,
        simple_seed(),
        ["--tenant", OTHER_TENANT, "--fault", "GET /secrets/*:throttleCount=1,retryAfterSecs=1"],
    )
    try:
        assert vault.tenant == OTHER_TENANT
        client = SecretClient(
            vault.url, vault.credential(), retry_total=0, **vault.client_kwargs()
        )
        with pytest.raises(HttpResponseError) as err:
            client.get_secret("seeded")
        assert err.value.status_code == 429
        assert client.get_secret("seeded").value == "seeded-value"
    finally:
        stop_devvault(vault)


def test_a_data_directory_keeps_secrets_and_the_ca_across_a_restart(tmp_path):
    data = tmp_path / "data"
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    first = start_devvault(first_dir, simple_seed(), ["--data", str(data)])
    try:
        client = SecretClient(first.url, first.credential(), **first.client_kwargs())
        client.set_secret("kept", "across restarts")
        ca = open(first.ca_file).read()
    finally:
        stop_devvault(first)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = start_devvault(second_dir, simple_seed(), ["--data", str(data)])
    try:
        assert open(second.ca_file).read() == ca
        client = SecretClient(second.url, second.credential(), **second.client_kwargs())
        assert client.get_secret("kept").value == "across restarts"
    finally:
        stop_devvault(second)
