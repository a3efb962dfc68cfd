//! The simulator's record payloads: small JSON objects, written and read by hand (the sync
//! crate has no JSON dependency, and these shapes are fixed).

pub(crate) fn bet(bet: &str, stake_minor: i64) -> Vec<u8> {
    format!("{{\"bet\":\"{bet}\",\"stake_minor\":{stake_minor}}}").into_bytes()
}

pub(crate) fn settlement_payload(bet: &str, payout_minor: i64) -> Vec<u8> {
    format!("{{\"bet\":\"{bet}\",\"payout_minor\":{payout_minor}}}").into_bytes()
}

pub(crate) fn credit(bet: &str, credit_minor: i64) -> Vec<u8> {
    format!("{{\"bet\":\"{bet}\",\"credit_minor\":{credit_minor}}}").into_bytes()
}

/// The `bet` field.
pub(crate) fn bet_id(payload: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(payload).ok()?;
    let rest = s.strip_prefix("{\"bet\":\"")?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// `(bet, payout_minor)` of a settlement.
pub(crate) fn settlement(payload: &[u8]) -> Option<(String, i64)> {
    let bet = bet_id(payload)?;
    let s = std::str::from_utf8(payload).ok()?;
    let at = s.find("\"payout_minor\":")? + "\"payout_minor\":".len();
    let payout = s[at..].trim_end_matches('}').parse().ok()?;
    Some((bet, payout))
}
