"""Certificates through azure-keyvault-certificates: PFX and PEM imports with a chain, the
certificate and its backing secret read back, self-signed creation, errors."""

import base64
import datetime
import hashlib
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import CertificateContentType, CertificatePolicy
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _cert(subject, issuer, public_key, signing_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signing_key, hashes.SHA256())


def make_chain(leaf_key):
    """Root -> intermediate -> leaf, made by Python's cryptography (not by keyvol)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("sdk test root", "sdk test root", root_key.public_key(), root_key, True)
    inter = _cert("sdk test intermediate", "sdk test root", int_key.public_key(), root_key, True)
    leaf = _cert("sdk-leaf.example", "sdk test intermediate", leaf_key.public_key(), int_key, False)
    return leaf, inter, root


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def same_key(private_key, cert):
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return private_key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) == cert.public_key().public_bytes(serialization.Encoding.DER, spki)


@pytest.fixture
def secret_reader(devvault):
    return SecretClient(devvault.url, devvault.credential(), **devvault.client_kwargs())


def test_a_password_protected_pfx_with_a_chain_imports_and_its_secret_is_a_pfx_with_the_chain(
    certificates, secret_reader
):
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf, inter, root = make_chain(leaf_key)
    pfx = pkcs12.serialize_key_and_certificates(
        b"sdk", leaf_key, leaf, [inter, root], serialization.BestAvailableEncryption(b"pfx-pass")
    )
    n = name("pfx")
    imported = certificates.import_certificate(n, pfx, password="pfx-pass", tags={"k": "v"})
    assert imported.cer == der(leaf)
    assert imported.properties.x509_thumbprint == hashlib.sha1(der(leaf)).digest()
    assert imported.policy.issuer_name == "Unknown"
    fetched = certificates.get_certificate(n)
    assert fetched.cer == der(leaf)
    assert fetched.properties.version == imported.properties.version
    secret = secret_reader.get_secret(n)
    assert secret.properties.content_type == "application/x-pkcs12"
    assert secret.properties.managed is True
    assert secret.properties.key_id == imported.key_id
    key, cert, extra = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert der(cert) == der(leaf)
    assert same_key(key, cert)
    assert [der(c) for c in extra] == [der(inter), der(root)]


def test_a_pem_with_a_chain_imports_and_its_secret_is_pem_key_first_then_leaf_first(
    certificates, secret_reader
):
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    leaf, inter, root = make_chain(leaf_key)
    pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, inter, root))
    n = name("pem")
    policy = CertificatePolicy(content_type=CertificateContentType.pem)
    imported = certificates.import_certificate(n, pem, policy=policy)
    assert imported.cer == der(leaf)
    secret = secret_reader.get_secret(n, imported.properties.version)
    assert secret.properties.content_type == "application/x-pem-file"
    value = secret.value
    assert value.startswith("-----BEGIN PRIVATE KEY-----\n")
    certs = x509.load_pem_x509_certificates(value.encode())
    assert [der(c) for c in certs] == [der(leaf), der(inter), der(root)]
    key = serialization.load_pem_private_key(value.encode(), None)
    assert same_key(key, leaf)


def test_a_self_signed_certificate_is_created_through_the_pending_operation(
    certificates, secret_reader
):
    n = name("selfsigned")
    policy = CertificatePolicy(
        issuer_name="Self",
        subject="CN=made-by-sdk",
        san_dns_names=["made.example"],
        validity_in_months=3,
    )
    cert = certificates.begin_create_certificate(n, policy).result()
    assert cert.name == n
    operation = certificates.get_certificate_operation(n)
    assert operation.status == "completed"
    parsed = x509.load_der_x509_certificate(cert.cer)
    assert parsed.subject.rfc4514_string() == "CN=made-by-sdk"
    key, leaf, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(secret_reader.get_secret(n).value), None
    )
    assert der(leaf) == cert.cer and same_key(key, leaf)
    assert certificates.get_certificate_policy(n).validity_in_months == 3


def test_a_deleted_certificate_takes_its_secret_along(certificates, secret_reader):
    n = name("gone")
    certificates.begin_create_certificate(n, CertificatePolicy.get_default()).result()
    deleted = certificates.begin_delete_certificate(n).result()
    assert deleted.recovery_id.endswith(f"/deletedcertificates/{n}")
    with pytest.raises(ResourceNotFoundError) as err:
        certificates.get_certificate(n)
    assert err.value.error.code == "CertificateNotFound"
    with pytest.raises(ResourceNotFoundError):
        secret_reader.get_secret(n)


def test_every_certificate_route_answers_an_invalid_name_with_bad_parameter(certificates):
    # Issue 16: 400 BadParameter, as the service answers, rather than 404.
    for call in (
        lambda: certificates.get_certificate("bad_name"),
        lambda: certificates.get_certificate_version("bad_name", "00112233445566778899aabbccddeeff"),
        lambda: list(certificates.list_properties_of_certificate_versions("bad_name")),
        lambda: certificates.update_certificate_properties("bad_name", enabled=False),
        lambda: certificates.get_certificate_policy("bad_name"),
        lambda: certificates.get_certificate_operation("bad_name"),
        lambda: certificates.begin_create_certificate("bad_name", CertificatePolicy.get_default()),
        lambda: certificates.begin_delete_certificate("bad_name"),
        lambda: certificates.get_deleted_certificate("bad_name"),
        lambda: certificates.begin_recover_deleted_certificate("bad_name"),
        lambda: certificates.purge_deleted_certificate("bad_name"),
    ):
        with pytest.raises(HttpResponseError) as err:
            call()
        assert err.value.status_code == 400
        assert err.value.error.code == "BadParameter"
        assert err.value.error.message == "The request URI contains an invalid name: bad_name"
