//! `go.mod` files: extracting the module path the way Go's
//! `modfile.ModulePath` does, tolerant of anything else in the file.

/// Returns the path from the first `module` line of a `go.mod` file, like
/// Go's `modfile.ModulePath`: `//` comments are stripped, the path may be
/// bare, "double-quoted" (with Go escapes) or `backquoted`. Returns `None`
/// when there is no such line, when the quoted path is malformed, or when
/// the path is empty or not UTF-8 (Go would return a garbled string there;
/// it could never be a valid module path anyway).
///
/// Like Go, this does not validate the path, and a `module (` block yields
/// `"("`; callers should check the result with
/// [`ModulePath::new`](crate::path::ModulePath::new).
pub fn module_path(gomod: &[u8]) -> Option<String> {
    for line in gomod.split(|&b| b == b'\n') {
        let line = match find(line, b"//") {
            Some(i) => &line[..i],
            None => line,
        };
        let line = trim_space(line);
        let Some(rest) = line.strip_prefix(b"module") else {
            continue;
        };
        let n = rest.len();
        let rest = trim_space(rest);
        if rest.len() == n || rest.is_empty() {
            // "modulefoo" is not a module line; "module" alone has no path.
            continue;
        }
        let path = if rest[0] == b'"' || rest[0] == b'`' {
            unquote(rest)?
        } else {
            rest.to_vec()
        };
        return String::from_utf8(path).ok().filter(|p| !p.is_empty());
    }
    None
}

/// The `require` directives of a `go.mod` file (single lines and blocks),
/// as `(module path, version)` pairs in file order. Lines that do not parse
/// are skipped: a proxy uses this to prefetch, never to decide anything.
pub fn requirements(gomod: &[u8]) -> Vec<(String, String)> {
    crate::modfile::GoMod::parse(gomod)
        .require
        .into_iter()
        .map(|r| (r.path, r.version))
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `bytes.TrimSpace` (ASCII and, for valid UTF-8, Unicode white space).
fn trim_space(s: &[u8]) -> &[u8] {
    match std::str::from_utf8(s) {
        Ok(s) => s.trim().as_bytes(),
        Err(_) => s.trim_ascii(),
    }
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` strings; the whole
/// input must be exactly one quoted string.
pub(crate) fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() < 2 || s[0] != s[s.len() - 1] {
        return None;
    }
    let body = &s[1..s.len() - 1];
    if s[0] == b'`' {
        if body.contains(&b'`') {
            return None;
        }
        return Some(body.iter().copied().filter(|&b| b != b'\r').collect());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' | b'\n' => return None,
            b'\\' => i += unquote_escape(&body[i + 1..], &mut out)? + 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Decodes one escape sequence (after the backslash) of a double-quoted Go
/// string into `out`; returns the number of bytes consumed.
fn unquote_escape(s: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let c = *s.first()?;
    let simple = match c {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        b'\\' => Some(b'\\'),
        b'"' => Some(b'"'),
        _ => None,
    };
    if let Some(b) = simple {
        out.push(b);
        return Some(1);
    }
    match c {
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let hex = std::str::from_utf8(s.get(1..1 + n)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let v = u32::from_str_radix(hex, 16).ok()?;
            if c == b'x' {
                out.push(v as u8);
            } else {
                let ch = char::from_u32(v)?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            Some(1 + n)
        }
        b'0'..=b'7' => {
            let digits = s.get(..3)?;
            if !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                return None;
            }
            let v = digits
                .iter()
                .fold(0u32, |acc, &d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v).ok()?);
            Some(3)
        }
        _ => None,
    }
}

#[cfg(test)]
mod requirement_tests {
    use super::requirements;

    #[test]
    fn single_lines_blocks_comments_and_quotes() {
        let gomod = b"module example.com/m\n\ngo 1.21\n\nrequire rsc.io/quote v1.5.2\n\nrequire (\n\tgolang.org/x/text v0.3.0 // indirect\n\t\"rsc.io/sampler\" v1.3.0\n\t// a comment\n)\nreplace a.b/c => ../c\nrequirefoo x v1\n";
        let r = requirements(gomod);
        let want = [
            ("rsc.io/quote", "v1.5.2"),
            ("golang.org/x/text", "v0.3.0"),
            ("rsc.io/sampler", "v1.3.0"),
        ];
        let got: Vec<(&str, &str)> = r.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_module_path_table() {
        // Ported from Go's modfile/read_test.go modulePathTests ("" = None).
        let tests: &[(&str, &str)] = &[
            (
                "module \"github.com/rsc/vgotest\"",
                "github.com/rsc/vgotest",
            ),
            ("module github.com/rsc/vgotest", "github.com/rsc/vgotest"),
            (
                "module  \"github.com/rsc/vgotest\"",
                "github.com/rsc/vgotest",
            ),
            ("module  github.com/rsc/vgotest", "github.com/rsc/vgotest"),
            ("module `github.com/rsc/vgotest`", "github.com/rsc/vgotest"),
            (
                "module \"github.com/rsc/vgotest/v2\"",
                "github.com/rsc/vgotest/v2",
            ),
            (
                "module github.com/rsc/vgotest/v2",
                "github.com/rsc/vgotest/v2",
            ),
            ("module \"gopkg.in/yaml.v2\"", "gopkg.in/yaml.v2"),
            ("module gopkg.in/yaml.v2", "gopkg.in/yaml.v2"),
            ("module \"gopkg.in/check.v1\"\n", "gopkg.in/check.v1"),
            ("module \"gopkg.in/check.v1\n\"", ""),
            ("module gopkg.in/check.v1\n", "gopkg.in/check.v1"),
            ("module \"gopkg.in/check.v1\"\r\n", "gopkg.in/check.v1"),
            ("module gopkg.in/check.v1\r\n", "gopkg.in/check.v1"),
            ("module \"gopkg.in/check.v1\"\n\n", "gopkg.in/check.v1"),
            ("module gopkg.in/check.v1\n\n", "gopkg.in/check.v1"),
            ("module \n\"gopkg.in/check.v1\"\n\n", ""),
            ("module \ngopkg.in/check.v1\n\n", ""),
            ("module \"gopkg.in/check.v1\"asd", ""),
            ("module  \nmodule a/b/c ", "a/b/c"),
            ("module \"   \"", "   "),
            ("module   ", ""),
            ("module \"  a/b/c  \"", "  a/b/c  "),
            (
                "module \"github.com/rsc/vgotest1\" // with a comment",
                "github.com/rsc/vgotest1",
            ),
            // Extra cases.
            ("module example.com/m // comment", "example.com/m"),
            (
                "// module example.com/not\nmodule example.com/yes",
                "example.com/yes",
            ),
            ("go 1.21\n\nmodule\texample.com/tab\n", "example.com/tab"),
            ("modulefoo example.com/x\n", ""),
            (
                "module \"example.com/\\x41\\u00e9\\101\"",
                "example.com/AéA",
            ),
            ("module \"example.com/\\q\"", ""),
            ("module `a\r\nb`", ""),
            ("module `a\rb`", "ab"),
            ("module \"\"", ""),
            ("", ""),
            ("require example.com/x v1.0.0\n", ""),
            ("\u{feff}module example.com/bom", ""),
        ];
        for &(input, want) in tests {
            let want = (!want.is_empty()).then(|| want.to_owned());
            assert_eq!(
                module_path(input.as_bytes()),
                want,
                "module_path({input:?})"
            );
        }
    }
}
