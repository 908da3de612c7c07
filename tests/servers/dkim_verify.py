"""Verifies the DKIM signature of .eml files with dkimpy, against a public key given on the
command line instead of DNS (the tests reach no DNS server).

    python3 tests/servers/dkim_verify.py PUBLIC_KEY.der FILE.eml...

Prints "ok FILE" or "FAIL FILE" per file; exits 1 if any fails.
"""

import base64
import sys

import dkim


def main():
    with open(sys.argv[1], "rb") as f:
        public_key = base64.b64encode(f.read()).decode()
    record = ("v=DKIM1; k=rsa; p=%s" % public_key).encode()
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
