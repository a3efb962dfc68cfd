//! A results file: the plain CSV an operator or a results provider hands the hub,
//!
//! ```text
//! event_id,home_goals,away_goals
//! E0-20240811-burnley-man-city,0,3
//! ```
//!
//! The whole file is checked before anything is used: any malformed line refuses the file,
//! and every problem is reported with its line number, so a half-applied file cannot happen.

use crate::ids::EventId;
use crate::settle::FinalScore;
use std::collections::BTreeMap;

/// Files larger than this are refused.
pub const FILE_MAX: usize = 8 << 20;
/// Goals above this are a typo, not a football score.
pub const GOALS_MAX: u16 = 255;
const HEADER: &str = "event_id,home_goals,away_goals";
/// Problems reported at most (the rest are counted).
pub(crate) const ERRORS_MAX: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    pub line: usize,
    pub event_id: EventId,
    pub score: FinalScore,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("results file refused: {} problem(s), first at line {}: {}", .errors.len() + .more, .errors[0].line, .errors[0].message)]
pub struct FileError {
    pub errors: Vec<LineError>,
    /// Problems not listed.
    pub more: usize,
}

/// The problems found in a file so far: the first `ERRORS_MAX` are listed, the rest counted.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    errors: Vec<LineError>,
    more: usize,
}

impl Problems {
    pub(crate) fn push(&mut self, line: usize, message: String) {
        if self.errors.len() < ERRORS_MAX {
            self.errors.push(LineError { line, message });
        } else {
            self.more += 1;
        }
    }

    /// `rows` if the file had no problem, else the whole file is refused with every problem
    /// listed in line order.
    pub(crate) fn finish<T>(mut self, rows: T) -> Result<T, FileError> {
        if self.errors.is_empty() {
            return Ok(rows);
        }
        self.errors.sort_by_key(|e| e.line);
        Err(FileError {
            errors: self.errors,
            more: self.more,
        })
    }
}

/// Start reading a CSV file of these modules: refuse it outright if it is larger than
/// `FILE_MAX`, check its header line, and return its numbered data lines (1-based, `\r`
/// trimmed, blank lines skipped) with the problems found so far.
pub(crate) fn open_csv<'a>(
    text: &'a str,
    header: &str,
) -> Result<(Problems, impl Iterator<Item = (usize, &'a str)>), FileError> {
    let mut problems = Problems::default();
    if text.len() > FILE_MAX {
        problems.push(1, format!("file larger than {FILE_MAX} bytes"));
        return Err(problems.finish(()).expect_err("a problem was pushed"));
    }
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    match lines.next() {
        Some((_, h)) if h.trim_start_matches('\u{feff}') == header => {}
        Some((n, h)) => problems.push(
            n,
            format!(
                "expected the header {header:?}, found {:?}",
                h.chars().take(80).collect::<String>()
            ),
        ),
        None => problems.push(1, "empty file".into()),
    }
    Ok((problems, lines.filter(|(_, l)| !l.trim().is_empty())))
}

/// Parse a whole results file (see the module docs).
pub fn parse(text: &str) -> Result<Vec<ResultRow>, FileError> {
    let (mut problems, lines) = open_csv(text, HEADER)?;
    let mut push = |line, message: String| problems.push(line, message);
    let mut rows = Vec::new();
    let mut seen: BTreeMap<EventId, (usize, FinalScore)> = BTreeMap::new();
    for (n, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 3 {
            push(n, format!("expected 3 cells, found {}", cells.len()));
            continue;
        }
        let event_id = match EventId::new(cells[0].trim()) {
            Ok(e) => e,
            Err(e) => {
                push(n, format!("event_id: {e}"));
                continue;
            }
        };
        let goals = |name: &str, c: &str| -> Result<u16, String> {
            let c = c.trim();
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()) || c.len() > 3 {
                return Err(format!("{name} {c:?} is not a whole number of goals"));
            }
            let v: u16 = c
                .parse()
                .map_err(|_| format!("{name} {c:?} is out of range"))?;
            if v > GOALS_MAX {
                return Err(format!("{name} {v} is more than {GOALS_MAX}"));
            }
            Ok(v)
        };
        let score = match (goals("home_goals", cells[1]), goals("away_goals", cells[2])) {
            (Ok(home), Ok(away)) => FinalScore { home, away },
            (Err(e), _) | (_, Err(e)) => {
                push(n, e);
                continue;
            }
        };
        if let Some((first, s)) = seen.get(&event_id) {
            if *s != score {
                push(
                    n,
                    format!("{event_id} is already on line {first} with a different score"),
                );
            }
            continue;
        }
        seen.insert(event_id.clone(), (n, score));
        rows.push(ResultRow {
            line: n,
            event_id,
            score,
        });
    }
    problems.finish(rows)
}

/// Parse a results file of either kind, told apart by its header: a race results file names a
/// `runner` column (`race_results_file`), anything else must be a score file (this module).
/// The file is refused whole, with line numbers, by whichever parser it belongs to.
pub fn parse_any(
    text: &str,
) -> Result<Vec<(EventId, super::event_result::EventResult)>, FileError> {
    use super::event_result::EventResult;
    let is_race = text
        .lines()
        .next()
        .is_some_and(|h| h.split(',').any(|c| c.trim() == "runner"));
    Ok(if is_race {
        super::race_results_file::parse(text)?
            .into_iter()
            .map(|r| (r.event_id, EventResult::Race(r.result)))
            .collect()
    } else {
        parse(text)?
            .into_iter()
            .map(|r| (r.event_id, EventResult::Score(r.score)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_good_file() {
        let rows =
            parse("\u{feff}event_id,home_goals,away_goals\r\ne-1,2,1\r\n\r\ne-2,0,0\ne-1,2,1\n")
                .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[1].line, rows[1].score),
            (4, FinalScore { home: 0, away: 0 })
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "event_id,home_goals,away_goals\ne-1,2,1\ne 2,1,0\ne-3,x,0\ne-4,1\ne-5,1,300\ne-1,0,0\ne-6,-1,0\n";
        let e = parse(text).unwrap_err();
        let lines: Vec<usize> = e.errors.iter().map(|l| l.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{e:?}");
        assert!(e.to_string().contains("line 3"), "{e}");
        assert_eq!(parse("").unwrap_err().errors[0].line, 1);
        assert_eq!(parse("id,h,a\ne-1,1,1").unwrap_err().errors[0].line, 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }
    }
}
