//! The edge API client token for CLI tools that call a node whose `[[api.clients]]` are
//! configured (`export-log` and `proof` need the `audit` role, `feed replay` the `feed` role).
//! Read from `OUTPOST_API_TOKEN`, not a flag, so the secret does not show in `ps` or shell
//! history. Unset: no `Authorization` header (a loopback node without clients needs none).

pub const ENV: &str = "OUTPOST_API_TOKEN";

/// `r` with the bearer token, when one is set.
pub fn authorise(r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match std::env::var(ENV) {
        Ok(t) if !t.trim().is_empty() => r.bearer_auth(t.trim()),
        _ => r,
    }
}
