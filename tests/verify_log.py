#!/usr/bin/env python3
"""Independent verifier for Outpost signed, hash-chained log segments.

Implements docs/log-format.md using only the Python standard library and the `cryptography`
package (Ed25519). It deliberately shares no code with Outpost, so that a regulator can verify
a log without trusting the operator's software.

    python3 verify_log.py SEGMENT [SEGMENT ...] --public-key HEX [--json]

Several segment files are verified as consecutive parts of one log, in the order given. The
trusted public key must come from outside the files (the operator's key registration for an
edge log, the hub configuration for a `hub/{node}` downstream chain); the copy in each segment
header is only checked against it.

Checks, in this order (see docs/log-format.md, "Verification algorithm"):
  1. integrity, record by record: framing, body layout, one log id, gap-free sequence numbers,
     prev_hash links, non-decreasing timestamps, Ed25519 seals; every record must be covered by
     a seal (no unsealed tail); the header must describe the records that follow it;
  2. content, once everything is intact: each payload matches the JSON schema of its kind, kinds
     belong to the chain type, an edge log starts with its genesis record, whose public key is
     the trusted key; audit object names (if the path looks like one) match the records.

Exit status: 0 = verified, 1 = verification failed (the first bad record is named by seq and
index), 2 = usage or I/O error.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import struct
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - environment problem, not a verification result
    sys.stderr.write("verify_log.py needs the `cryptography` package: pip install cryptography\n")
    sys.exit(2)

# --- Format constants (docs/log-format.md) ---------------------------------------------------

MAGIC = b"OPLR"
FORMAT_VERSION = 1
PAYLOAD_MAX = 1 << 20  # bytes of JSON payload per record
FRAME_BODY_MAX = PAYLOAD_MAX + 4096  # framing limit on body length
SEAL_DOMAIN = b"outpost/log/seal/v1"
SEGMENT_FORMAT = "outpost-segment/1"
ZERO_HASH = "0" * 64
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX, U32_MAX, U16_MAX = (1 << 64) - 1, (1 << 32) - 1, (1 << 16) - 1

KINDS = {
    1: "genesis",
    2: "player_registered",
    3: "kyc_verified",
    4: "wallet_movement",
    5: "compliance_decision",
    6: "bet_placed",
    7: "self_excluded",
    8: "market_opened",
    9: "event_resulted",
    10: "bet_settled",
    11: "down_skipped",
    56: "balance_snapshot",
    # Edge gate, wallet and risk (issue 3).
    12: "limit_changed",
    13: "register_loaded",
    14: "aml_flagged",
    15: "player_timed_out",
    16: "reality_check_acknowledged",
    17: "rules_activated",
    18: "cross_operator_figure",
    19: "withdrawal_completed",
    # Shop terminal (issue 6): 40-47.
    40: "shop_ticket_issued",
    41: "shop_ticket_paid",
    42: "shop_ticket_voided",
    28: "odds_changed",
    29: "producer_changed",
    64: "hub_result",
    65: "hub_settlement",
    66: "hub_settlement_reversal",
    67: "bet_settlement_reversed",
    72: "hub_event_result",
}
EDGE_KINDS = frozenset(range(1, 20)) | {28, 29, 40, 41, 42, 56, 67}
HUB_KINDS = frozenset({64, 65, 66, 72})

HEADER_FIELDS = (
    "format",
    "log_id",
    "first_seq",
    "last_seq",
    "prev_hash",
    "prev_timestamp_ms",
    "last_hash",
    "records",
    "public_key",
)

TOKEN_RE = re.compile(r"[A-Za-z0-9\-_.:/]+\Z")
DNS_LABEL_RE = re.compile(r"[a-z0-9\-]+\Z")
JURISDICTION_RE = re.compile(r"[A-Z\-]{2,8}\Z")
HEX64_RE = re.compile(r"[0-9a-fA-F]{64}\Z")
LOWER_HEX64_RE = re.compile(r"[0-9a-f]{64}\Z")
DIGITS_RE = re.compile(r"[0-9]*\Z")
AUDIT_KEY_RE = re.compile(r"(?:^|/)(?:([^/]+)/)?(\d{4})/(\d{2})/(\d{2})/([^/]+)/(\d{20})-(\d{20})\.seg\Z")


def valid_log_id(s):
    return isinstance(s, str) and 1 <= len(s) <= 64 and TOKEN_RE.match(s) is not None


# --- Ed25519 point checks ----------------------------------------------------------------------
# `cryptography` (OpenSSL) verifies RFC 8032 signatures but does not reject small-order points.
# Outpost seals are checked with ed25519-dalek's verify_strict, which rejects a small-order
# public key or signature R. These few lines make this verifier exactly as strict.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decompress(b):
    """RFC 8032 point decoding; None for a non-canonical or invalid encoding."""
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return None
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = _P - x
    return (x, y)


def _add(p, q):
    (x1, y1), (x2, y2) = p, q
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return (x3, y3)


def _is_small_order(pt):
    for _ in range(3):
        pt = _add(pt, pt)
    return pt == (0, 1)


def load_public_key(hex_key):
    """Parse the trusted key; raises ValueError with a reason."""
    s = hex_key.strip()
    if not HEX64_RE.match(s):
        raise ValueError("public key must be 64 hex characters (32 bytes)")
    raw = bytes.fromhex(s)
    pt = _decompress(raw)
    if pt is None:
        raise ValueError("public key is not a canonical Ed25519 point encoding")
    if _is_small_order(pt):
        raise ValueError("public key is a weak (small-order) Ed25519 point")
    return raw, Ed25519PublicKey.from_public_bytes(raw)


def seal_ok(pub, sig, record_hash):
    """Ed25519 verification of sig over SEAL_DOMAIN || record_hash, strict as in our code."""
    r = _decompress(sig[:32])
    if r is None or _is_small_order(r):
        return False
    if int.from_bytes(sig[32:], "little") >= _L:
        return False
    try:
        pub.verify(sig, SEAL_DOMAIN + record_hash)
        return True
    except InvalidSignature:
        return False


# --- JSON --------------------------------------------------------------------------------------


class DuplicateKeys(dict):
    """Object hook result that remembers duplicated keys (the last value wins, as in json)."""

    duplicates = ()


def _pairs_hook(pairs):
    d = DuplicateKeys()
    dups = []
    for k, v in pairs:
        if k in d:
            dups.append(k)
        d[k] = v
    if dups:
        d.duplicates = tuple(dups)
    return d


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_json(data):
    """Strict JSON: UTF-8, no NaN/Infinity, no trailing data. Raises ValueError."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as e:
        raise ValueError(str(e)) from None


# --- Errors ------------------------------------------------------------------------------------


class VerifyFailure(Exception):
    def __init__(self, reason, *, file=None, index=None, seq=None, phase="integrity"):
        super().__init__(reason)
        self.reason, self.file, self.index, self.seq, self.phase = reason, file, index, seq, phase

    def where(self):
        parts = []
        if self.index is not None:
            parts.append(f"record #{self.index}")
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        return " ".join(parts)

    def text(self):
        where = ": ".join(x for x in (self.file, self.where()) if x)
        return f"FAIL: {where}: {self.reason}" if where else f"FAIL: {self.reason}"

    def as_json(self):
        return {"file": self.file, "index": self.index, "seq": self.seq, "phase": self.phase, "reason": self.reason}


class BodyError(Exception):
    pass


# --- Record body -------------------------------------------------------------------------------


class Record:
    __slots__ = ("kind", "log_id", "seq", "timestamp", "prev_hash", "payload", "json", "hash", "sealed", "file", "index")


def peek_seq(body):
    """Best-effort sequence number of an undecodable body, for error messages."""
    if len(body) < 8:
        return None
    (id_len,) = struct.unpack_from(">H", body, 6)
    if len(body) < 16 + id_len:
        return None
    return struct.unpack_from(">Q", body, 8 + id_len)[0]


def decode_body(body):
    """Parse a record body (docs/log-format.md, "Record body"). Raises BodyError."""
    n = len(body)
    pos = 0

    def take(k):
        nonlocal pos
        if n - pos < k:
            raise BodyError(f"truncated: needed {k} bytes at offset {pos}")
        s = body[pos : pos + k]
        pos += k
        return s

    if bytes(take(4)) != MAGIC:
        raise BodyError("bad magic (not an Outpost log record)")
    version = take(1)[0]
    if version != FORMAT_VERSION:
        raise BodyError(f"unsupported format version {version}")
    kind = take(1)[0]
    if kind not in KINDS:
        raise BodyError(f"unknown record kind {kind}")
    (id_len,) = struct.unpack(">H", take(2))
    try:
        log_id = bytes(take(id_len)).decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("invalid log id: not UTF-8") from None
    if not valid_log_id(log_id):
        raise BodyError(f"invalid log id {log_id[:80]!r} (1-64 chars of A-Z a-z 0-9 - _ . : /)")
    (seq,) = struct.unpack(">Q", take(8))
    if seq == 0:
        raise BodyError("sequence number 0 is not allowed")
    (ts,) = struct.unpack(">Q", take(8))
    prev_hash = bytes(take(32))
    (plen,) = struct.unpack(">I", take(4))
    if plen > PAYLOAD_MAX:
        raise BodyError(f"payload of {plen} bytes exceeds the 1 MiB limit")
    payload = take(plen)
    try:
        doc = parse_json(payload)
    except ValueError as e:
        raise BodyError(f"payload is not UTF-8 JSON: {e}") from None
    if pos != n:
        raise BodyError(f"{n - pos} trailing bytes after the record")
    r = Record()
    r.kind, r.log_id, r.seq, r.prev_hash, r.payload, r.json = kind, log_id, seq, prev_hash, bytes(payload), doc
    # The field is 64-bit; Outpost reads it as a signed i64. A value >= 2^63 therefore reads as
    # negative and fails the non-decreasing check, exactly as in our code.
    r.timestamp = ts - (1 << 64) if ts > I64_MAX else ts
    return r


# --- Segment header ----------------------------------------------------------------------------


def _int_field(h, name, lo, hi):
    v = h[name]
    if type(v) is not int or not lo <= v <= hi:
        raise ValueError(f"field `{name}` must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def parse_header(line):
    """Parse and structurally check the header line. Raises ValueError."""
    h = parse_json(line)
    if not isinstance(h, dict):
        raise ValueError("header is not a JSON object")
    if h.duplicates:
        raise ValueError(f"duplicate field `{h.duplicates[0]}`")
    unknown = [k for k in h if k not in HEADER_FIELDS]
    if unknown:
        raise ValueError(f"unknown field `{unknown[0]}`")
    missing = [k for k in HEADER_FIELDS if k not in h]
    if missing:
        raise ValueError(f"missing field `{missing[0]}`")
    for k in ("format", "log_id", "prev_hash", "last_hash", "public_key"):
        if not isinstance(h[k], str):
            raise ValueError(f"field `{k}` must be a string")
    if h["format"] != SEGMENT_FORMAT:
        raise ValueError(f"unsupported format {h['format']!r} (expected {SEGMENT_FORMAT!r})")
    if not valid_log_id(h["log_id"]):
        raise ValueError(f"invalid log_id {h['log_id'][:80]!r}")
    first = _int_field(h, "first_seq", 1, U64_MAX)
    _int_field(h, "last_seq", 0, U64_MAX)
    _int_field(h, "records", 1, U64_MAX)
    prev_ts = _int_field(h, "prev_timestamp_ms", I64_MIN, I64_MAX)
    for k in ("prev_hash", "last_hash", "public_key"):
        if not HEX64_RE.match(h[k]):
            raise ValueError(f"field `{k}` must be 64 hex characters")
    if prev_ts < 0:
        raise ValueError(f"prev_timestamp_ms {prev_ts} is negative")
    if first == 1 and (h["prev_hash"].lower() != ZERO_HASH or prev_ts != 0):
        raise ValueError("a segment starting at seq 1 must have prev_hash of 64 zeros and prev_timestamp_ms 0")
    return h


# --- Payload schemas (docs/log-format.md, "Payloads") ------------------------------------------


class SchemaError(Exception):
    pass


def _fail(path, msg):
    raise SchemaError(f"{path}: {msg}" if path else msg)


def t_int(lo, hi):
    def check(v, path):
        if type(v) is not int:
            _fail(path, f"expected an integer, got {json.dumps(v)[:40]}")
        if not lo <= v <= hi:
            _fail(path, f"integer {v} out of range [{lo}, {hi}]")

    return check


T_U64, T_I64, T_U32, T_U16 = t_int(0, U64_MAX), t_int(I64_MIN, I64_MAX), t_int(0, U32_MAX), t_int(0, U16_MAX)


def T_BOOL(v, path):
    if type(v) is not bool:
        _fail(path, "expected true or false")


def T_STR(v, path):
    if not isinstance(v, str):
        _fail(path, "expected a string")


def t_pattern(what, regex, max_len=None):
    def check(v, path):
        T_STR(v, path)
        if (max_len is not None and not 1 <= len(v) <= max_len) or not regex.match(v):
            rule = f"1-{max_len} chars" if max_len else "pattern"
            _fail(path, f"invalid {what} {v[:80]!r} ({rule} of {regex.pattern[:-2]})")

    return check


def t_token(what, max_len):
    return t_pattern(what, TOKEN_RE, max_len)


T_NODE = t_pattern("node id", DNS_LABEL_RE, 32)
T_PLAYER = t_token("player id", 64)
T_BET = t_token("bet id", 64)
T_EVENT = t_token("event id", 96)
T_MARKET = t_token("market id", 128)
T_SELECTION = t_token("selection id", 160)
T_IDEMKEY = t_token("idempotency key", 128)
T_JURIS = t_pattern("jurisdiction", JURISDICTION_RE)
T_SHA256 = t_pattern("SHA-256 (64 lowercase hex chars)", LOWER_HEX64_RE)
T_SHOP = t_pattern("shop id", DNS_LABEL_RE, 32)
T_TERMINAL = t_pattern("terminal id", DNS_LABEL_RE, 32)
T_STAFF = t_pattern("staff id", DNS_LABEL_RE, 32)


def T_TICKET(v, path):
    """18 digits, the last a Luhn (ISO/IEC 7812-1) check digit."""
    T_STR(v, path)
    if len(v) != 18 or not v.isdigit() or not v.isascii():
        _fail(path, f"invalid ticket id {v[:32]!r} (18 digits)")
    total = 0
    for i, c in enumerate(reversed(v[:-1])):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    if (10 - total % 10) % 10 != int(v[-1]):
        _fail(path, f"ticket id {v!r} fails its Luhn check digit")


def t_enum(*values):
    def check(v, path):
        if v not in values or not isinstance(v, str):
            _fail(path, f"expected one of {', '.join(values)}, got {json.dumps(v)[:40]}")

    return check


T_CURRENCY = t_enum("GBP", "EUR", "USD", "DKK")
_T_OUTCOME_NAME = t_enum("home", "draw", "away", "over", "under", "other_score", "yes", "no")


def T_OUTCOME(v, path):
    """A named outcome, or {"score": {"home", "away"}} (correct score), or {"runner": {"id"}}."""
    if isinstance(v, dict) and len(v) == 1 and "score" in v:
        t_struct({"home": (t_int(0, 255), REQ), "away": (t_int(0, 255), REQ)})(v["score"], f"{path}.score")
    elif isinstance(v, dict) and len(v) == 1 and "runner" in v:
        t_struct({"id": (T_U64, REQ)})(v["runner"], f"{path}.runner")
    else:
        _T_OUTCOME_NAME(v, path)



T_LEG_RESULT = t_enum("win", "lose", "push", "void", "half_win", "half_lose", "placed")
T_MARKET_STATUS = t_enum("open", "suspended", "closed", "settled", "cancelled")
T_MOVEMENT_REASON = t_enum("deposit", "withdrawal", "stake", "settlement", "shop_stake", "shop_payout", "shop_void")
T_REASON_CODE = t_enum(
    "JURISDICTION_NOT_SERVED", "KYC_REQUIRED", "AGE_UNKNOWN", "UNDER_AGE", "SELF_EXCLUDED", "CURRENCY_MISMATCH",
    "STAKE_TOO_LOW", "STAKE_TOO_HIGH", "NO_LEGS", "TOO_MANY_LEGS", "DUPLICATE_EVENT", "SELECTION_NOT_FOUND",
    "MARKET_NOT_OPEN", "PRICE_CHANGED", "PAYOUT_TOO_HIGH", "INSUFFICIENT_FUNDS",
    # Issue 3.
    "REGISTER_EXCLUDED", "REGISTER_MISSING", "REGISTER_STALE", "REGISTER_NOT_USED", "REGISTER_UNSIGNED",
    "REGISTER_BAD_SIGNATURE", "REGISTER_CORRUPT", "REGISTER_OUT_OF_ORDER", "TIMED_OUT", "DEPOSIT_LIMIT",
    "LOSS_LIMIT", "STAKE_LIMIT", "CROSS_OPERATOR_LIMIT", "CROSS_OPERATOR_UNKNOWN", "LIMIT_ABOVE_CAP",
    "LIMIT_INVALID", "TIME_OUT_INVALID", "AML_REFUSED", "GEO_REQUIRED", "GEO_OUTSIDE", "SPORT_NOT_ALLOWED",
    "BET_TYPE_NOT_ALLOWED", "MARKET_KIND_NOT_ALLOWED", "IN_PLAY_NOT_ALLOWED", "BANNED_EVENT",
    "SELECTION_LIABILITY", "EVENT_LIABILITY",
)  # fmt: skip
T_LIMIT_KIND = t_enum("deposit", "loss", "stake")
T_WINDOW = t_enum("day", "week", "month")
T_AML_RULE = t_enum(
    "large_bet", "large_deposit", "velocity", "structuring", "new_account_large_bet", "withdrawal_without_play"
)
T_AML_ACTION = t_enum("flag", "refuse")


def T_PRICE(v, path):
    """Decimal odds as a string with at most 3 decimals, 1.000 < price <= 1000.000."""
    T_STR(v, path)
    i, _, f = v.partition(".")
    ok = 1 <= len(i) <= 7 and len(f) <= 3 and DIGITS_RE.match(i) and DIGITS_RE.match(f)
    if ok:
        milli = int(i) * 1000 + (int(f) * 10 ** (3 - len(f)) if f else 0)
        ok = 1000 < milli <= 1_000_000
    if not ok:
        _fail(path, f"invalid price {v[:32]!r} (decimal odds > 1.000 and <= 1000.000, at most 3 decimals)")


def T_LINE(v, path):
    """Goal line: a multiple of 0.25 between -20 and 20, as a string."""
    T_STR(v, path)
    t = v.strip()
    body = t[1:] if t[:1] in ("-", "+") else t
    i, _, f = body.partition(".")
    quarter = {"": 0, "25": 1, "5": 2, "75": 3}.get(f.rstrip("0"))
    if not (1 <= len(i) <= 2 and DIGITS_RE.match(i) and quarter is not None and int(i) * 4 + quarter <= 80):
        _fail(path, f"invalid goal line {v[:16]!r} (multiple of 0.25 between -20 and 20)")


def T_ACCOUNT(v, path):
    T_STR(v, path)
    if v in ("provider", "house"):
        return
    ok = False
    if v.startswith("shop:") and v.endswith(":cash"):
        sid = v[len("shop:") : -len(":cash")]
        ok = 1 <= len(sid) <= 32 and DNS_LABEL_RE.match(sid) is not None
    if v.startswith("player:"):
        pid, _, kind = v[len("player:") :].rpartition(":")
        ok = kind in ("cash", "stakes", "debt", "pending_withdrawal") and 1 <= len(pid) <= 64 and TOKEN_RE.match(pid) is not None
    if not ok:
        _fail(path, f"unknown account {v[:80]!r} (provider, house, player:{{id}}:cash, player:{{id}}:stakes, player:{{id}}:debt, player:{{id}}:pending_withdrawal, shop:{{id}}:cash)")


def t_list(item):
    def check(v, path):
        if not isinstance(v, list):
            _fail(path, "expected an array")
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")

    return check


REQ, OPT = True, False


def t_struct(fields):
    """fields: name -> (validator, required). Unknown fields are ignored (schemas only grow);
    optional fields may be absent or null."""

    def check(v, path):
        if not isinstance(v, dict):
            _fail(path, "expected an object")
        if getattr(v, "duplicates", ()):
            _fail(path, f"duplicate field `{v.duplicates[0]}`")
        for name, (validator, required) in fields.items():
            p = f"{path}.{name}" if path else name
            if name not in v or (v[name] is None and not required):
                if required:
                    _fail(p, "missing field")
                continue
            validator(v[name], p)

    return check


def T_EACH_WAY(v, path):
    t_struct({"places": (t_int(1, 10), REQ), "fraction_num": (t_int(1, 255), REQ), "fraction_den": (t_int(2, 255), REQ)})(v, path)


def T_MARKET_KIND(v, path):
    if not isinstance(v, dict):
        _fail(path, "expected an object")
    if getattr(v, "duplicates", ()):
        _fail(path, f"duplicate field `{v.duplicates[0]}`")
    variants = {
        "match_result": {},
        "total_goals": {"line": (T_LINE, REQ)},
        "asian_handicap": {"home_line": (T_LINE, REQ)},
        "correct_score": {"max_goals": (t_int(1, 9), REQ)},
        "both_teams_to_score": {},
        "race_win": {"each_way": (T_EACH_WAY, OPT)},
        "race_place": {"places": (t_int(1, 10), REQ)},
        "outright": {"winners": (t_int(1, 10), REQ)},
    }
    tag = v.get("type")
    if tag not in variants or not isinstance(tag, str):
        _fail(f"{path}.type", f"expected one of {', '.join(variants)}")
    t_struct(variants[tag])(v, path)


T_IDEM = t_struct({"key": (T_IDEMKEY, REQ), "request_sha256": (T_SHA256, REQ)})
T_POSTING = t_struct({"from": (T_ACCOUNT, REQ), "to": (T_ACCOUNT, REQ), "amount_minor": (T_I64, REQ)})
T_SCORE = t_struct({"home": (T_U16, REQ), "away": (T_U16, REQ)})
T_DOWN = t_struct({"down_seq": (T_U64, REQ), "hub_record_sha256": (T_SHA256, REQ), "hub_timestamp_ms": (T_I64, REQ)})
T_CHECK = t_struct({"check": (T_STR, REQ), "passed": (T_BOOL, REQ), "detail": (T_STR, REQ), "code": (T_REASON_CODE, OPT)})
T_SPORT_EVENT = t_struct(
    {"event_id": (T_EVENT, REQ), "competition": (T_STR, REQ), "home": (T_STR, REQ), "away": (T_STR, REQ), "kickoff": (T_I64, REQ)}
)
T_SELECTION_PRICE = t_struct({"selection_id": (T_SELECTION, REQ), "outcome": (T_OUTCOME, REQ), "price": (T_PRICE, REQ)})
T_MARKET_OBJ = t_struct(
    {
        "market_id": (T_MARKET, REQ),
        "event_id": (T_EVENT, REQ),
        "kind": (T_MARKET_KIND, REQ),
        "status": (T_MARKET_STATUS, REQ),
        "selections": (t_list(T_SELECTION_PRICE), REQ),
    }
)
T_BET_LEG = t_struct(
    {
        "selection_id": (T_SELECTION, REQ),
        "market_id": (T_MARKET, REQ),
        "event_id": (T_EVENT, REQ),
        "kind": (T_MARKET_KIND, REQ),
        "outcome": (T_OUTCOME, REQ),
        "price": (T_PRICE, REQ),
    }
)

def T_OPT_I64(v, path):
    if v is not None:
        T_I64(v, path)


T_AML_HIT = t_struct({"rule": (T_AML_RULE, REQ), "action": (T_AML_ACTION, REQ), "detail": (T_STR, REQ)})
T_LIMIT_CHANGE = t_struct(
    {"amount_minor": (T_OPT_I64, OPT), "immediate": (T_BOOL, REQ), "requested_at": (T_I64, REQ), "effective_at": (T_I64, REQ)}
)
T_REGISTER_DOC = t_struct({"payload_b64": (T_STR, REQ), "signature_hex": (T_STR, REQ)})
T_MOVEMENT_DECISION = t_struct({"rules_version": (T_STR, REQ), "checks": (t_list(T_CHECK), REQ), "flags": (t_list(T_AML_HIT), OPT)})
T_ODDS_REASON = t_struct(
    {
        "code": (
            t_enum(
                "feed_odds", "provider_suspended", "bet_stop", "producer_silent", "producer_lost", "recovery_complete",
                "impossible_price", "pricing_failed", "incomplete_prices", "provider_closed", "settled", "cancelled",
                "rollback_settlement", "rollback_cancel", "non_runner", "restored",
            ),
            REQ,
        )
    }
)  # fmt: skip
T_FEED_MARKET = t_struct(
    {
        "market_id": (T_MARKET, REQ),
        "event_id": (T_EVENT, REQ),
        "kind": (T_MARKET_KIND, REQ),
        "status": (T_MARKET_STATUS, REQ),
        "in_play": (T_BOOL, REQ),
        "producer": (T_STR, REQ),
        # price is null for a selection not offered
        "selections": (
            t_list(t_struct({"selection_id": (T_SELECTION, REQ), "outcome": (T_OUTCOME, REQ), "price": (T_PRICE, OPT)})),
            REQ,
        ),
    }
)

# Hub results for races and per-outcome feed results (kind 72, docs/protocol.md).
T_FACTOR = t_struct({"num": (T_U64, REQ), "den": (t_int(1, U64_MAX), REQ)})
T_LEG_FACTORS = t_struct({"win": (T_FACTOR, REQ), "place": (T_FACTOR, OPT), "rule4_pence": (t_int(0, 90), OPT)})
T_PLACING = t_struct({"runner": (T_U64, REQ), "position": (t_int(1, U16_MAX), REQ)})
T_NON_RUNNER = t_struct({"runner": (T_U64, REQ), "withdrawn_at": (T_I64, REQ), "deduction": (t_int(0, 90), REQ)})
T_OUTCOME_RESULT = t_struct(
    {"outcome": (T_OUTCOME, REQ), "won": (T_BOOL, REQ), "void_factor": (T_FACTOR, REQ), "dead_heat_factor": (T_FACTOR, REQ)}
)
T_MARKET_RESULT = t_struct({"market_id": (T_MARKET, REQ), "outcomes": (t_list(T_OUTCOME_RESULT), REQ)})


def T_EVENT_RESULT(v, path):
    if not isinstance(v, dict):
        _fail(path, "expected an object")
    variants = {
        "score": {"home": (T_U16, REQ), "away": (T_U16, REQ)},
        "race": {
            "placings": (t_list(T_PLACING), REQ),
            "non_runners": (t_list(T_NON_RUNNER), REQ),
            "runners": (T_U16, REQ),
            "handicap": (T_BOOL, REQ),
        },
        "outcomes": {"markets": (t_list(T_MARKET_RESULT), REQ)},
    }
    tag = v.get("type")
    if not isinstance(tag, str) or tag not in variants:
        _fail(f"{path}.type", f"expected one of {', '.join(variants)}")
    t_struct(variants[tag])(v, path)


PAYLOAD_SCHEMAS = {
    1: t_struct(
        {
            "node_id": (T_NODE, REQ),
            "jurisdiction": (T_JURIS, REQ),
            "currency": (T_CURRENCY, REQ),
            "public_key": (t_pattern("public key (64 lowercase hex chars)", LOWER_HEX64_RE), REQ),
            "software": (T_STR, REQ),
        }
    ),
    2: t_struct({"player_id": (T_PLAYER, REQ), "jurisdiction": (T_JURIS, REQ), "pii_sha256": (T_SHA256, REQ), "idem": (T_IDEM, REQ)}),
    3: t_struct({"player_id": (T_PLAYER, REQ), "idem": (T_IDEM, REQ)}),
    4: t_struct(
        {
            "movement_id": (T_U64, REQ),
            "player_id": (T_PLAYER, REQ),
            "reason": (T_MOVEMENT_REASON, REQ),
            "currency": (T_CURRENCY, REQ),
            "postings": (t_list(T_POSTING), REQ),
            "bet_id": (T_BET, OPT),
            "provider_ref": (T_STR, OPT),
            "idem": (T_IDEM, OPT),
            "decision": (T_MOVEMENT_DECISION, OPT),
        }
    ),
    5: t_struct(
        {
            "player_id": (T_PLAYER, REQ),
            "action": (T_STR, REQ),
            "accepted": (T_BOOL, REQ),
            "reason": (T_REASON_CODE, OPT),
            "jurisdiction": (T_JURIS, REQ),
            "rules_version": (T_STR, REQ),
            "checks": (t_list(T_CHECK), REQ),
            "bet_id": (T_BET, OPT),
            "idem": (T_IDEM, OPT),
            "flags": (t_list(T_AML_HIT), OPT),
            "reality_check_due": (T_BOOL, OPT),
        }
    ),
    6: t_struct(
        {
            "bet_id": (T_BET, REQ),
            "player_id": (T_PLAYER, REQ),
            "currency": (T_CURRENCY, REQ),
            "stake_minor": (T_I64, REQ),
            "potential_payout_minor": (T_I64, REQ),
            "legs": (t_list(T_BET_LEG), REQ),
            "idem": (T_IDEM, REQ),
        }
    ),
    7: t_struct({"player_id": (T_PLAYER, REQ), "idem": (T_IDEM, REQ)}),
    8: t_struct({"event": (T_SPORT_EVENT, REQ), "market": (T_MARKET_OBJ, REQ)}),
    9: t_struct(
        {
            "event_id": (T_EVENT, REQ),
            "score": (T_SCORE, OPT),
            "result_version": (T_U32, REQ),
            "down": (T_DOWN, REQ),
            "markets": (t_list(T_MARKET), OPT),
        }
    ),
    10: t_struct(
        {
            "bet_id": (T_BET, REQ),
            "player_id": (T_PLAYER, REQ),
            "result_version": (T_U32, REQ),
            "leg_results": (t_list(T_LEG_RESULT), REQ),
            "payout_minor": (T_I64, REQ),
            "down": (T_DOWN, REQ),
        }
    ),
    11: t_struct({"reason": (T_STR, REQ), "down": (T_DOWN, REQ)}),
    56: t_struct(
        {
            "node_id": (T_NODE, REQ),
            "jurisdiction": (T_JURIS, REQ),
            "currency": (T_CURRENCY, REQ),
            "as_of_seq": (T_U64, REQ),
            "part": (T_U32, REQ),
            "parts": (T_U32, REQ),
            "players": (
                t_list(t_struct({"player_id": (T_PLAYER, REQ), "cash_minor": (T_I64, REQ), "stakes_held_minor": (T_I64, REQ)})),
                REQ,
            ),
            "total_cash_minor": (T_I64, REQ),
            "total_stakes_held_minor": (T_I64, REQ),
        }
    ),
    # Issue 3: gate, wallet and risk.
    12: t_struct(
        {
            "player_id": (T_PLAYER, REQ),
            "kind": (T_LIMIT_KIND, REQ),
            "window": (T_WINDOW, REQ),
            "change": (T_LIMIT_CHANGE, REQ),
            "rules_version": (T_STR, REQ),
            "idem": (T_IDEM, REQ),
        }
    ),
    13: t_struct(
        {
            "register": (T_STR, REQ),
            "doc_kind": (t_enum("snapshot", "update"), REQ),
            "seq": (T_U64, REQ),
            "issued_at_ms": (T_I64, REQ),
            "entries": (T_U64, REQ),
            "doc": (T_REGISTER_DOC, REQ),
        }
    ),
    14: t_struct(
        {
            "player_id": (T_PLAYER, REQ),
            "action": (T_STR, REQ),
            "hit": (T_AML_HIT, REQ),
            "accepted": (T_BOOL, REQ),
            "amount_minor": (T_I64, REQ),
            "bet_id": (T_BET, OPT),
            "movement_id": (T_U64, OPT),
            "rules_version": (T_STR, REQ),
        }
    ),
    15: t_struct({"player_id": (T_PLAYER, REQ), "kind": (t_enum("time_out", "cool_off"), REQ), "until": (T_I64, REQ), "idem": (T_IDEM, REQ)}),
    16: t_struct({"player_id": (T_PLAYER, REQ), "idem": (T_IDEM, REQ)}),
    17: t_struct({"jurisdiction": (T_JURIS, REQ), "rules_version": (T_STR, REQ), "rules_sha256": (T_STR, REQ)}),
    18: t_struct({"player_id": (T_PLAYER, REQ), "other_operators_month_minor": (T_I64, REQ), "source": (T_STR, REQ), "idem": (T_IDEM, REQ)}),
    19: t_struct(
        {"player_id": (T_PLAYER, REQ), "provider_ref": (T_STR, REQ), "paid": (T_BOOL, REQ), "movement_id": (T_U64, REQ), "idem": (T_IDEM, REQ)}
    ),
    40: t_struct(
        {
            "ticket_id": (T_TICKET, REQ),
            "bet_id": (T_BET, REQ),
            "shop_id": (T_SHOP, REQ),
            "terminal_id": (T_TERMINAL, REQ),
            "staff_id": (T_STAFF, REQ),
            "holder": (t_enum("cash", "account"), REQ),
            "player_id": (T_PLAYER, REQ),
            "currency": (T_CURRENCY, REQ),
            "stake_minor": (T_I64, REQ),
            "potential_payout_minor": (T_I64, REQ),
            "expires_at_ms": (T_I64, REQ),
            "rules_version": (T_STR, REQ),
        }
    ),
    41: t_struct(
        {
            "ticket_id": (T_TICKET, REQ),
            "bet_id": (T_BET, REQ),
            "shop_id": (T_SHOP, REQ),
            "terminal_id": (T_TERMINAL, REQ),
            "staff_id": (T_STAFF, REQ),
            "payout_minor": (T_I64, REQ),
            "id_checked": (T_BOOL, REQ),
            "idem": (T_IDEM, REQ),
        }
    ),
    42: t_struct(
        {
            "ticket_id": (T_TICKET, REQ),
            "bet_id": (T_BET, REQ),
            "shop_id": (T_SHOP, REQ),
            "terminal_id": (T_TERMINAL, REQ),
            "staff_id": (T_STAFF, REQ),
            "authorised_by": (T_STAFF, OPT),
            "reason": (T_STR, REQ),
            "refund_minor": (T_I64, REQ),
            "idem": (T_IDEM, REQ),
        }
    ),
    28: t_struct(
        {
            "odds_seq": (T_U64, REQ),
            "reason": (T_ODDS_REASON, REQ),
            "source_ts": (T_I64, REQ),
            "market": (T_FEED_MARKET, REQ),
        }
    ),
    29: t_struct({"producer": (T_STR, REQ), "up": (T_BOOL, REQ), "reason": (T_ODDS_REASON, REQ), "at": (T_I64, REQ)}),
    64: t_struct({"event_id": (T_EVENT, REQ), "score": (T_SCORE, REQ), "result_version": (T_U32, REQ), "source": (T_STR, REQ)}),
    65: t_struct(
        {
            "bet_id": (T_BET, REQ),
            "node_id": (T_NODE, REQ),
            "player_id": (T_PLAYER, REQ),
            "result_version": (T_U32, REQ),
            "leg_results": (t_list(T_LEG_RESULT), REQ),
            "currency": (T_CURRENCY, REQ),
            "stake_minor": (T_I64, REQ),
            "payout_minor": (T_I64, REQ),
            "leg_factors": (t_list(T_LEG_FACTORS), OPT),
        }
    ),
    66: t_struct(
        {
            "bet_id": (T_BET, REQ),
            "node_id": (T_NODE, REQ),
            "player_id": (T_PLAYER, REQ),
            "reversed_result_version": (T_U32, REQ),
            "reversed_down_seq": (T_U64, REQ),
            "currency": (T_CURRENCY, REQ),
            "stake_minor": (T_I64, REQ),
            "payout_minor": (T_I64, REQ),
            "reason": (T_STR, REQ),
        }
    ),
    72: t_struct({"event_id": (T_EVENT, REQ), "result": (T_EVENT_RESULT, REQ), "result_version": (T_U32, REQ), "source": (T_STR, REQ)}),
    67: t_struct(
        {
            "bet_id": (T_BET, REQ),
            "player_id": (T_PLAYER, REQ),
            "reversed_result_version": (T_U32, REQ),
            "payout_reversed_minor": (T_I64, REQ),
            "from_cash_minor": (T_I64, REQ),
            "to_debt_minor": (T_I64, REQ),
            "reason": (T_STR, REQ),
            "down": (T_DOWN, REQ),
        }
    ),
}


# --- Verification ------------------------------------------------------------------------------


def utc_date(ms):
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=ms // 86_400_000)


class Verifier:
    def __init__(self, key_hex, key_raw, pub):
        self.key_hex, self.key_raw, self.pub = key_hex.lower(), key_raw, pub
        self.log_id = None
        # Tip of the chain: last record checked (possibly unsealed).
        self.tip_seq, self.tip_hash, self.tip_ts = None, None, None
        self.pending = []  # records after the last seal
        self.records = []  # verified records, in order
        self.segments = []
        self.seals = 0
        self.jurisdiction = None  # from the genesis record, when seq 1 is present

    def fail(self, reason, **kw):
        raise VerifyFailure(reason, **kw)

    def verify_segment(self, path, data):
        nl = data.find(b"\n")
        if nl < 0:
            self.fail("no header line (a segment starts with one JSON line ending in a newline)", file=path)
        try:
            h = parse_header(data[:nl])
        except ValueError as e:
            self.fail(f"invalid segment header: {e}", file=path)
        if h["public_key"].lower() != self.key_hex:
            hint = f" (header names public key {h['public_key'].lower()}, which is not the trusted key)"
        else:
            hint = ""
        first_segment = self.log_id is None
        if first_segment:
            # Nothing earlier is known: the chain continues the position the header states.
            self.log_id = h["log_id"]
            self.tip_seq, self.tip_hash, self.tip_ts = h["first_seq"] - 1, bytes.fromhex(h["prev_hash"]), h["prev_timestamp_ms"]

        buf = memoryview(data)
        pos, index, seg_records, last = nl + 1, 0, 0, None
        while pos < len(data):
            if len(data) - pos < 4:
                self.fail(f"truncated frame: needed 4 bytes at offset {pos}", file=path, index=index)
            (blen,) = struct.unpack_from(">I", data, pos)
            if blen > FRAME_BODY_MAX:
                self.fail(f"frame body of {blen} bytes exceeds the limit of {FRAME_BODY_MAX}", file=path, index=index)
            body = buf[pos + 4 : pos + 4 + blen]
            seq_hint = peek_seq(body)
            if len(body) < blen:
                self.fail(f"truncated frame: body needs {blen} bytes, file has {len(body)}", file=path, index=index, seq=seq_hint)
            p = pos + 4 + blen
            if p >= len(data):
                self.fail("truncated frame: missing seal flag", file=path, index=index, seq=seq_hint)
            flag = data[p]
            if flag not in (0, 1):
                self.fail(f"seal flag must be 0 or 1, got {flag}", file=path, index=index, seq=seq_hint)
            sig = None
            if flag == 1:
                sig = bytes(buf[p + 1 : p + 65])
                if len(sig) < 64:
                    self.fail("truncated frame: seal needs 64 bytes", file=path, index=index, seq=seq_hint)
            pos = p + 1 + (64 if flag else 0)
            self.check_record(path, index, bytes(body), sig, seq_hint, hint)
            last = self.records[-1] if not self.pending else self.pending[-1]
            index += 1
            seg_records += 1

        if self.pending:
            a, b = self.pending[0].seq, self.pending[-1].seq
            self.fail(f"records from seq {a} to {b} are not covered by any seal (unsealed tail)", file=path, seq=a, index=self.pending[0].index)
        if last is None:
            self.fail("segment holds no records", file=path)

        # The header must describe the records that follow it.
        first_rec = self.records[-seg_records]
        at_last = dict(file=path, index=last.index, seq=last.seq)
        if h["records"] != seg_records:
            self.fail(f"header says {h['records']} records, found {seg_records}", **at_last)
        if h["log_id"] != self.log_id:
            self.fail(f"header log_id {h['log_id']!r} is not the log being verified ({self.log_id!r})", file=path, index=0, seq=first_rec.seq)
        if h["first_seq"] != first_rec.seq:
            self.fail(f"header says first_seq {h['first_seq']}, first record is seq {first_rec.seq}", file=path, index=0, seq=first_rec.seq)
        if not first_segment:
            prev = self.records[-seg_records - 1]
            if bytes.fromhex(h["prev_hash"]) != prev.hash:
                self.fail(f"header prev_hash {h['prev_hash']} is not the hash of seq {prev.seq}", file=path, index=0, seq=first_rec.seq)
            if h["prev_timestamp_ms"] != prev.timestamp:
                self.fail(f"header prev_timestamp_ms {h['prev_timestamp_ms']} is not the timestamp of seq {prev.seq}", file=path, index=0, seq=first_rec.seq)
        if h["last_seq"] != last.seq:
            self.fail(f"header says last_seq {h['last_seq']}, last record is seq {last.seq}", **at_last)
        if bytes.fromhex(h["last_hash"]) != last.hash:
            self.fail(f"header last_hash {h['last_hash'].lower()} is not the hash of seq {last.seq} ({last.hash.hex()})", **at_last)
        if h["public_key"].lower() != self.key_hex:
            self.fail(f"header public_key {h['public_key'].lower()} is not the trusted key", **at_last)
        self.segments.append(
            {
                "file": path,
                "first_seq": first_rec.seq,
                "last_seq": last.seq,
                "records": seg_records,
                "first_timestamp_ms": first_rec.timestamp,
                "audit_key_suffix": audit_key_suffix(self.log_id, first_rec.seq, last.seq, first_rec.timestamp),
            }
        )

    def check_record(self, path, index, body, sig, seq_hint, hint):
        try:
            r = decode_body(body)
        except BodyError as e:
            self.fail(f"cannot decode: {e}", file=path, index=index, seq=seq_hint)
        at = dict(file=path, index=index, seq=r.seq)
        if r.log_id != self.log_id:
            self.fail(f"belongs to log {r.log_id!r}, expected {self.log_id!r}", **at)
        expected = self.tip_seq + 1
        if r.seq != expected:
            self.fail(f"expected seq {expected}, found {r.seq} (gap or duplicate)", **at)
        if r.prev_hash != self.tip_hash:
            self.fail(
                f"prev_hash {r.prev_hash.hex()} does not match the hash {self.tip_hash.hex()} of seq {r.seq - 1} "
                f"(record {r.seq - 1} or this record was altered)",
                **at,
            )
        if r.timestamp < self.tip_ts:
            self.fail(f"timestamp goes backwards ({r.timestamp} < {self.tip_ts} of the previous record)", **at)
        r.hash = hashlib.sha256(body).digest()
        r.sealed = sig is not None
        r.file, r.index = path, index
        if sig is not None:
            if not seal_ok(self.pub, sig, r.hash):
                self.fail(f"seal signature does not verify under the trusted key{hint}", **at)
            self.seals += 1
        self.tip_seq, self.tip_hash, self.tip_ts = r.seq, r.hash, r.timestamp
        self.pending.append(r)
        if r.sealed:
            self.records.extend(self.pending)
            self.pending = []

    def check_content(self):
        hub_chain = self.log_id.startswith("hub/")
        allowed = HUB_KINDS if hub_chain else EDGE_KINDS
        for r in self.records:
            at = dict(file=r.file, index=r.index, seq=r.seq, phase="content")
            name = KINDS[r.kind]
            if r.kind not in allowed:
                chain = "a hub downstream chain (hub/{node})" if hub_chain else "an edge log"
                self.fail(f"record kind {r.kind} ({name}) does not belong in {chain}", **at)
            try:
                PAYLOAD_SCHEMAS[r.kind](r.json, "")
            except SchemaError as e:
                self.fail(f"{name} payload does not match its schema: {e}", **at)
            if hub_chain:
                continue
            if r.seq == 1 and r.kind != 1:
                self.fail(f"an edge log must start with a genesis record, seq 1 is {name}", **at)
            if r.kind == 1:
                if r.seq != 1:
                    self.fail("genesis record after seq 1", **at)
                if r.json["public_key"] != self.key_hex:
                    self.fail(f"genesis public_key {r.json['public_key']} is not the trusted key {self.key_hex}", **at)
                if r.json["node_id"] != self.log_id:
                    self.fail(f"genesis node_id {r.json['node_id']!r} is not the log id {self.log_id!r}", **at)
                self.jurisdiction = r.json["jurisdiction"]
        for seg in self.segments:
            self.check_audit_name(seg)

    def check_audit_name(self, seg):
        """If the file path looks like an audit object key, it must match the records."""
        m = AUDIT_KEY_RE.search(seg["file"].replace(os.sep, "/"))
        if not m:
            return
        juris, y, mo, d, log, a, b = m.groups()
        want = seg["audit_key_suffix"]
        got = f"{y}/{mo}/{d}/{log}/{a}-{b}.seg"
        at = dict(file=seg["file"], index=0, seq=seg["first_seq"], phase="content")
        if got != want:
            self.fail(f"audit object name {got} does not match its records (expected {want})", **at)
        if juris is not None and self.jurisdiction is not None and juris != self.jurisdiction:
            self.fail(f"audit object is filed under jurisdiction {juris}, the genesis record says {self.jurisdiction}", **at)

    def summary(self):
        first, last = self.records[0], self.records[-1]
        kinds = {}
        for r in self.records:
            kinds[KINDS[r.kind]] = kinds.get(KINDS[r.kind], 0) + 1
        return {
            "ok": True,
            "log_id": self.log_id,
            "chain": "hub downstream" if self.log_id.startswith("hub/") else "edge",
            "public_key": self.key_hex,
            "segments": self.segments,
            "records": len(self.records),
            "first_seq": first.seq,
            "last_seq": last.seq,
            "starts_at_genesis": first.seq == 1,
            "prev_hash": first.prev_hash.hex(),
            "head_hash": last.hash.hex(),
            "head_timestamp_ms": last.timestamp,
            "first_timestamp_ms": first.timestamp,
            "seals": self.seals,
            "kinds": dict(sorted(kinds.items(), key=lambda kv: min(k for k, n in KINDS.items() if n == kv[0]))),
        }


def audit_key_suffix(log_id, first_seq, last_seq, first_ts):
    try:
        d = utc_date(first_ts)
        date = f"{d.year:04}/{d.month:02}/{d.day:02}"
    except (OverflowError, ValueError):
        date = "????/??/??"
    return f"{date}/{log_id.replace('/', '~')}/{first_seq:020}-{last_seq:020}.seg"


def iso(ms):
    try:
        return (datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    except OverflowError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Verify Outpost log segment files (docs/log-format.md) without Outpost's code.")
    ap.add_argument("segments", nargs="+", metavar="SEGMENT", help="segment files; several = consecutive parts of one log, in order")
    ap.add_argument("--public-key", required=True, metavar="HEX", help="trusted Ed25519 public key of the log's author (64 hex chars)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)

    try:
        key_raw, pub = load_public_key(args.public_key)
    except ValueError as e:
        sys.stderr.write(f"error: --public-key: {e}\n")
        return 2
    v = Verifier(args.public_key.strip(), key_raw, pub)
    try:
        for path in args.segments:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                sys.stderr.write(f"error: cannot read {path}: {e.strerror}\n")
                return 2
            v.verify_segment(path, data)
        v.check_content()
    except VerifyFailure as e:
        verified = v.records[-1].seq if v.records else None
        if args.json:
            print(json.dumps({"ok": False, "error": e.as_json(), "verified_through_seq": verified}, indent=2))
        else:
            print(e.text())
            if verified is not None and e.phase == "integrity":
                print(f"(records up to seq {verified} verified before the failure)")
        return 1

    s = v.summary()
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(f"OK: log {s['log_id']} ({s['chain']} chain), {s['records']} records, seq {s['first_seq']}..{s['last_seq']}, {len(s['segments'])} segment(s)")
        print(f"  public key  {s['public_key']}")
        print(f"  head hash   {s['head_hash']} (seq {s['last_seq']})")
        print(f"  time        {iso(s['first_timestamp_ms'])} .. {iso(s['head_timestamp_ms'])}")
        print(f"  seals       {s['seals']}" + ("" if s["starts_at_genesis"] else f"; continues prev_hash {s['prev_hash']} (not checked: earlier segment not given)"))
        for k, n in s["kinds"].items():
            print(f"  {k:<20} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
