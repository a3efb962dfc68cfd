//! Table test of the race results file format (`docs/settlement.md` §2.2): good files and the
//! canonical race each makes, bad files refused whole with every problem's line number.

use super::*;

const H: &str = "event_id,runner,finish,withdrawn_at,rule4_pence,runners,handicap\n";

fn p(runner: u64, position: u16) -> Placing {
    Placing { runner, position }
}

fn nr(runner: u64, at: &str, pence: u8) -> NonRunner {
    NonRunner {
        runner,
        withdrawn_at: utc_millis(at).unwrap(),
        deduction: Deduction(pence),
    }
}

#[test]
fn good_files() {
    // (body, races as (event, placings, non-runners, runners, handicap))
    type Race = (&'static str, Vec<Placing>, Vec<NonRunner>, u16, bool);
    let cases: Vec<(&str, Vec<Race>)> = vec![
        // Winner only; unplaced runners need not be listed.
        (
            "r-1,7,1,,,9,no\n",
            vec![("r-1", vec![p(7, 1)], vec![], 9, false)],
        ),
        // Order of lines does not matter; blank lines, CRLF, spaces around cells are fine.
        (
            "r-1,3,3,,,8,no\r\n\r\nr-1,1,1,,,8,no\r\n r-1 , 2 , 2 ,,, 8 , no \r\n",
            vec![("r-1", vec![p(1, 1), p(2, 2), p(3, 3)], vec![], 8, false)],
        ),
        // Dead heat for 2nd: both 2, next is 4th.
        (
            "r-1,1,1,,,10,no\nr-1,5,2,,,10,no\nr-1,6,2,,,10,no\nr-1,9,4,,,10,no\n",
            vec![(
                "r-1",
                vec![p(1, 1), p(5, 2), p(6, 2), p(9, 4)],
                vec![],
                10,
                false,
            )],
        ),
        // Dead heat for 1st.
        (
            "r-1,1,1,,,6,no\nr-1,2,1,,,6,no\n",
            vec![("r-1", vec![p(1, 1), p(2, 1)], vec![], 6, false)],
        ),
        // Non-runners with withdrawal times (milliseconds optional) and deductions; `nr`.
        (
            "r-1,4,NR,2024-03-05T14:02:11.250Z,25,7,yes\nr-1,1,1,,,7,yes\nr-1,8,nr,2024-03-05T09:00:00Z,0,7,yes\n",
            vec![(
                "r-1",
                vec![p(1, 1)],
                vec![
                    nr(4, "2024-03-05T14:02:11.250Z", 25),
                    nr(8, "2024-03-05T09:00:00Z", 0),
                ],
                7,
                true,
            )],
        ),
        // Two races, in the order of their first lines; an exact repeat is ignored.
        (
            "r-2,1,1,,,5,no\nr-1,3,1,,,4,no\nr-2,1,1,,,5,no\n",
            vec![
                ("r-2", vec![p(1, 1)], vec![], 5, false),
                ("r-1", vec![p(3, 1)], vec![], 4, false),
            ],
        ),
    ];
    for (body, want) in cases {
        let rows = parse(&format!("{H}{body}")).unwrap_or_else(|e| panic!("{body}: {e:?}"));
        let got: Vec<Race> = rows
            .iter()
            .map(|r| {
                (
                    "",
                    r.result.placings.clone(),
                    r.result.non_runners.clone(),
                    r.result.runners,
                    r.result.handicap,
                )
            })
            .collect();
        let want_ids: Vec<&str> = want.iter().map(|w| w.0).collect();
        let got_ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(got_ids, want_ids, "{body}");
        let want: Vec<Race> = want.into_iter().map(|w| ("", w.1, w.2, w.3, w.4)).collect();
        assert_eq!(got, want, "{body}");
    }
    // A BOM before the header is fine.
    assert_eq!(
        parse(&format!("\u{feff}{H}r-1,1,1,,,3,no\n"))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_files_are_refused_whole_with_line_numbers() {
    // (body after the header, lines reported) — the header is line 1.
    let cases: &[(&str, &[usize])] = &[
        ("r-1,1,1,,,9\n", &[2]),                        // 6 cells
        ("r 1,1,1,,,9,no\n", &[2]),                     // bad event id
        ("r-1,x,1,,,9,no\n", &[2]),                     // runner not a number
        ("r-1,0,1,,,9,no\n", &[2]),                     // runner 0
        ("r-1,1,0,,,9,no\n", &[2]),                     // position 0
        ("r-1,1,W,,,9,no\n", &[2]),                     // neither position nor NR
        ("r-1,1,1,,,0,no\n", &[2]),                     // no runners
        ("r-1,1,1,,,9,maybe\n", &[2]),                  // handicap
        ("r-1,1,1,2024-01-01T00:00:00Z,,9,no\n", &[2]), // time on a placed runner
        ("r-1,1,1,,,9,no\nr-1,2,NR,,5,9,no\n", &[3]),   // NR without time
        (
            "r-1,1,1,,,9,no\nr-1,2,NR,2024-01-01T00:00:00+01:00,5,9,no\n",
            &[3],
        ), // not UTC
        (
            "r-1,1,1,,,9,no\nr-1,2,NR,2024-02-30T10:00:00Z,5,9,no\n",
            &[3],
        ), // no such date
        (
            "r-1,1,1,,,9,no\nr-1,2,NR,2024-01-01T24:00:00Z,5,9,no\n",
            &[3],
        ), // no such hour
        (
            "r-1,1,1,,,9,no\nr-1,2,NR,2024-01-01T10:00:00Z,95,9,no\n",
            &[3],
        ), // over 90p
        (
            "r-1,1,1,,,9,no\nr-1,2,NR,2024-01-01T10:00:00Z,,9,no\n",
            &[3],
        ), // no deduction
        ("r-1,1,1,,,9,no\nr-1,2,2,,,8,no\n", &[3]),     // field differs within a race
        ("r-1,1,1,,,9,no\nr-1,2,2,,,9,yes\n", &[3]),    // handicap differs
        ("r-1,1,1,,,9,no\nr-1,1,2,,,9,no\n", &[3]),     // runner twice, different finish
        ("r-1,2,2,,,9,no\n", &[2]),                     // no winner
        ("r-1,1,1,,,9,no\nr-1,2,3,,,9,no\n", &[2]),     // positions skip 2nd
        ("r-1,1,1,,,9,no\nr-1,2,1,,,9,no\nr-1,3,2,,,9,no\n", &[2]), // after a dead heat for 1st, next is 3rd
        ("r-1,1,1,,,1,no\nr-1,2,2,,,1,no\n", &[2]),                 // more placed than ran
        (
            "r-1,1,1,,,9,no\nr-1,1,NR,2024-01-01T10:00:00Z,5,9,no\n",
            &[3],
        ), // placed and NR
        // Problems in several races are all listed, in line order; good races do not hide them.
        (
            "r-1,1,1,,,9,no\nr-2,x,1,,,9,no\nr-3,2,2,,,9,no\nr-4,1,1,,,4,no\n",
            &[3, 4],
        ),
    ];
    for (body, lines) in cases {
        let e = parse(&format!("{H}{body}")).expect_err(body);
        let got: Vec<usize> = e.errors.iter().map(|l| l.line).collect();
        assert_eq!(&got, lines, "{body}: {e:?}");
    }
    assert_eq!(parse("").unwrap_err().errors[0].line, 1);
    assert_eq!(
        parse("event_id,home_goals,away_goals\ne-1,1,1\n")
            .unwrap_err()
            .errors[0]
            .line,
        1
    );
}

/// The real Hamilton race of 14 Jun 2017 (Betfair WIN market 1.132153978, the settlement
/// fixture of `core/tests/settlement_betfair_rule4.rs`) as a results file: the winner and the
/// two non-runners with their withdrawal times from the Betfair file and their Rule 4(c)
/// deductions (Hellavashock at 14.005 → 5p; Hymn For The Dudes at 17/1 → none), 12 ran, a
/// handicap.
#[test]
fn hamilton_fixture() {
    let text = include_str!("../../../../fixtures/results/hamilton-2017-06-14-1m-hcap.csv");
    let rows = parse(text).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0].result;
    assert_eq!(rows[0].event_id.as_str(), "1.132153978");
    assert_eq!(r.placings, vec![p(12115648, 1)]);
    assert_eq!(
        r.non_runners,
        vec![
            nr(9606433, "2017-06-14T09:23:43Z", 0),
            nr(11198538, "2017-06-14T07:00:50Z", 5),
        ]
    );
    assert_eq!((r.runners, r.handicap), (12, true));
    // 2017-06-14T07:00:50Z = 1497423650 s.
    assert_eq!(r.non_runners[1].withdrawn_at, UnixMillis(1_497_423_650_000));
    // A bet struck before the first withdrawal takes 5p; after both, nothing.
    assert_eq!(r.deduction_for(UnixMillis(1_497_423_649_999)), Deduction(5));
    assert_eq!(r.deduction_for(UnixMillis(1_497_432_223_000)), Deduction(0));
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,300}") {
        let _ = parse(&s);
    }

    #[test]
    fn never_panics_on_lines_of_the_format(
        rows in proptest::collection::vec(
            ("r-[12]", 0u64..5, "(1|2|3|NR|x|0)", "(|2024-01-01T10:00:00Z|bad)", "(|0|5|95)", 0u16..5, "(yes|no)"),
            0..8,
        )
    ) {
        let body: String = rows
            .iter()
            .map(|(e, r, f, w, d, n, h)| format!("{e},{r},{f},{w},{d},{n},{h}\n"))
            .collect();
        let _ = parse(&format!("{H}{body}"));
    }
}
