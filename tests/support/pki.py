# SPDX-License-Identifier: MIT
"""A throwaway PKI made at test time: root CA, intermediate CA, and leaf
certificates with chosen names and validity. Nothing here is ever committed."""
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


class Cert:
    def __init__(self, key, cert):
        self.key = key
        self.cert = cert

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def make_ca(cn, issuer=None, not_before=None, not_after=None):
    key = _key()
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer.cert.subject if issuer else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 365 * DAY)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                      content_commitment=False, key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, encipher_only=False, decipher_only=False), critical=True))
    return Cert(key, b.sign(issuer.key if issuer else key, hashes.SHA256()))


def make_leaf(issuer, cn, dns=(), ips=(), not_before=None, not_after=None, client=False):
    key = _key()
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer.cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 90 * DAY)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else
                                               x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Cert(key, b.sign(issuer.key, hashes.SHA256()))


class Pki:
    """Writes everything under `dir`; attributes are file paths."""

    def __init__(self, dir: Path):
        self.dir = dir
        dir.mkdir(parents=True, exist_ok=True)
        self.root = make_ca("spoolgate test root")
        self.inter = make_ca("spoolgate test intermediate", issuer=self.root)
        self.other_root = make_ca("some other root")
        self.ca_file = self._write("ca.pem", self.root.pem())
        self.inter_file = self._write("intermediate.pem", self.inter.pem())
        self.other_ca_file = self._write("other-ca.pem", self.other_root.pem())

    def _write(self, name, data):
        p = self.dir / name
        p.write_bytes(data)
        return str(p)

    def leaf(self, name, cn="localhost", dns=("localhost",), ips=("127.0.0.1", "::1"), issuer=None, **kw):
        """Returns (cert_chain_path, key_path) for a server certificate, chain
        leaf + intermediate (issued by the intermediate unless told)."""
        iss = issuer or self.inter
        c = make_leaf(iss, cn, dns, ips, **kw)
        chain = c.pem() + (self.inter.pem() if iss is self.inter else b"")
        return self._write(f"{name}.crt", chain), self._write(f"{name}.key", c.key_pem())

    def spki_pin(self, cert: Cert):
        import base64
        der = cert.cert.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        return base64.b64encode(digest.finalize()).decode()
