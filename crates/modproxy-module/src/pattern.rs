//! Module path patterns as in `GOPRIVATE`, `GONOPROXY` and `GONOSUMDB`:
//! comma-separated `path.Match` globs, each matched against the leading
//! path elements of a module path (`module.MatchPrefixPatterns`).

use std::fmt;

use crate::goquote::quote;

/// A malformed pattern list.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Go's `path.ErrBadPattern` for one glob (Go silently ignores such
    /// globs, which would make a private module public: we refuse them).
    #[error(
        "invalid module path pattern {}: syntax error in pattern",
        quote(pattern)
    )]
    BadPattern { pattern: String },
    /// Go keeps white space as part of the glob, so the glob could never
    /// match a module path; most likely a typo such as `a.com, b.com`.
    #[error("invalid module path pattern {}: contains white space", quote(pattern))]
    WhiteSpace { pattern: String },
}

/// A parsed, validated glob list such as `*.corp.example.com,rsc.io/private`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathPatterns {
    /// Non-empty globs with any trailing `/` removed.
    globs: Vec<String>,
}

impl PathPatterns {
    /// Parses a comma-separated glob list. Empty elements are skipped and a
    /// trailing `/` on a glob is ignored, like Go; malformed globs and globs
    /// containing white space are errors.
    pub fn parse(s: &str) -> Result<PathPatterns, PatternError> {
        let mut globs = Vec::new();
        for glob in s.split(',') {
            let glob = glob.strip_suffix('/').unwrap_or(glob);
            if glob.is_empty() {
                continue;
            }
            if glob.chars().any(char::is_whitespace) {
                return Err(PatternError::WhiteSpace {
                    pattern: glob.to_owned(),
                });
            }
            if !is_valid_glob(glob.as_bytes()) {
                return Err(PatternError::BadPattern {
                    pattern: glob.to_owned(),
                });
            }
            globs.push(glob.to_owned());
        }
        Ok(PathPatterns { globs })
    }

    /// Reports whether some path prefix of `module_path` (ending at an
    /// element boundary) matches one of the globs.
    pub fn matches(&self, module_path: &str) -> bool {
        self.globs
            .iter()
            .any(|glob| matches_prefix(glob, module_path))
    }

    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// The globs, without empty elements or trailing slashes.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }
}

impl fmt::Display for PathPatterns {
    /// Prints the list back in `GOPRIVATE` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.globs.join(","))
    }
}

/// One glob of `module.MatchPrefixPatterns`: a glob with N slashes is
/// matched against the first N+1 path elements of `target`.
fn matches_prefix(glob: &str, target: &str) -> bool {
    let mut n = glob.matches('/').count();
    let mut prefix = target;
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if n == 0 {
                prefix = &target[..i];
                break;
            }
            n -= 1;
        }
    }
    if n > 0 {
        return false;
    }
    path_match(glob.as_bytes(), prefix.as_bytes()).unwrap_or(false)
}

/// Reports whether `pattern` is a syntactically valid `path.Match` glob.
fn is_valid_glob(mut pattern: &[u8]) -> bool {
    while !pattern.is_empty() {
        let (_, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if match_chunk(chunk, b"").is_err() {
            return false;
        }
    }
    true
}

/// Go's `path.Match`: `*` and `?` never match `/`; `[...]`, `[^...]`
/// classes with ranges; `\` escapes. `Err` means a malformed pattern.
fn path_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing * matches rest of string unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        let m = match_chunk(chunk, name);
        if let Ok(Some(t)) = m {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        m?;
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    // If this is the last chunk, it must exhaust the name.
                    if !pattern.is_empty() || t.is_empty() {
                        name = t;
                        continue 'pattern;
                    }
                }
                i += 1;
            }
        }
        // Check that the remainder of the pattern is well-formed.
        return if is_valid_glob(pattern) {
            Ok(false)
        } else {
            Err(())
        };
    }
    Ok(name.is_empty())
}

/// Splits off the next chunk: optional stars, then non-star text.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // A trailing lone backslash is reported by match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, b"")
}

/// Go's `utf8.DecodeRune`: (rune, size); invalid input gives U+FFFD, 1.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    for n in 1..=s.len().min(4) {
        if let Ok(st) = std::str::from_utf8(&s[..n]) {
            return (st.chars().next().map_or(0xfffd, u32::from), n);
        }
    }
    (0xfffd, usize::from(!s.is_empty()))
}

/// Matches a star-free chunk against the start of `s`; returns the rest of
/// `s` on a match, `None` on a mismatch, `Err` for a malformed chunk (the
/// whole chunk is checked even after a mismatch).
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, ()> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        failed = failed || s.is_empty();
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rr, n) = decode_rune(s);
                    r = rr;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    matched = matched || (lo <= r && r <= hi);
                    nrange += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(());
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// Go's `getEsc`: a possibly escaped character of a character class.
fn get_esc(mut chunk: &[u8]) -> Result<(u32, &[u8]), ()> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(()),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(());
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == 0xfffd && n == 1 {
        return Err(());
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(());
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests;
