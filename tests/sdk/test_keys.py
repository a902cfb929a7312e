"""Keys through azure-keyvault-keys: RSA and EC creation, reads, properties, errors."""

import datetime
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


def _b(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


def test_imported_rsa_and_ec_keys_keep_their_public_members_and_never_return_private_ones(keys):
    from azure.keyvault.keys import JsonWebKey
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = rsa_key.private_numbers()
    pub = priv.public_numbers
    jwk = JsonWebKey(
        kty="RSA",
        n=_b(pub.n),
        e=_b(pub.e),
        d=_b(priv.d),
        p=_b(priv.p),
        q=_b(priv.q),
        dp=_b(priv.dmp1),
        dq=_b(priv.dmq1),
        qi=_b(priv.iqmp),
        key_ops=["sign", "verify"],
    )
    imported = keys.import_key(name("imported-rsa"), jwk)
    assert imported.key.n == _b(pub.n)
    assert imported.key.d is None
    assert imported.key_operations == ["sign", "verify"]

    ec_key = ec.generate_private_key(ec.SECP521R1())
    numbers = ec_key.private_numbers()
    jwk = JsonWebKey(
        kty="EC",
        crv="P-521",
        x=_b(numbers.public_numbers.x, 66),
        y=_b(numbers.public_numbers.y, 66),
        d=_b(numbers.private_value, 66),
    )
    n = name("imported-ec")
    imported = keys.import_key(n, jwk)
    assert imported.key.x == _b(numbers.public_numbers.x, 66)
    assert keys.get_key(n).key.d is None


def test_importing_a_jwk_without_private_members_is_a_bad_parameter(keys):
    from azure.keyvault.keys import JsonWebKey

    created = keys.create_ec_key(name("public-only"), curve=KeyCurveName.p_256)
    with pytest.raises(HttpResponseError) as err:
        keys.import_key(name("public-only-copy"), JsonWebKey(kty="EC", crv="P-256", x=created.key.x, y=created.key.y))
    assert err.value.status_code == 400


# Issue 16: the dev vault behaves like Key Vault where applications notice.


def test_an_expired_key_is_still_served(keys):
    # exp restricts cryptographic operations only; get answers 200.
    n = name("expired")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    created = keys.create_ec_key(n, expires_on=past)
    fetched = keys.get_key(n)
    assert fetched.key.x == created.key.x
    assert fetched.properties.expires_on == created.properties.expires_on


def test_every_key_route_answers_an_invalid_name_with_bad_parameter(keys):
    for call in (
        lambda: keys.get_key("bad_name"),
        lambda: list(keys.list_properties_of_key_versions("bad_name")),
        lambda: keys.update_key_properties("bad_name", enabled=False),
        lambda: keys.create_rsa_key("bad_name"),
        lambda: keys.begin_delete_key("bad_name"),
        lambda: keys.get_deleted_key("bad_name"),
        lambda: keys.begin_recover_deleted_key("bad_name"),
        lambda: keys.purge_deleted_key("bad_name"),
    ):
        with pytest.raises(HttpResponseError) as err:
            call()
        assert err.value.status_code == 400
        assert err.value.error.code == "BadParameter"
        assert err.value.error.message == "The request URI contains an invalid name: bad_name"
