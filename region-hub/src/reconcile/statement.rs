//! Payment-provider settlement reports: parsing and import.
//!
//! The format is modelled on Adyen's *Settlement details report* (one CSV per settlement
//! batch, one line per booking on the merchant account); `docs/reconciliation.md` documents
//! the columns we read and `fixtures/psp/` holds a realistic example. We read:
//!
//! | column | use |
//! |---|---|
//! | `Merchant Account` | must be the same on every line |
//! | `Psp Reference` | the provider's payment reference = the edge's `provider_ref` of a deposit |
//! | `Merchant Reference` | our reference, kept for people |
//! | `Creation Date`, `TimeZone` | when the booking was made (`YYYY-MM-DD HH:MM:SS`, GMT/UTC/CET/CEST/EET/EEST) |
//! | `Type` | `Settled` = deposit; `Refunded`, `PaidOut` = withdrawal; `Chargeback`, `SecondChargeback`, `RefundedReversed`, `ChargebackReversed` = reversal; `Fee`, `MerchantPayout`, `Balancetransfer`, `DepositCorrection`, `InvoiceDeduction`, `ManualCorrected`, `ReserveAdjustment` = not player money (validated, not stored) |
//! | `Modification Reference` | for withdrawals, the payout's own reference = the edge's `provider_ref` (falls back to `Psp Reference`) |
//! | `Gross Currency`, `Gross Debit (GC)`, `Gross Credit (GC)` | the player's amount, exact decimal, at most the currency's minor digits |
//! | `Batch Number` | must be the same on every line |
//!
//! Other columns (net amounts, fees, reserved columns) may be present and are ignored. A file
//! with any bad line is rejected as a whole, with every bad line's number (1 = header line),
//! and nothing is stored. Importing the same file twice (same SHA-256) changes nothing.

use outpost_core::ids::Jurisdiction;
use outpost_core::money::Currency;
use outpost_core::time::{CivilDate, UnixMillis};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::fmt;

/// At most this many line errors are listed; the rest are counted.
const MAX_LISTED_ERRORS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("statement is empty")]
    Empty,
    #[error("statement is not UTF-8 (line {0})")]
    NotUtf8(usize),
    #[error("statement rejected, nothing imported:{}", list(.errors, *.more))]
    Invalid { errors: Vec<LineError>, more: usize },
    #[error("invalid provider name {0:?}: 1-32 chars of a-z 0-9 - _")]
    Provider(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn list(errors: &[LineError], more: usize) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str(&format!("\n  line {}: {}", e.line, e.message));
    }
    if more > 0 {
        s.push_str(&format!("\n  … and {more} more"));
    }
    s
}

/// What a payment line is, for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    Deposit,
    Withdrawal,
    Reversal,
}

impl LineType {
    pub fn as_str(self) -> &'static str {
        match self {
            LineType::Deposit => "deposit",
            LineType::Withdrawal => "withdrawal",
            LineType::Reversal => "reversal",
        }
    }
    pub fn parse(s: &str) -> Option<LineType> {
        match s {
            "deposit" => Some(LineType::Deposit),
            "withdrawal" => Some(LineType::Withdrawal),
            "reversal" => Some(LineType::Reversal),
            _ => None,
        }
    }
}

/// One payment line of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub line_no: usize,
    /// The reference the edge's `provider_ref` must equal.
    pub reference: String,
    pub merchant_reference: String,
    pub line_type: LineType,
    pub created: UnixMillis,
    pub currency: Currency,
    pub gross_minor: i64,
}

/// A parsed, valid statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub merchant_account: String,
    pub batch_number: i64,
    pub lines: Vec<StatementLine>,
    /// Earliest and latest creation time of any line (fees and payouts included).
    pub period: (UnixMillis, UnixMillis),
}

const REQUIRED: [&str; 10] = [
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Creation Date",
    "TimeZone",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
];
const BATCH: &str = "Batch Number";

/// Split one CSV line (RFC 4180 quoting; a quoted field may not span lines).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
            } else {
                cur.push(c);
            }
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            at_start = true;
            continue;
        } else if c == '"' && at_start {
            quoted = true;
        } else if c == '"' {
            return Err("quote inside an unquoted field".into());
        } else {
            cur.push(c);
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

/// Parse a decimal amount like `1234.5` into minor units of `currency`, exactly.
pub fn parse_amount(s: &str, currency: Currency) -> Result<i64, String> {
    let digits = currency.minor_digits() as usize;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let ok = !int.is_empty()
        && int.len() <= 15
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (s.contains('.') <= !frac.is_empty());
    if !ok {
        return Err(format!("{s:?} is not an amount like 12.34"));
    }
    if frac.len() > digits {
        return Err(format!(
            "{s:?} has more than {digits} decimals for {}",
            currency.code()
        ));
    }
    let mut v: i64 = int.parse().map_err(|_| format!("{s:?} is too large"))?;
    for _ in 0..digits {
        v = v
            .checked_mul(10)
            .ok_or_else(|| format!("{s:?} is too large"))?;
    }
    let mut f: i64 = 0;
    for i in 0..digits {
        let d = frac
            .as_bytes()
            .get(i)
            .map(|b| i64::from(b - b'0'))
            .unwrap_or(0);
        f = f * 10 + d;
    }
    v.checked_add(f)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn tz_offset_ms(tz: &str) -> Option<i64> {
    let h = match tz {
        "GMT" | "UTC" => 0,
        "CET" => 1,
        "CEST" | "EET" => 2,
        "EEST" => 3,
        _ => return None,
    };
    Some(h * 3_600_000)
}

fn parse_datetime(s: &str, tz: &str) -> Result<UnixMillis, String> {
    let bad = || format!("{s:?} is not a date-time like 2026-11-21 13:05:12");
    let (d, t) = s.split_once(' ').ok_or_else(bad)?;
    let date = CivilDate::parse(d).map_err(|_| bad())?;
    let p: Vec<&str> = t.split(':').collect();
    if p.len() != 3
        || p.iter()
            .any(|x| x.len() != 2 || !x.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let (h, m, sec): (i64, i64, i64) = (
        p[0].parse().map_err(|_| bad())?,
        p[1].parse().map_err(|_| bad())?,
        p[2].parse().map_err(|_| bad())?,
    );
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    let off = tz_offset_ms(tz)
        .ok_or_else(|| format!("TimeZone {tz:?} is not one of GMT, UTC, CET, CEST, EET, EEST"))?;
    Ok(UnixMillis(
        date.start_millis().0 + (h * 3600 + m * 60 + sec) * 1000 - off,
    ))
}

fn reference_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control)
}

/// Parse a settlement report. Every problem is reported with its line number.
pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        StatementError::NotUtf8(
            1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let Some((_, header)) = lines.by_ref().find(|(_, l)| !l.trim().is_empty()) else {
        return Err(StatementError::Empty);
    };
    let mut errors: Vec<LineError> = Vec::new();
    let mut more = 0usize;
    let mut err = |line: usize, message: String| {
        if errors.len() < MAX_LISTED_ERRORS {
            errors.push(LineError { line, message });
        } else {
            more += 1;
        }
    };
    let cols = match split_csv(header) {
        Ok(c) => c
            .into_iter()
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>(),
        Err(e) => {
            return Err(StatementError::Invalid {
                errors: vec![LineError {
                    line: 1,
                    message: format!("header: {e}"),
                }],
                more: 0,
            });
        }
    };
    let idx = |name: &str| cols.iter().position(|c| c == name);
    let missing: Vec<&str> = REQUIRED
        .iter()
        .chain([&BATCH])
        .copied()
        .filter(|n| idx(n).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(StatementError::Invalid {
            errors: vec![LineError {
                line: 1,
                message: format!("header lacks column(s) {}", missing.join(", ")),
            }],
            more: 0,
        });
    }
    let c = |n: &str| idx(n).expect("checked above");
    let (c_acct, c_psp, c_mref, c_date, c_tz, c_type, c_mod, c_cur, c_debit, c_credit, c_batch) = (
        c("Merchant Account"),
        c("Psp Reference"),
        c("Merchant Reference"),
        c("Creation Date"),
        c("TimeZone"),
        c("Type"),
        c("Modification Reference"),
        c("Gross Currency"),
        c("Gross Debit (GC)"),
        c("Gross Credit (GC)"),
        c(BATCH),
    );

    let mut account: Option<String> = None;
    let mut batch: Option<i64> = None;
    let mut out = Vec::new();
    let mut period: Option<(UnixMillis, UnixMillis)> = None;
    let mut data_lines = 0;
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        data_lines += 1;
        let f = match split_csv(line) {
            Ok(f) => f,
            Err(e) => {
                err(n, e);
                continue;
            }
        };
        if f.len() != cols.len() {
            err(
                n,
                format!("{} fields, the header has {}", f.len(), cols.len()),
            );
            continue;
        }
        let get = |i: usize| f[i].trim();
        match &account {
            None => account = Some(get(c_acct).to_string()),
            Some(a) if a != get(c_acct) => {
                err(
                    n,
                    format!(
                        "Merchant Account {:?} differs from {a:?} on earlier lines",
                        get(c_acct)
                    ),
                );
                continue;
            }
            Some(_) => {}
        }
        match get(c_batch).parse::<i64>() {
            Ok(b) if b > 0 => match batch {
                None => batch = Some(b),
                Some(x) if x != b => {
                    err(
                        n,
                        format!("Batch Number {b} differs from {x} on earlier lines"),
                    );
                    continue;
                }
                Some(_) => {}
            },
            _ => {
                err(
                    n,
                    format!("Batch Number {:?} is not a positive integer", get(c_batch)),
                );
                continue;
            }
        }
        let created = match parse_datetime(get(c_date), get(c_tz)) {
            Ok(t) => t,
            Err(e) => {
                err(n, format!("Creation Date: {e}"));
                continue;
            }
        };
        period = Some(match period {
            None => (created, created),
            Some((a, b)) => (a.min(created), b.max(created)),
        });
        let ty = match get(c_type) {
            "Settled" => LineType::Deposit,
            "Refunded" | "PaidOut" => LineType::Withdrawal,
            "Chargeback" | "SecondChargeback" | "RefundedReversed" | "ChargebackReversed" => {
                LineType::Reversal
            }
            "Fee" | "MerchantPayout" | "Balancetransfer" | "DepositCorrection"
            | "InvoiceDeduction" | "ManualCorrected" | "ReserveAdjustment" => continue,
            other => {
                err(n, format!("Type {other:?} is not a known record type"));
                continue;
            }
        };
        let currency = match Currency::parse(get(c_cur)) {
            Ok(c) => c,
            Err(e) => {
                err(n, format!("Gross Currency: {e}"));
                continue;
            }
        };
        let (debit, credit) = (get(c_debit), get(c_credit));
        let amount = match (debit.is_empty(), credit.is_empty()) {
            (false, true) => {
                parse_amount(debit, currency).map_err(|e| format!("Gross Debit (GC): {e}"))
            }
            (true, false) => {
                parse_amount(credit, currency).map_err(|e| format!("Gross Credit (GC): {e}"))
            }
            _ => Err(
                "exactly one of Gross Debit (GC) and Gross Credit (GC) must be given".to_string(),
            ),
        };
        let gross_minor = match amount {
            Ok(0) => {
                err(n, "gross amount is zero".into());
                continue;
            }
            Ok(a) => a,
            Err(e) => {
                err(n, e);
                continue;
            }
        };
        let expect_credit = ty == LineType::Deposit;
        if ty != LineType::Reversal && expect_credit == credit.is_empty() {
            err(
                n,
                format!(
                    "a {} line must be a gross {}",
                    get(c_type),
                    if expect_credit { "credit" } else { "debit" }
                ),
            );
            continue;
        }
        let psp = get(c_psp);
        let reference = match (ty, get(c_mod)) {
            (LineType::Withdrawal, m) if !m.is_empty() => m,
            _ => psp,
        };
        if !reference_ok(psp) || !reference_ok(reference) {
            err(
                n,
                "Psp Reference / Modification Reference must be 1-128 printable characters".into(),
            );
            continue;
        }
        out.push(StatementLine {
            line_no: n,
            reference: reference.to_string(),
            merchant_reference: get(c_mref).to_string(),
            line_type: ty,
            created,
            currency,
            gross_minor,
        });
    }
    if !errors.is_empty() {
        return Err(StatementError::Invalid { errors, more });
    }
    if data_lines == 0 {
        return Err(StatementError::Empty);
    }
    let (Some(merchant_account), Some(batch_number), Some(period)) = (account, batch, period)
    else {
        return Err(StatementError::Empty);
    };
    Ok(Statement {
        merchant_account,
        batch_number,
        lines: out,
        period,
    })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub statement_id: i64,
    pub payment_lines: usize,
    pub already_imported: bool,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.already_imported {
            write!(
                f,
                "statement already imported as #{} (nothing changed)",
                self.statement_id
            )
        } else {
            write!(
                f,
                "imported statement #{}: {} payment lines, {} to {}",
                self.statement_id, self.payment_lines, self.period_start_ms, self.period_end_ms
            )
        }
    }
}

/// Parse and store a statement of `provider` for `jurisdiction`, in one transaction.
pub fn import(
    conn: &mut Connection,
    provider: &str,
    jurisdiction: &Jurisdiction,
    bytes: &[u8],
    now: UnixMillis,
) -> Result<ImportSummary, StatementError> {
    if provider.is_empty()
        || provider.len() > 32
        || !provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(StatementError::Provider(
            provider.chars().take(40).collect(),
        ));
    }
    let sha = hex::encode(outpost_core::log::sha256(bytes));
    let st = parse(bytes)?;
    let tx = conn.transaction()?;
    if let Some((id, lines, a, b)) = tx
        .query_row(
            "SELECT id, lines, period_start_ms, period_end_ms FROM provider_statements WHERE file_sha256 = ?1",
            [&sha],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?
    {
        return Ok(ImportSummary {
            statement_id: id,
            payment_lines: lines as usize,
            already_imported: true,
            period_start_ms: a,
            period_end_ms: b,
        });
    }
    tx.execute(
        "INSERT INTO provider_statements (provider, jurisdiction, merchant_account, batch_number, file_sha256, period_start_ms, period_end_ms, lines, imported_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![provider, jurisdiction.as_str(), st.merchant_account, st.batch_number, sha, st.period.0.0, st.period.1.0, st.lines.len() as i64, now.0],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut ins = tx.prepare(
            "INSERT INTO provider_statement_lines (statement_id, line_no, psp_reference, merchant_reference, record_type, created_ms, currency, gross_minor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for l in &st.lines {
            ins.execute(params![
                id,
                l.line_no as i64,
                l.reference,
                l.merchant_reference,
                l.line_type.as_str(),
                l.created.0,
                l.currency.code(),
                l.gross_minor
            ])?;
        }
    }
    tx.commit()?;
    Ok(ImportSummary {
        statement_id: id,
        payment_lines: st.lines.len(),
        already_imported: false,
        period_start_ms: st.period.0.0,
        period_end_ms: st.period.1.0,
    })
}

impl crate::store::HubState {
    /// [`import`] into the hub's database.
    pub fn import_statement_blocking(
        &self,
        provider: &str,
        jurisdiction: &Jurisdiction,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<ImportSummary, StatementError> {
        import(&mut self.db().conn(), provider, jurisdiction, bytes, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!("../../../fixtures/psp/adyen_settlement_detail_report_batch_412.csv");

    #[test]
    fn parses_the_fixture() {
        let st = parse(FIXTURE.as_bytes()).unwrap();
        assert_eq!(st.merchant_account, "OutpostGB");
        assert_eq!(st.batch_number, 412);
        let deposits: Vec<_> = st
            .lines
            .iter()
            .filter(|l| l.line_type == LineType::Deposit)
            .collect();
        assert!(deposits.len() >= 3);
        assert!(st.lines.iter().any(|l| l.line_type == LineType::Withdrawal));
        assert!(st.lines.iter().any(|l| l.line_type == LineType::Reversal));
        // Exact minor units, no floats.
        assert!(
            st.lines
                .iter()
                .all(|l| l.gross_minor > 0 && l.currency == Currency::GBP)
        );
        assert!(st.period.0 <= st.period.1);
    }

    #[test]
    fn amounts_are_exact() {
        let gbp = Currency::GBP;
        assert_eq!(parse_amount("50.00", gbp), Ok(5000));
        assert_eq!(parse_amount("50.5", gbp), Ok(5050));
        assert_eq!(parse_amount("7", gbp), Ok(700));
        assert_eq!(parse_amount("0.01", gbp), Ok(1));
        for bad in [
            "",
            "1.001",
            "-1.00",
            "1,000.00",
            "1e3",
            ".5",
            "5.",
            "１.00",
            "99999999999999999.00",
        ] {
            assert!(parse_amount(bad, gbp).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            split_csv(r#"a,"b,c","d""e",,"#).unwrap(),
            vec!["a", "b,c", "d\"e", "", ""]
        );
        assert!(split_csv(r#"a,"b"#).is_err());
        assert!(split_csv(r#"a,b"c"#).is_err());
    }

    #[test]
    fn malformed_statements_are_rejected_with_line_numbers() {
        let mut lines: Vec<String> = FIXTURE.lines().map(String::from).collect();
        // Line 3: bad amount; line 5: unknown type; line 6: wrong field count.
        lines[2] = lines[2].replacen(",50.00,", ",50.001,", 1);
        lines[4] = lines[4].replacen(",Settled,", ",Sttled,", 1);
        lines[5].push_str(",extra");
        let e = parse(lines.join("\n").as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, StatementError::Invalid { ref errors, .. } if errors.iter().map(|e| e.line).collect::<Vec<_>>() == vec![3, 5, 6]),
            "{msg}"
        );
        assert!(
            msg.contains("line 3: Gross Credit (GC)") && msg.contains("line 5: Type \"Sttled\""),
            "{msg}"
        );

        let no_col = FIXTURE.replacen("Psp Reference", "PSP Ref", 1);
        assert!(
            parse(no_col.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("line 1: header lacks column(s) Psp Reference")
        );
        assert!(matches!(parse(b""), Err(StatementError::Empty)));
        assert!(matches!(
            parse(b"\xff\xfe"),
            Err(StatementError::NotUtf8(1))
        ));
        let bad_tz = FIXTURE.replacen(",GMT,", ",PST,", 1);
        assert!(
            parse(bad_tz.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("line 2: Creation Date: TimeZone \"PST\"")
        );
    }

    #[test]
    fn import_is_atomic_and_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::ensure(&conn).unwrap();
        let gb = Jurisdiction::new("GB").unwrap();
        let a = import(&mut conn, "adyen", &gb, FIXTURE.as_bytes(), UnixMillis(1)).unwrap();
        assert!(!a.already_imported && a.payment_lines > 0);
        let b = import(&mut conn, "adyen", &gb, FIXTURE.as_bytes(), UnixMillis(2)).unwrap();
        assert!(b.already_imported && b.statement_id == a.statement_id);
        let bad = FIXTURE.replacen(",50.00,", ",fifty,", 1);
        assert!(import(&mut conn, "adyen", &gb, bad.as_bytes(), UnixMillis(3)).is_err());
        assert!(import(&mut conn, "Adyen!", &gb, FIXTURE.as_bytes(), UnixMillis(3)).is_err());
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM provider_statement_lines", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n as usize, a.payment_lines, "rejected files stored nothing");
    }
}
