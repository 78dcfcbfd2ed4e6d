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
            crate::goquote::unquote(rest)?
        } else {
            rest.to_vec()
        };
        return String::from_utf8(path).ok().filter(|p| !p.is_empty());
    }
    None
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
