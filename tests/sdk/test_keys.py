"""Keys through azure-keyvault-keys: RSA and EC creation, reads, properties, errors."""

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyCurveName, KeyType


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_rsa_keys_have_the_requested_size_and_read_back(keys, size):
    n = name(f"rsa{size}")
    created = keys.create_rsa_key(n, size=size, tags={"size": str(size)})
    assert created.key_type == KeyType.rsa
    assert len(created.key.n) * 8 == size
    assert created.key.e == b"\x01\x00\x01"
    fetched = keys.get_key(n)
    assert fetched.key.n == created.key.n
    assert fetched.properties.version == created.properties.version
    assert fetched.properties.tags == {"size": str(size)}


@pytest.mark.parametrize(
    "curve,length",
    [(KeyCurveName.p_256, 32), (KeyCurveName.p_384, 48), (KeyCurveName.p_521, 66)],
)
def test_ec_keys_are_on_the_requested_curve(keys, curve, length):
    n = name("ec")
    created = keys.create_ec_key(n, curve=curve)
    assert created.key_type == KeyType.ec
    assert created.key.crv == curve
    assert len(created.key.x) == length and len(created.key.y) == length
    assert keys.get_key(n, created.properties.version).key.x == created.key.x


def test_p256k_is_refused_as_a_bad_parameter(keys):
    with pytest.raises(HttpResponseError) as err:
        keys.create_ec_key(name("k1"), curve=KeyCurveName.p_256_k)
    assert err.value.status_code == 400
    assert err.value.error.code == "BadParameter"


def test_key_versions_list_and_disabled_keys_are_forbidden(keys):
    n = name("versions")
    first = keys.create_rsa_key(n)
    keys.create_rsa_key(n)
    versions = {k.version for k in keys.list_properties_of_key_versions(n)}
    assert first.properties.version in versions and len(versions) == 2
    keys.update_key_properties(n, first.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as err:
        keys.get_key(n, first.properties.version)
    assert err.value.status_code == 403
    assert err.value.error.innererror["code"] == "KeyDisabled"


def test_a_missing_key_is_resource_not_found(keys):
    with pytest.raises(ResourceNotFoundError) as err:
        keys.get_key(name("missing"))
    assert err.value.error.code == "KeyNotFound"
