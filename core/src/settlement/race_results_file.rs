//! A race results file: the CSV a racing results provider or an operator hands the hub
//! (`docs/settlement.md` §2.2), one line per runner that matters to settlement, several races
//! per file:
//!
//! ```text
//! event_id,runner,finish,withdrawn_at,rule4_pence,runners,handicap
//! 1.132153978,12115648,1,,,12,yes
//! 1.132153978,11198538,NR,2017-06-14T07:00:50Z,5,12,yes
//! 1.132153978,9606433,NR,2017-06-14T09:23:43Z,0,12,yes
//! ```
//!
//! - `finish`: the finishing position (runners sharing a position dead-heated: two tied for
//!   2nd are both `2`, the next is `4`), or `NR` for a non-runner. Runners that ran unplaced
//!   need not be listed.
//! - `withdrawn_at` (UTC, `YYYY-MM-DDTHH:MM:SS[.mmm]Z`) and `rule4_pence` (the Rule 4(c)
//!   deduction, 0–90 pence in the pound) are given for a non-runner and empty otherwise:
//!   bets struck before `withdrawn_at` take the deduction.
//! - `runners` (came under starter's orders) and `handicap` (`yes`/`no`) describe the race and
//!   are the same on every line of it.
//!
//! The whole file is checked before anything is used: any malformed line (or a race that is
//! not a possible result, e.g. no winner or positions that skip) refuses the file, and every
//! problem is reported with its line number, so a half-applied file cannot happen. A line
//! repeated exactly is harmless and ignored, as in the score file.

use super::race_result::{NonRunner, Placing, RUNNERS_MAX, RaceResult};
use super::results_file::{FileError, open_csv};
use super::rule4::Deduction;
use crate::ids::EventId;
use crate::time::{CivilDate, UnixMillis};
use std::collections::BTreeMap;

pub const HEADER: &str = "event_id,runner,finish,withdrawn_at,rule4_pence,runners,handicap";

/// One race of the file, in the order of its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceRow {
    /// The race's first line.
    pub line: usize,
    pub event_id: EventId,
    pub result: RaceResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Position(u16),
    NonRunner(UnixMillis, Deduction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    runner: u64,
    finish: Finish,
    runners: u16,
    handicap: bool,
}

/// A race being collected: its lines by runner, and its field.
struct Race {
    first_line: usize,
    /// (runners, handicap, line stating them first).
    field: Option<(u16, bool, usize)>,
    lines: BTreeMap<u64, (usize, Line)>,
    /// A line of this race was bad: the race itself is not checked (its errors are listed).
    bad: bool,
}

/// Parse a whole race results file (see the module docs).
pub fn parse(text: &str) -> Result<Vec<RaceRow>, FileError> {
    let (mut problems, lines) = open_csv(text, HEADER)?;
    let mut push = |line, message: String| problems.push(line, message);
    let mut order: Vec<EventId> = Vec::new();
    let mut races: BTreeMap<EventId, Race> = BTreeMap::new();
    for (n, text) in lines {
        let cells: Vec<&str> = text.split(',').map(str::trim).collect();
        if cells.len() != 7 {
            push(n, format!("expected 7 cells, found {}", cells.len()));
            continue;
        }
        let event_id = match EventId::new(cells[0]) {
            Ok(e) => e,
            Err(e) => {
                push(n, format!("event_id: {e}"));
                continue;
            }
        };
        let line = parse_line(&cells);
        let race = races.entry(event_id.clone()).or_insert_with(|| {
            order.push(event_id.clone());
            Race {
                first_line: n,
                field: None,
                lines: BTreeMap::new(),
                bad: false,
            }
        });
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                push(n, e);
                race.bad = true;
                continue;
            }
        };
        match race.field {
            None => race.field = Some((line.runners, line.handicap, n)),
            Some((runners, handicap, first))
                if (runners, handicap) != (line.runners, line.handicap) =>
            {
                push(
                    n,
                    format!(
                        "{event_id}: runners/handicap {},{} differ from line {first} ({runners},{})",
                        line.runners,
                        yes_no(line.handicap),
                        yes_no(handicap)
                    ),
                );
                race.bad = true;
                continue;
            }
            Some(_) => {}
        }
        match race.lines.get(&line.runner) {
            Some((_, l)) if *l == line => {}
            Some((first, _)) => {
                push(
                    n,
                    format!(
                        "{event_id}: runner {} is already on line {first} with a different finish",
                        line.runner
                    ),
                );
                race.bad = true;
            }
            None => {
                race.lines.insert(line.runner, (n, line));
            }
        }
    }
    let mut rows = Vec::with_capacity(order.len());
    for event_id in order {
        let race = races
            .remove(&event_id)
            .expect("every listed race is collected");
        let Some((runners, handicap, _)) = race.field.filter(|_| !race.bad) else {
            continue;
        };
        let mut placings = Vec::new();
        let mut non_runners = Vec::new();
        for (_, l) in race.lines.values() {
            match l.finish {
                Finish::Position(position) => placings.push(Placing {
                    runner: l.runner,
                    position,
                }),
                Finish::NonRunner(withdrawn_at, deduction) => non_runners.push(NonRunner {
                    runner: l.runner,
                    withdrawn_at,
                    deduction,
                }),
            }
        }
        match RaceResult::new(placings, non_runners, runners, handicap) {
            Ok(result) => rows.push(RaceRow {
                line: race.first_line,
                event_id,
                result,
            }),
            Err(e) => {
                let last = race.lines.values().map(|(n, _)| *n).max().unwrap_or(0);
                push(
                    race.first_line,
                    format!(
                        "{event_id} (lines {}–{last}) is not a possible race result: {e}",
                        race.first_line
                    ),
                );
            }
        }
    }
    problems.finish(rows)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn number<T: std::str::FromStr>(name: &str, c: &str, digits: usize) -> Result<T, String> {
    if c.is_empty() || c.len() > digits || !c.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} {c:?} is not a whole number"));
    }
    c.parse()
        .map_err(|_| format!("{name} {c:?} is out of range"))
}

fn parse_line(c: &[&str]) -> Result<Line, String> {
    let runner: u64 = number("runner", c[1], 19)?;
    if runner == 0 {
        return Err("runner 0 is not a runner id".into());
    }
    let runners: u16 = number("runners", c[5], 3)?;
    if runners == 0 || usize::from(runners) > RUNNERS_MAX {
        return Err(format!("runners {runners} is not 1 to {RUNNERS_MAX}"));
    }
    let handicap = match c[6] {
        "yes" => true,
        "no" => false,
        h => return Err(format!("handicap {h:?} is not yes or no")),
    };
    let finish = if c[2].eq_ignore_ascii_case("NR") {
        let withdrawn_at = utc_millis(c[3]).map_err(|e| format!("withdrawn_at: {e}"))?;
        let pence: u8 = number("rule4_pence", c[4], 2)?;
        if pence > 90 {
            return Err(format!("rule4_pence {pence} is over the 90p of the scale"));
        }
        Finish::NonRunner(withdrawn_at, Deduction(pence))
    } else {
        let position: u16 = number("finish", c[2], 2)
            .map_err(|_| format!("finish {:?} is neither a position nor NR", c[2]))?;
        if position == 0 || usize::from(position) > RUNNERS_MAX {
            return Err(format!("finish {position} is not a position"));
        }
        if !c[3].is_empty() || !c[4].is_empty() {
            return Err("withdrawn_at and rule4_pence are for non-runners (finish NR) only".into());
        }
        Finish::Position(position)
    };
    Ok(Line {
        runner,
        finish,
        runners,
        handicap,
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` → Unix milliseconds (UTC only: a results file from another
/// zone must say so by converting, not by an offset we could misread).
pub fn utc_millis(s: &str) -> Result<UnixMillis, String> {
    let bad = || format!("{s:?} is not a UTC time as YYYY-MM-DDTHH:MM:SS[.mmm]Z");
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let (hms, ms) = match time.split_once('.') {
        Some((hms, ms)) if ms.len() == 3 => (hms, ms),
        Some(_) => return Err(bad()),
        None => (time, "000"),
    };
    let day = CivilDate::parse(date).map_err(|_| bad())?;
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let f = |p: &str, max: i64| -> Result<i64, String> {
        let v: i64 = number("time", p, 3).map_err(|_| bad())?;
        if v > max { Err(bad()) } else { Ok(v) }
    };
    let (h, m, sec, ms) = (
        f(parts[0], 23)?,
        f(parts[1], 59)?,
        f(parts[2], 59)?,
        f(ms, 999)?,
    );
    Ok(UnixMillis(
        day.start_millis().0 + ((h * 60 + m) * 60 + sec) * 1000 + ms,
    ))
}

#[cfg(test)]
mod tests;
