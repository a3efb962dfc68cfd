//! Code 128 (ISO/IEC 15417) for ticket ids: code set C packs two digits per symbol, so an
//! 18-digit ticket is Start C + 9 data symbols + checksum + Stop. Used to draw the barcode on
//! screen (SVG) and in tests to rasterise the printed barcode for an independent decoder.
//! The printer draws its own bars from the ESC/POS `GS k` command (see `escpos.rs`).

/// Bar/space widths (in modules) of symbol values 0–106; each symbol is 11 modules, Stop 13.
const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];
const START_C: u8 = 105;
const STOP: u8 = 106;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code set C needs an even number of digits")]
pub struct NotDigitPairs;

/// Symbol values for `digits` in code set C, with start, checksum and stop.
pub fn encode_c(digits: &str) -> Result<Vec<u8>, NotDigitPairs> {
    let b = digits.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) || !b.iter().all(u8::is_ascii_digit) {
        return Err(NotDigitPairs);
    }
    let mut v = vec![START_C];
    v.extend(b.chunks(2).map(|p| (p[0] - b'0') * 10 + (p[1] - b'0')));
    let sum: u32 = START_C as u32
        + v[1..]
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as u32 + 1) * x as u32)
            .sum::<u32>();
    v.push((sum % 103) as u8);
    v.push(STOP);
    Ok(v)
}

/// Module pattern: `true` is a bar. Includes a 10-module quiet zone on each side.
pub fn modules(symbols: &[u8]) -> Vec<bool> {
    let mut out = vec![false; 10];
    for &s in symbols {
        for (i, w) in PATTERNS[s as usize].bytes().enumerate() {
            out.extend(std::iter::repeat_n(i % 2 == 0, (w - b'0') as usize));
        }
    }
    out.extend([false; 10]);
    out
}

/// An SVG of the barcode (for the screen slip), `module_px` wide per module.
pub fn svg(digits: &str, module_px: u32, height_px: u32) -> Result<String, NotDigitPairs> {
    let m = modules(&encode_c(digits)?);
    let mut rects = String::new();
    let mut x = 0;
    while x < m.len() {
        if m[x] {
            let start = x;
            while x < m.len() && m[x] {
                x += 1;
            }
            rects.push_str(&format!(
                "<rect x=\"{}\" y=\"0\" width=\"{}\" height=\"{height_px}\"/>",
                start as u32 * module_px,
                (x - start) as u32 * module_px
            ));
        } else {
            x += 1;
        }
    }
    let w = m.len() as u32 * module_px;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Code 128 barcode {digits}\" width=\"{w}\" height=\"{height_px}\" viewBox=\"0 0 {w} {height_px}\"><rect width=\"{w}\" height=\"{height_px}\" fill=\"#fff\"/><g fill=\"#000\">{rects}</g></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_is_eleven_modules() {
        for (i, p) in PATTERNS.iter().enumerate() {
            let n: u32 = p.bytes().map(|b| (b - b'0') as u32).sum();
            assert_eq!(n, if i == 106 { 13 } else { 11 }, "symbol {i}");
        }
    }

    #[test]
    fn checksum_example() {
        // Worked example: "1234" in set C → 105, 12, 34, checksum (105 + 12 + 68) % 103 = 82.
        assert_eq!(encode_c("1234").unwrap(), vec![105, 12, 34, 82, 106]);
        assert!(encode_c("123").is_err());
        assert!(encode_c("12a4").is_err());
    }
}
