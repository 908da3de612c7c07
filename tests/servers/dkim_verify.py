"""Verifies the DKIM signature of .eml files with dkimpy, against a public key given on the
command line instead of DNS (the tests reach no DNS server).

    python3 tests/servers/dkim_verify.py PUBLIC_KEY.der FILE.eml...

The key is DER as `openssl pkey -pubout -outform DER` writes it (SubjectPublicKeyInfo): an RSA
key is published as it is (k=rsa), an Ed25519 key as its raw 32 bytes (k=ed25519, RFC 8463;
dkimpy needs PyNaCl for it). Prints "ok FILE" or "FAIL FILE" per file; exits 1 if any fails.
"""

import base64
import sys

import dkim

# SubjectPublicKeyInfo of an Ed25519 key, up to the key's 32 bytes (RFC 8410).
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def main():
    with open(sys.argv[1], "rb") as f:
        der = f.read()
    if der.startswith(ED25519_SPKI_PREFIX) and len(der) == len(ED25519_SPKI_PREFIX) + 32:
        kind, key = "ed25519", der[len(ED25519_SPKI_PREFIX):]
    else:
        kind, key = "rsa", der
    record = ("v=DKIM1; k=%s; p=%s" % (kind, base64.b64encode(key).decode())).encode()
    failed = False
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            message = f.read()
        ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
        print("%s %s" % ("ok" if ok else "FAIL", path))
        failed |= not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
