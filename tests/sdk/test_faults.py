"""Fault rules set through the admin API, seen through the SDK: 429 Throttled as the SDK's own
exception when retries are off, and honoured Retry-After when they are on."""

import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient


def test_throttling_surfaces_as_a_429_http_response_error(devvault, no_faults):
    client = SecretClient(
        devvault.url, devvault.credential(), retry_total=0, **devvault.client_kwargs()
    )
    client.get_secret("seeded")  # authenticate before the burst
    devvault.admin(
        "PUT",
        "faults",
        {"rules": [{"route": "GET /secrets/*", "throttleCount": 1, "retryAfterSecs": 1}]},
    )
    with pytest.raises(HttpResponseError) as err:
        client.get_secret("seeded")
    assert err.value.status_code == 429
    assert err.value.error.code == "Throttled"
    assert err.value.response.headers["Retry-After"] == "1"


def test_the_sdk_retries_a_short_burst_after_retry_after_and_the_counters_show_it(
    devvault, no_faults
):
    client = SecretClient(devvault.url, devvault.credential(), **devvault.client_kwargs())
    client.get_secret("seeded")
    devvault.admin("DELETE", "counters")
    devvault.admin(
        "PUT",
        "faults",
        {"rules": [{"route": "GET /secrets/*", "throttleCount": 2, "retryAfterSecs": 1}]},
    )
    started = time.monotonic()
    assert client.get_secret("seeded").value == "seeded-value"
    assert time.monotonic() - started >= 2, "two Retry-After: 1 waits"
    counters = devvault.admin("GET", "counters")
    assert counters["byStatus"] == {"429": 2, "200": 1}
