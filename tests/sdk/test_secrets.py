"""Secrets through azure-keyvault-secrets: set, get, versions, paging, properties, errors, delete."""

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from conftest import READER_ID, READER_SECRET


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_seeded_secret_is_read_with_its_content_type(secrets):
    secret = secrets.get_secret("seeded")
    assert secret.value == "seeded-value"
    assert secret.properties.content_type == "text/plain"
    assert len(secret.properties.version) == 32


def test_set_then_get_returns_the_value_tags_and_version(secrets):
    n = name("roundtrip")
    first = secrets.set_secret(n, "one", content_type="text/plain", tags={"team": "a"})
    second = secrets.set_secret(n, "two")
    assert first.value == "one" and first.properties.tags == {"team": "a"}
    assert secrets.get_secret(n).value == "two"
    assert secrets.get_secret(n, first.properties.version).value == "one"
    assert second.properties.created_on is not None


def test_versions_are_paged_with_next_links(secrets):
    n = name("paged")
    made = {secrets.set_secret(n, f"v{i}").properties.version for i in range(5)}
    pages = list(secrets.list_properties_of_secret_versions(n, max_page_size=2).by_page())
    seen = [p.version for page in pages for p in page]
    assert len(pages) == 3
    assert set(seen) == made and len(seen) == 5


def test_a_missing_secret_is_resource_not_found(secrets):
    with pytest.raises(ResourceNotFoundError) as err:
        secrets.get_secret(name("missing"))
    assert err.value.status_code == 404
    assert err.value.error.code == "SecretNotFound"


def test_a_disabled_secret_is_forbidden_until_enabled_again(secrets):
    n = name("toggled")
    secrets.set_secret(n, "value")
    props = secrets.update_secret_properties(n, enabled=False, tags={"state": "off"})
    assert props.enabled is False and props.tags == {"state": "off"}
    with pytest.raises(HttpResponseError) as err:
        secrets.get_secret(n)
    assert err.value.status_code == 403
    assert err.value.error.code == "Forbidden"
    assert err.value.error.innererror["code"] == "SecretDisabled"
    secrets.update_secret_properties(n, enabled=True)
    assert secrets.get_secret(n).value == "value"


def test_an_identity_without_list_permission_gets_403_access_denied(devvault):
    from azure.keyvault.secrets import SecretClient

    reader = SecretClient(
        devvault.url, devvault.credential(READER_ID, READER_SECRET), **devvault.client_kwargs()
    )
    assert reader.get_secret("seeded").value == "seeded-value"
    with pytest.raises(HttpResponseError) as err:
        list(reader.list_properties_of_secrets())
    assert err.value.status_code == 403
    assert err.value.error.innererror["code"] == "AccessDenied"


def test_delete_recover_and_purge_finish_and_keep_the_name_reserved_until_purged(secrets):
    n = name("deleted")
    secrets.set_secret(n, "value")
    deleted = secrets.begin_delete_secret(n).result()
    assert deleted.recovery_id.endswith(f"/deletedsecrets/{n}")
    assert secrets.get_deleted_secret(n).name == n
    with pytest.raises(ResourceExistsError):
        secrets.set_secret(n, "again")
    secrets.begin_recover_deleted_secret(n).result()
    assert secrets.get_secret(n).value == "value"
    secrets.begin_delete_secret(n).wait()
    secrets.purge_deleted_secret(n)
    with pytest.raises(ResourceNotFoundError):
        secrets.get_deleted_secret(n)
    assert secrets.set_secret(n, "fresh").value == "fresh"
