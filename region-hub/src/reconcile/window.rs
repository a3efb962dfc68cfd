//! The hour a run is for and the window it checks: `[hour - 1 h, hour + 1 h)`, i.e. the hour
//! itself and the previous hour again, UTC, by record timestamp.

use super::ReconcileError;
use outpost_core::time::{CivilDate, UnixMillis};
use std::fmt;

pub const HOUR_MS: i64 = 3_600_000;

/// A UTC clock hour, written `YYYY-MM-DDTHH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour {
    start_ms: i64,
}

impl Hour {
    pub fn parse(s: &str) -> Result<Hour, ReconcileError> {
        let bad = || ReconcileError::BadHour(s.chars().take(32).collect());
        let (date, hh) = s.split_once('T').ok_or_else(bad)?;
        let date = CivilDate::parse(date).map_err(|_| bad())?;
        if hh.len() != 2 || !hh.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let h: i64 = hh.parse().map_err(|_| bad())?;
        if h > 23 {
            return Err(bad());
        }
        Ok(Hour {
            start_ms: date.start_millis().0 + h * HOUR_MS,
        })
    }
    /// The hour containing `t`.
    pub fn containing(t: UnixMillis) -> Hour {
        Hour {
            start_ms: t.0.div_euclid(HOUR_MS) * HOUR_MS,
        }
    }
    pub fn start(&self) -> UnixMillis {
        UnixMillis(self.start_ms)
    }
    pub fn end(&self) -> UnixMillis {
        UnixMillis(self.start_ms + HOUR_MS)
    }
    pub fn previous(&self) -> Hour {
        Hour {
            start_ms: self.start_ms - HOUR_MS,
        }
    }
    /// The checked window: the previous hour and this one.
    pub fn window(&self) -> Window {
        Window {
            start_ms: self.start_ms - HOUR_MS,
            end_ms: self.start_ms + HOUR_MS,
        }
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = UnixMillis(self.start_ms).date();
        let h = self.start_ms.rem_euclid(86_400_000) / HOUR_MS;
        write!(f, "{d}T{h:02}")
    }
}

/// Half-open interval of record timestamps, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    pub fn contains(&self, ts_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&ts_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hours() {
        let h = Hour::parse("2026-11-21T13").unwrap();
        assert_eq!(h.to_string(), "2026-11-21T13");
        assert_eq!(h.previous().to_string(), "2026-11-21T12");
        assert_eq!(
            Hour::parse("2026-11-21T00").unwrap().previous().to_string(),
            "2026-11-20T23"
        );
        let w = h.window();
        assert_eq!(w.end_ms - w.start_ms, 2 * HOUR_MS);
        assert!(w.contains(h.start().0 - 1) && !w.contains(h.end().0));
        assert_eq!(Hour::containing(UnixMillis(h.start().0 + 59 * 60_000)), h);
        for bad in [
            "2026-11-21",
            "2026-11-21T24",
            "2026-11-21T1",
            "2026-02-30T10",
            "x",
            "2026-11-21T13:00",
        ] {
            assert!(Hour::parse(bad).is_err(), "{bad}");
        }
    }
}
