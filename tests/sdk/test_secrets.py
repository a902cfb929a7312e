"""Secrets through azure-keyvault-secrets: set, get, versions, paging, properties, errors, delete."""

import datetime
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


def test_secrets_are_listed_through_every_page_with_their_current_versions_enabled_state(secrets):
    prefix = name("listed")
    for i in range(3):
        secrets.set_secret(f"{prefix}-{i}", f"value-{i}")
    secrets.update_secret_properties(f"{prefix}-1", enabled=False)
    secrets.set_secret(f"{prefix}-2", "newer")
    secrets.update_secret_properties(f"{prefix}-2", enabled=False)
    pages = list(secrets.list_properties_of_secrets(max_page_size=2).by_page())
    items = [p for page in pages for p in page]
    assert len(pages) >= 2 and all(len(list(page)) <= 2 for page in
                                   secrets.list_properties_of_secrets(max_page_size=2).by_page())
    ours = {p.name: p.enabled for p in items if p.name.startswith(prefix)}
    assert ours == {f"{prefix}-0": True, f"{prefix}-1": False, f"{prefix}-2": False}
    assert len([p for p in items if p.name.startswith(prefix)]) == 3, "each secret once"
    assert all(p.version is None for p in items), "list items name the secret, not a version"


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


# Issue 16: the dev vault behaves like Key Vault where applications notice.


def test_an_expired_or_not_yet_valid_secret_is_still_served_with_its_value(secrets):
    # exp and nbf restrict cryptographic operations only; get answers 200 with the value.
    now = datetime.datetime.now(datetime.timezone.utc)
    expired, early = name("expired"), name("early")
    secrets.set_secret(expired, "stale", expires_on=now - datetime.timedelta(days=1))
    secrets.set_secret(early, "soon", not_before=now + datetime.timedelta(days=1))
    got = secrets.get_secret(expired)
    assert got.value == "stale"
    assert got.properties.expires_on < now
    assert secrets.get_secret(early).value == "soon"
    listed = {p.name for p in secrets.list_properties_of_secrets()}
    assert {expired, early} <= listed


def test_a_value_over_25600_characters_is_secret_too_large(secrets):
    n = name("sized")
    assert len(secrets.set_secret(n, "x" * 25600).value) == 25600
    for size in (25601, 300 * 1024):
        with pytest.raises(HttpResponseError) as err:
            secrets.set_secret(n, "x" * size)
        assert err.value.status_code == 400
        assert err.value.error.code == "BadParameter"
        assert err.value.error.innererror["code"] == "SecretTooLarge"
        assert (
            err.value.error.message
            == "Secret is beyond the maximum permitted length of 25600 characters."
        )


def test_a_content_type_over_255_characters_is_a_bad_parameter(secrets):
    n = name("ctype")
    secrets.set_secret(n, "v", content_type="c" * 255)
    with pytest.raises(HttpResponseError) as err:
        secrets.set_secret(n, "v", content_type="c" * 256)
    assert (err.value.status_code, err.value.error.code) == (400, "BadParameter")
    with pytest.raises(HttpResponseError) as err:
        secrets.update_secret_properties(n, content_type="c" * 256)
    assert (err.value.status_code, err.value.error.code) == (400, "BadParameter")
    assert secrets.get_secret(n).properties.content_type == "c" * 255


def _assert_invalid_name(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    assert err.value.status_code == 400
    assert err.value.error.code == "BadParameter"
    assert err.value.error.message == "The request URI contains an invalid name: bad_name"


def test_every_secret_route_answers_an_invalid_name_with_bad_parameter(secrets):
    for call in (
        lambda: secrets.get_secret("bad_name"),
        lambda: secrets.get_secret("bad_name", "00112233445566778899aabbccddeeff"),
        lambda: list(secrets.list_properties_of_secret_versions("bad_name")),
        lambda: secrets.update_secret_properties("bad_name", enabled=False),
        lambda: secrets.set_secret("bad_name", "v"),
        lambda: secrets.begin_delete_secret("bad_name"),
        lambda: secrets.get_deleted_secret("bad_name"),
        lambda: secrets.begin_recover_deleted_secret("bad_name"),
        lambda: secrets.purge_deleted_secret("bad_name"),
    ):
        _assert_invalid_name(call)
