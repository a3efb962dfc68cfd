#!/usr/bin/env python3
"""Independent verifier for Outpost Merkle proofs and witnessed tree heads.

Implements docs/checkpoints.md with the Python standard library and the `cryptography` package
(Ed25519) only; it shares no code with Outpost.

    python3 verify_proof.py inclusion   PROOF.json --node-id gb-1 --node-key HEX [--hub-key HEX]
    python3 verify_proof.py consistency PROOF.json --node-id gb-1 --node-key HEX [--hub-key HEX]

PROOF.json is the body of the edge node's `GET /v1/proofs/inclusion?...` or
`GET /v1/proofs/consistency?...` answer. Keys come from outside the file (the node's
registration, the hub's configuration).

Inclusion: the record frame's body hashes (SHA-256) to the record hash; the leaf hash is
SHA-256(0x00 || record hash); the RFC 9162 audit path leads from it to the root; the node's
signed note (C2SP signed-note, Ed25519 over the body text) names that size and root; with
--hub-key, a C2SP cosignature/v1 by the hub verifies over the same body.
Consistency: the RFC 9162 consistency proof links the two roots, each backed by a signed head.

Exit status: 0 = verified, 1 = verification failed, 2 = usage or I/O error.
"""

import argparse
import base64
import hashlib
import json
import struct
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover
    sys.stderr.write("verify_proof.py needs the `cryptography` package: pip install cryptography\n")
    sys.exit(2)

DASH = "\u2014 "


class Fail(Exception):
    pass


def sha256(b):
    return hashlib.sha256(b).digest()


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise Fail("leaf index beyond tree size")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Fail("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Fail("inclusion proof too short")
    if r != root:
        raise Fail("inclusion proof does not lead to the root")


def verify_consistency(first, second, proof, first_root, second_root):
    """RFC 9162 section 2.1.4.2."""
    if first > second:
        raise Fail("first size exceeds second size")
    if first == second or first == 0:
        if proof:
            raise Fail("proof must be empty")
        if first == second and first_root != second_root:
            raise Fail("equal sizes with different roots")
        return
    path = ([first_root] if first & (first - 1) == 0 else []) + list(proof)
    if not path:
        raise Fail("empty consistency proof")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Fail("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Fail("consistency proof too short")
    if fr != first_root or sr != second_root:
        raise Fail("consistency proof does not link the two roots")


def key_id(name, alg, pub):
    return sha256(name.encode() + b"\n" + bytes([alg]) + pub)[:4]


def check_head(note, node_id, node_key, hub_key, size, root):
    """Verify a C2SP signed note by the node (and a cosignature by the hub)."""
    origin = "outpost/" + node_id
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise Fail("note has no signature block")
    body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) != 4 or not lines[3].startswith("timestamp "):
        raise Fail("checkpoint body must have 4 lines")
    if lines[0] != origin:
        raise Fail("origin is %r, expected %r" % (lines[0], origin))
    if int(lines[1]) != size:
        raise Fail("signed head is for size %s, not %d" % (lines[1], size))
    if base64.b64decode(lines[2], validate=True) != root:
        raise Fail("signed head's root differs from the proof's root")
    node_pub = bytes.fromhex(node_key)
    hub_pub = bytes.fromhex(hub_key) if hub_key else None
    node_ok = hub_ok = False
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith(DASH):
            raise Fail("bad signature line")
        name, _, b64 = line[len(DASH):].rpartition(" ")
        blob = base64.b64decode(b64, validate=True)
        if name == origin and blob[:4] == key_id(name, 0x01, node_pub):
            try:
                Ed25519PublicKey.from_public_bytes(node_pub).verify(blob[4:], body.encode())
                node_ok = True
            except InvalidSignature:
                raise Fail("node signature on the head does not verify")
        elif hub_pub and len(blob) == 76 and blob[:4] == key_id(name, 0x04, hub_pub):
            (t,) = struct.unpack(">Q", blob[4:12])
            msg = ("cosignature/v1\ntime %d\n" % t).encode() + body.encode()
            try:
                Ed25519PublicKey.from_public_bytes(hub_pub).verify(blob[12:], msg)
                hub_ok = True
            except InvalidSignature:
                raise Fail("hub cosignature does not verify")
    if not node_ok:
        raise Fail("no signature by the node's key")
    if hub_pub and not hub_ok:
        raise Fail("no cosignature by the hub's key")


def h(s):
    b = bytes.fromhex(s)
    if len(b) != 32:
        raise Fail("hash is not 32 bytes")
    return b


def inclusion(p, a):
    frame = base64.b64decode(p["frame_b64"], validate=True)
    (blen,) = struct.unpack(">I", frame[:4])
    body = frame[4:4 + blen]
    if len(body) != blen:
        raise Fail("truncated frame")
    id_len = struct.unpack(">H", body[6:8])[0]
    (seq,) = struct.unpack(">Q", body[8 + id_len:16 + id_len])
    if seq != p["seq"]:
        raise Fail("record seq %d, proof says %d" % (seq, p["seq"]))
    record_hash = sha256(body)
    leaf = sha256(b"\x00" + record_hash)
    root = h(p["root_hex"])
    verify_inclusion(leaf, seq - 1, p["tree_size"], [h(x) for x in p["proof_hex"]], root)
    if not p.get("checkpoint"):
        raise Fail("no signed head for this tree size")
    check_head(p["checkpoint"]["note"], a.node_id, a.node_key, a.hub_key, p["tree_size"], root)
    return "record %d (hash %s) is in the log of %d records" % (seq, record_hash.hex(), p["tree_size"])


def consistency(p, a):
    fr, tr = h(p["from_root_hex"]), h(p["to_root_hex"])
    verify_consistency(p["from"], p["to"], [h(x) for x in p["proof_hex"]], fr, tr)
    if not p.get("to_checkpoint"):
        raise Fail("no signed head for size %d" % p["to"])
    check_head(p["to_checkpoint"]["note"], a.node_id, a.node_key, a.hub_key, p["to"], tr)
    if p["from"] > 0:
        if not p.get("from_checkpoint"):
            raise Fail("no signed head for size %d" % p["from"])
        check_head(p["from_checkpoint"]["note"], a.node_id, a.node_key, None, p["from"], fr)
    return "the log of %d records extends the log of %d records" % (p["to"], p["from"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["inclusion", "consistency"])
    ap.add_argument("proof")
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--node-key", required=True)
    ap.add_argument("--hub-key")
    a = ap.parse_args()
    try:
        with open(a.proof) as f:
            p = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write("cannot read %s: %s\n" % (a.proof, e))
        return 2
    try:
        msg = (inclusion if a.kind == "inclusion" else consistency)(p, a)
    except (Fail, KeyError, ValueError, TypeError, struct.error) as e:
        print("FAILED: %s" % e)
        return 1
    print("OK: " + msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
