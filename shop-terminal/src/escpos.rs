//! A minimal ESC/POS command writer: the subset every Epson-compatible receipt printer
//! understands (initialise, alignment, emphasis, character size, feed, Code 128 barcode,
//! partial cut). Text is restricted to printable ASCII so no code page selection is needed;
//! anything else is replaced before it reaches the printer.

const ESC: u8 = 0x1b;
const GS: u8 = 0x1d;
const LF: u8 = 0x0a;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left = 0,
    Center = 1,
    Right = 2,
}

#[derive(Default)]
pub struct EscPos {
    buf: Vec<u8>,
}

/// Printable ASCII only; common non-ASCII characters get readable replacements.
pub fn ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' '..='~' => out.push(c),
            '£' => out.push_str("GBP "),
            '€' => out.push_str("EUR "),
            '–' | '—' => out.push('-'),
            '≥' => out.push_str(">="),
            'é' | 'è' | 'ê' => out.push('e'),
            'ø' | 'ö' | 'ó' => out.push('o'),
            'æ' | 'ä' | 'á' | 'å' => out.push('a'),
            'ü' | 'ú' => out.push('u'),
            _ => out.push('?'),
        }
    }
    out
}

impl EscPos {
    pub fn new() -> EscPos {
        EscPos {
            buf: vec![ESC, b'@'],
        }
    }
    pub fn align(&mut self, a: Align) -> &mut Self {
        self.buf.extend([ESC, b'a', a as u8]);
        self
    }
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.buf.extend([ESC, b'E', on as u8]);
        self
    }
    /// Character size multiplier (1–8) in each direction.
    pub fn size(&mut self, w: u8, h: u8) -> &mut Self {
        let (w, h) = (w.clamp(1, 8) - 1, h.clamp(1, 8) - 1);
        self.buf.extend([GS, b'!', (w << 4) | h]);
        self
    }
    pub fn line(&mut self, text: &str) -> &mut Self {
        self.buf.extend(ascii(text).bytes());
        self.buf.push(LF);
        self
    }
    pub fn feed(&mut self, lines: u8) -> &mut Self {
        self.buf.extend([ESC, b'd', lines]);
        self
    }
    /// Code 128, code set C (`{C`), two digits per data byte; human-readable text below.
    pub fn code128_digits(&mut self, digits: &str) -> &mut Self {
        debug_assert!(digits.len().is_multiple_of(2) && digits.bytes().all(|b| b.is_ascii_digit()));
        let pairs: Vec<u8> = digits
            .as_bytes()
            .chunks(2)
            .map(|p| (p[0] - b'0') * 10 + (p[1] - b'0'))
            .collect();
        self.buf.extend([GS, b'h', 80]); // height in dots
        self.buf.extend([GS, b'w', 2]); // module width
        self.buf.extend([GS, b'H', 2]); // HRI below
        self.buf
            .extend([GS, b'k', 73, (pairs.len() + 2) as u8, b'{', b'C']);
        self.buf.extend(pairs);
        self.buf.push(LF);
        self
    }
    /// Feed and partial cut.
    pub fn cut(&mut self) -> &mut Self {
        self.buf.extend([GS, b'V', 66, 3]);
        self
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}
