"""The throwaway CA: chains, usages, SANs, and the subject fields the apiserver reads."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aimctl.envtest._certs import CertificateAuthority, service_account_key_pair


def _load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_ca_is_self_signed_ca_with_envtest_subject() -> None:
    ca = _load(CertificateAuthority().cert_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "envtest-environment"
    ca.verify_directly_issued_by(ca)


def test_serving_cert_chains_to_ca_and_names_hosts_and_ips() -> None:
    authority = CertificateAuthority()
    pair = authority.issue_serving(["localhost", "127.0.0.1"])
    cert = _load(pair.cert_pem)
    cert.verify_directly_issued_by(_load(authority.cert_pem))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_client_cert_carries_user_as_cn_and_groups_as_o() -> None:
    authority = CertificateAuthority()
    cert = _load(authority.issue_client("alice", ["devs", "system:authenticated"]).cert_pem)
    cert.verify_directly_issued_by(_load(authority.cert_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == ["devs", "system:authenticated"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_key_matches_certificate() -> None:
    pair = CertificateAuthority().issue_client("bob")
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    assert key.public_key() == _load(pair.cert_pem).public_key()


def test_certificates_from_another_ca_do_not_chain() -> None:
    other = _load(CertificateAuthority().cert_pem)
    cert = _load(CertificateAuthority().issue_client("mallory").cert_pem)
    try:
        cert.verify_directly_issued_by(other)
    except Exception:
        return
    raise AssertionError("a certificate verified against a foreign CA")


def test_service_account_key_pair_is_rsa_with_matching_public_key() -> None:
    pair = service_account_key_pair()
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert serialization.load_pem_public_key(pair.cert_pem) == key.public_key()
