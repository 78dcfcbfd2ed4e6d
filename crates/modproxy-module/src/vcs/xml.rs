//! `encoding/xml`'s `RawToken` in non-strict mode, as
//! `parseMetaGoImports` uses it.

/// The tokens `parseMetaGoImports` looks at; names are local names (after
/// any `space:` prefix).
pub(super) enum Token {
    Start {
        name: Vec<u8>,
        attrs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    End(Vec<u8>),
    Other,
}

/// A port of `xml.Decoder.rawToken` with `Strict = false`, no `AutoClose`,
/// no entity map and a `CharsetReader` for UTF-8 and ASCII only. A syntax
/// error ends the tokens, as it ends Go's loop.
pub(super) struct Tokenizer<'a> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
    /// The end half of a self-closing `<x/>`.
    pub(super) pending_end: Option<Vec<u8>>,
}

/// Go's `isNameByte`.
pub(super) fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'.' | b'-')
}

/// Go's `isName`. Non-ASCII characters are accepted wherever Go's XML
/// name tables might allow them (an approximation: no HTML head uses them).
pub(super) fn is_name(s: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(s) else {
        return false;
    };
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let first_ok = |c: char| !c.is_ascii() || c.is_ascii_alphabetic() || c == '_' || c == ':';
    first_ok(first) && chars.all(|c| first_ok(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Go's `isInCharacterRange`.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// `ToLower(s) == want` for Go's `unicode.ToLower`, where only `İ` and the
/// Kelvin sign lower to ASCII from outside it.
pub(super) fn go_lower_eq(s: &[u8], want: &str) -> bool {
    let lowered: String = String::from_utf8_lossy(s)
        .chars()
        .map(|c| match c {
            '\u{130}' => 'i',
            '\u{212A}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    lowered == want
}

/// Go's `procInst`: the value of `param="…"` in an `<?xml … ?>`.
pub(super) fn proc_inst<'a>(param: &str, s: &'a [u8]) -> &'a [u8] {
    let param = format!("{param}=");
    let param = param.as_bytes();
    let mut i = 0;
    let mut sep = 0;
    while i < s.len() {
        let sub = &s[i..];
        let Some(k) = sub.windows(param.len()).position(|w| w == param) else {
            return b"";
        };
        if param.len() + k >= sub.len() {
            return b"";
        }
        i += param.len() + k + 1;
        let c = sub[param.len() + k];
        if c == b'\'' || c == b'"' {
            sep = c;
            break;
        }
    }
    if sep == 0 {
        return b"";
    }
    match s[i..].iter().position(|&c| c == sep) {
        Some(j) => &s[i..i + j],
        None => b"",
    }
}

impl Tokenizer<'_> {
    fn getc(&mut self) -> Option<u8> {
        let b = *self.s.get(self.i)?;
        self.i += 1;
        Some(b)
    }

    fn ungetc(&mut self) {
        self.i -= 1;
    }

    /// Go's `space`.
    fn space(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\r' | b'\n' | b'\t')) {
            self.i += 1;
        }
    }

    /// Go's `readName`, appending to `out`: `Some(false)` when no name
    /// starts here, `None` at the end of input (an error).
    fn read_name(&mut self, out: &mut Vec<u8>) -> Option<bool> {
        let b = self.getc()?;
        if b < 0x80 && !is_name_byte(b) {
            self.ungetc();
            return Some(false);
        }
        out.push(b);
        loop {
            let b = self.getc()?;
            if b < 0x80 && !is_name_byte(b) {
                self.ungetc();
                return Some(true);
            }
            out.push(b);
        }
    }

    /// Go's `name`; `None` for any failure (all of them end the tokens).
    fn name(&mut self) -> Option<Vec<u8>> {
        let mut name = Vec::new();
        if !self.read_name(&mut name)? || !is_name(&name) {
            return None;
        }
        Some(name)
    }

    /// Go's `nsname`, keeping the local part.
    fn nsname(&mut self) -> Option<Vec<u8>> {
        let name = self.name()?;
        let colons: Vec<usize> = (0..name.len()).filter(|&i| name[i] == b':').collect();
        match colons[..] {
            [] => Some(name),
            [c] if c > 0 && c + 1 < name.len() => Some(name[c + 1..].to_vec()),
            [_] => Some(name),
            _ => None,
        }
    }

    /// The next token, or `None` at the end of input or a syntax error.
    pub(super) fn next_token(&mut self) -> Option<Token> {
        if let Some(name) = self.pending_end.take() {
            return Some(Token::End(name));
        }
        if self.getc()? != b'<' {
            self.ungetc();
            self.text(None, false)?;
            return Some(Token::Other);
        }
        match self.getc()? {
            b'/' => {
                let name = self.nsname()?;
                self.space();
                (self.getc()? == b'>').then_some(Token::End(name))
            }
            b'?' => self.proc_inst(),
            b'!' => self.bang(),
            _ => {
                self.ungetc();
                self.element()
            }
        }
    }

    /// `<?target …?>`; an `<?xml?>` may end the tokens.
    fn proc_inst(&mut self) -> Option<Token> {
        let target = self.name()?;
        self.space();
        let start = self.i;
        let mut b0 = 0;
        loop {
            let b = self.getc()?;
            if b0 == b'?' && b == b'>' {
                break;
            }
            b0 = b;
        }
        let data = &self.s[start..self.i - 2];
        if target == b"xml" {
            let ver = proc_inst("version", data);
            if !ver.is_empty() && ver != b"1.0" {
                return None;
            }
            let enc = proc_inst("encoding", data);
            if !enc.is_empty()
                && !enc.eq_ignore_ascii_case(b"utf-8")
                && !go_lower_eq(enc, "utf-8")
                && !go_lower_eq(enc, "ascii")
            {
                return None;
            }
        }
        Some(Token::Other)
    }

    /// After `<!`: a comment, a CDATA section or a directive.
    fn bang(&mut self) -> Option<Token> {
        match self.getc()? {
            b'-' => {
                if self.getc()? != b'-' {
                    return None;
                }
                let (mut b0, mut b1) = (0, 0);
                loop {
                    let b = self.getc()?;
                    if b0 == b'-' && b1 == b'-' {
                        return (b == b'>').then_some(Token::Other);
                    }
                    (b0, b1) = (b1, b);
                }
            }
            b'[' => {
                for &want in b"CDATA[" {
                    if self.getc()? != want {
                        return None;
                    }
                }
                self.text(None, true)?;
                Some(Token::Other)
            }
            _ => self.directive(),
        }
    }

    /// `<!DOCTYPE …>` and the like: up to the `>` that closes it, with
    /// quotes, nested `<…>` and `<!--…-->` comments skipped.
    fn directive(&mut self) -> Option<Token> {
        let mut inquote = 0u8;
        let mut depth = 0i64;
        loop {
            let mut b = self.getc()?;
            if inquote == 0 && b == b'>' && depth == 0 {
                return Some(Token::Other);
            }
            'handle: loop {
                match b {
                    _ if b == inquote => inquote = 0,
                    _ if inquote != 0 => {}
                    b'\'' | b'"' => inquote = b,
                    b'>' => depth -= 1,
                    b'<' => {
                        for &want in b"!--" {
                            let c = self.getc()?;
                            if c != want {
                                depth += 1;
                                b = c;
                                continue 'handle;
                            }
                        }
                        let (mut b0, mut b1) = (0, 0);
                        loop {
                            let c = self.getc()?;
                            if b0 == b'-' && b1 == b'-' && c == b'>' {
                                break;
                            }
                            (b0, b1) = (b1, c);
                        }
                    }
                    _ => {}
                }
                break;
            }
        }
    }

    /// A start element `<name attr=value …>` (or `/>`).
    fn element(&mut self) -> Option<Token> {
        let name = self.nsname()?;
        let mut attrs = Vec::new();
        loop {
            self.space();
            match self.getc()? {
                b'/' => {
                    if self.getc()? != b'>' {
                        return None;
                    }
                    self.pending_end = Some(name.clone());
                    break;
                }
                b'>' => break,
                _ => self.ungetc(),
            }
            let attr = self.nsname()?;
            self.space();
            let value = if self.getc()? != b'=' {
                // Non-strict: an attribute without a value is its own value.
                self.ungetc();
                attr.clone()
            } else {
                self.space();
                self.attr_value()?
            };
            attrs.push((attr, value));
        }
        Some(Token::Start { name, attrs })
    }

    /// Go's `attrval`: quoted, or (non-strict) a bare `[A-Za-z0-9_:-]*`.
    fn attr_value(&mut self) -> Option<Vec<u8>> {
        let b = self.getc()?;
        if b == b'"' || b == b'\'' {
            return self.text(Some(b), false);
        }
        self.ungetc();
        let start = self.i;
        loop {
            let b = self.getc()?;
            if !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-')) {
                self.ungetc();
                return Some(self.s[start..self.i].to_vec());
            }
        }
    }

    /// Go's `text`: character data up to `<`, a quoted attribute value up
    /// to `quote`, or a CDATA section up to `]]>`; entities decoded (only
    /// XML's five and numeric ones), `\r\n` and `\r` turned into `\n`, and
    /// the result checked to be UTF-8 of XML characters.
    fn text(&mut self, quote: Option<u8>, cdata: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let (mut b0, mut b1) = (0u8, 0u8);
        let mut trunc = 0;
        loop {
            let Some(b) = self.getc() else {
                if cdata {
                    return None;
                }
                break;
            };
            if quote.is_none() && b0 == b']' && b1 == b']' && b == b'>' {
                if cdata {
                    trunc = 2;
                    break;
                }
                return None;
            }
            if b == b'<' && !cdata {
                if quote.is_some() {
                    return None;
                }
                self.ungetc();
                break;
            }
            if quote == Some(b) {
                break;
            }
            if b == b'&' && !cdata {
                self.entity(&mut out)?;
                (b0, b1) = (0, 0);
                continue;
            }
            if b == b'\r' {
                out.push(b'\n');
            } else if !(b1 == b'\r' && b == b'\n') {
                out.push(b);
            }
            (b0, b1) = (b1, b);
        }
        out.truncate(out.len() - trunc);
        let s = std::str::from_utf8(&out).ok()?;
        s.chars().all(is_xml_char).then_some(out)
    }

    /// After `&` in text: a known entity is replaced, anything else kept
    /// as written (non-strict mode).
    fn entity(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let before = out.len();
        out.push(b'&');
        let mut b = self.getc()?;
        let mut text: Option<char> = None;
        if b == b'#' {
            out.push(b);
            b = self.getc()?;
            let mut base = 10;
            if b == b'x' {
                base = 16;
                out.push(b);
                b = self.getc()?;
            }
            let start = out.len();
            while char::from(b).is_digit(base) {
                out.push(b);
                b = self.getc()?;
            }
            if b != b';' {
                self.ungetc();
            } else {
                let digits = std::str::from_utf8(&out[start..]).unwrap_or("");
                if let Ok(n) = u64::from_str_radix(digits, base) {
                    if n <= 0x10FFFF {
                        // Go's string(rune(n)): surrogates become U+FFFD.
                        text = Some(char::from_u32(n as u32).unwrap_or('\u{FFFD}'));
                    }
                }
                out.push(b';');
            }
        } else {
            self.ungetc();
            self.read_name(out)?;
            if self.getc()? != b';' {
                self.ungetc();
            } else {
                let name = &out[before + 1..];
                if is_name(name) {
                    text = match name {
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"amp" => Some('&'),
                        b"apos" => Some('\''),
                        b"quot" => Some('"'),
                        _ => None,
                    };
                }
                out.push(b';');
            }
        }
        if let Some(c) = text {
            out.truncate(before);
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        Some(())
    }
}
