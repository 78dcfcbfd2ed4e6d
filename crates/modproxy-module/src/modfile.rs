//! The directives of `go.mod` and `go.work` files that decide a module
//! graph: `module`, `go`, `require` (with `// indirect`), `replace`,
//! `exclude`, `use`. A port of the parts of Go's `modfile` a proxy needs to
//! resolve what a build downloads; lines that do not parse are skipped
//! (the go command is the judge of a broken file, not a cache warmer).

use crate::goquote::unquote;

/// One `require` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    pub path: String,
    pub version: String,
    /// Marked `// indirect`.
    pub indirect: bool,
}

/// Where a `replace` directive sends a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Another module version (fetched in place of the original).
    Module { path: String, version: String },
    /// A directory on disk (relative to the file, or absolute).
    Dir(String),
}

/// One `replace` line: `old [version] => new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    pub path: String,
    /// `None`: every version of `path`.
    pub version: Option<String>,
    pub with: Replacement,
}

/// What a `go.mod` file says about the module graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoMod {
    pub module: Option<String>,
    /// The `go` line (`1.21`, `1.22.3`), if any.
    pub go: Option<String>,
    /// The `toolchain` line (`go1.22.0`, `default`), if any.
    pub toolchain: Option<String>,
    pub require: Vec<Require>,
    pub replace: Vec<Replace>,
    pub exclude: Vec<(String, String)>,
}

/// What a `go.work` file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoWork {
    /// Directories of the workspace's modules, as written.
    pub uses: Vec<String>,
    pub replace: Vec<Replace>,
    /// The `go` and `toolchain` lines: in a workspace they, not the
    /// modules' own, decide the toolchain.
    pub go: Option<String>,
    pub toolchain: Option<String>,
}

impl GoMod {
    pub fn parse(data: &[u8]) -> GoMod {
        let mut out = GoMod {
            module: crate::gomod::module_path(data),
            ..GoMod::default()
        };
        for d in directives(data) {
            match (d.verb.as_str(), d.args.as_slice()) {
                ("go", [version]) => out.go = Some(version.clone()),
                ("toolchain", [name]) => out.toolchain = Some(name.clone()),
                ("require", [path, version]) => out.require.push(Require {
                    path: path.clone(),
                    version: version.clone(),
                    indirect: d.indirect,
                }),
                ("replace", args) => out.replace.extend(replace(args)),
                ("exclude", [path, version]) => out.exclude.push((path.clone(), version.clone())),
                _ => {}
            }
        }
        out
    }

    /// Whether the module's requirements are pruned (go ≥ 1.17): its
    /// dependencies' own requirements are left out of the graph unless
    /// they are needed directly.
    pub fn is_pruned(&self) -> bool {
        self.go.as_deref().is_some_and(|go| go_at_least(go, 1, 17))
    }
}

impl GoWork {
    pub fn parse(data: &[u8]) -> GoWork {
        let mut out = GoWork::default();
        for d in directives(data) {
            match (d.verb.as_str(), d.args.as_slice()) {
                ("use", [dir]) => out.uses.push(dir.clone()),
                ("go", [version]) => out.go = Some(version.clone()),
                ("toolchain", [name]) => out.toolchain = Some(name.clone()),
                ("replace", args) => out.replace.extend(replace(args)),
                _ => {}
            }
        }
        out
    }
}

/// The toolchain (`go1.22.0`) a go command of version `local` (`1.21.4`)
/// switches to for a go.mod or go.work with these `go` and `toolchain`
/// lines, as `toolchain.Select` in cmd/go picks it: the `toolchain` line
/// if newer than `local`, then the `go` line if newer still (`go` + that
/// version, `.0` added to a language version like `1.22`). `None` when no
/// switch happens, for `toolchain default`, for a name that is not a Go
/// release (`go1.22.0-custom` cannot be downloaded), and below go1.21 (no
/// toolchain module exists below it).
pub fn switch_toolchain(local: &str, go: Option<&str>, toolchain: Option<&str>) -> Option<String> {
    if toolchain == Some("default") {
        // Only ever the go command's own toolchain, whatever the go line.
        return None;
    }
    let mut min = GoVersion::parse(local)?;
    let mut target = None;
    let from_line = toolchain.and_then(|t| t.strip_prefix("go"));
    if let Some((t, v)) = from_line.and_then(|t| Some((t, GoVersion::parse(t)?))) {
        if v > min {
            (target, min) = (Some(t.to_string()), v);
        }
    }
    if let Some((g, v)) = go.and_then(|g| Some((g, GoVersion::parse(g)?))) {
        if v > min {
            let lang = v.is_lang() && go_at_least(g, 1, 21);
            target = Some(if lang {
                format!("{g}.0")
            } else {
                g.to_string()
            });
        }
    }
    let target = target?;
    (GoVersion::parse(&target)? >= GoVersion::parse("1.21")?).then(|| format!("go{target}"))
}

/// A Go version (`1.21`, `1.21rc2`, `1.21.3`) ordered as `gover.Compare`:
/// a language version before its prereleases, those before its releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct GoVersion {
    major: u64,
    minor: u64,
    /// 0: language version, 1: beta, 2: rc, 3: release.
    kind: u8,
    /// The beta/rc number, or the patch of a release.
    n: u64,
}

impl GoVersion {
    fn parse(v: &str) -> Option<GoVersion> {
        let number = |s: &str| s.parse::<u64>().ok().filter(|_| !s.starts_with('+'));
        let (major, rest) = v.split_once('.')?;
        let major = number(major)?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (minor, tail) = rest.split_at(digits);
        let minor = number(minor)?;
        let (kind, n) = if tail.is_empty() {
            (0, 0)
        } else if let Some(patch) = tail.strip_prefix('.') {
            (3, number(patch)?)
        } else if let Some(rc) = tail.strip_prefix("rc") {
            (2, number(rc)?)
        } else {
            (1, number(tail.strip_prefix("beta")?)?)
        };
        Some(GoVersion {
            major,
            minor,
            kind,
            n,
        })
    }

    fn is_lang(&self) -> bool {
        self.kind == 0
    }
}

/// Whether a `go` line's version is at least `major.minor`.
pub fn go_at_least(go: &str, major: u64, minor: u64) -> bool {
    let mut parts = go.split(['.', 'r', 'b']).map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        (Some(a), None) => a > major,
        _ => false,
    }
}

fn replace(args: &[String]) -> Option<Replace> {
    let arrow = args.iter().position(|a| a == "=>")?;
    let (old, new) = (&args[..arrow], &args[arrow + 1..]);
    let (path, version) = match old {
        [path] => (path.clone(), None),
        [path, version] => (path.clone(), Some(version.clone())),
        _ => return None,
    };
    let with = match new {
        [dir] => Replacement::Dir(dir.clone()),
        [path, version] => Replacement::Module {
            path: path.clone(),
            version: version.clone(),
        },
        _ => return None,
    };
    Some(Replace {
        path,
        version,
        with,
    })
}

/// One directive line: `verb args…`, from a line or a `verb ( … )` block.
struct Directive {
    verb: String,
    args: Vec<String>,
    indirect: bool,
}

fn directives(data: &[u8]) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in data.split(|&b| b == b'\n') {
        let Some((tokens, comment)) = tokens(line) else {
            continue;
        };
        let indirect = comment.is_some_and(is_indirect);
        match (&block, tokens.as_slice()) {
            (Some(_), [close]) if close == ")" => block = None,
            (Some(verb), args) if !args.is_empty() => out.push(Directive {
                verb: verb.clone(),
                args: args.to_vec(),
                indirect,
            }),
            (None, [verb, open]) if open == "(" => block = Some(verb.clone()),
            (None, [verb, args @ ..]) if !args.is_empty() => out.push(Directive {
                verb: verb.clone(),
                args: args.to_vec(),
                indirect,
            }),
            _ => {}
        }
    }
    out
}

/// `// indirect` (possibly followed by `; more comment`), like modfile.
fn is_indirect(comment: &str) -> bool {
    let comment = comment.trim();
    comment == "indirect" || comment.starts_with("indirect;")
}

/// The tokens of one line and its `//` comment; `None` for a line that
/// does not tokenize (an unterminated or malformed quoted string).
fn tokens(line: &[u8]) -> Option<(Vec<String>, Option<&str>)> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if line[i..].starts_with(b"//") {
            let comment = std::str::from_utf8(&line[i + 2..]).ok();
            return Some((tokens, comment));
        } else if b == b'"' || b == b'`' {
            let end = closing_quote(line, i)?;
            tokens.push(String::from_utf8(unquote(&line[i..=end])?).ok()?);
            i = end + 1;
        } else {
            let end = line[i..]
                .iter()
                .position(|c| c.is_ascii_whitespace())
                .map_or(line.len(), |n| i + n);
            let token = &line[i..end];
            // `foo//comment`: the comment starts inside the token.
            let cut = token.windows(2).position(|w| w == b"//");
            let token = cut.map_or(token, |n| &token[..n]);
            tokens.push(String::from_utf8(token.to_vec()).ok()?);
            if let Some(n) = cut {
                let comment = std::str::from_utf8(&line[i + n + 2..]).ok();
                return Some((tokens, comment));
            }
            i = end;
        }
    }
    Some((tokens, None))
}

/// The index of the quote closing the string that starts at `start`.
fn closing_quote(line: &[u8], start: usize) -> Option<usize> {
    let quote = line[start];
    let mut i = start + 1;
    while i < line.len() {
        match line[i] {
            b'\\' if quote == b'"' => i += 2,
            c if c == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The `require` directives of a `go.mod` file (single lines and blocks),
/// as `(module path, version)` pairs in file order. Lines that do not parse
/// are skipped: a proxy uses this to prefetch, never to decide anything.
pub fn requirements(gomod: &[u8]) -> Vec<(String, String)> {
    GoMod::parse(gomod)
        .require
        .into_iter()
        .map(|r| (r.path, r.version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_go_mod() {
        let gomod = br#"// header comment
module example.com/m

go 1.21.0

toolchain go1.22.1

require rsc.io/quote v1.5.2

require (
	golang.org/x/text v0.3.0 // indirect
	"rsc.io/sampler" v1.3.0 // indirect; kept for tests
	// a comment
)

replace (
	example.com/a => ../a
	example.com/b v1.0.0 => example.com/c v1.1.0
	example.com/d => /abs/d // comment
)
exclude rsc.io/sampler v1.99.99
retract v1.0.1
"#;
        let m = GoMod::parse(gomod);
        assert_eq!(m.module.as_deref(), Some("example.com/m"));
        assert_eq!(m.go.as_deref(), Some("1.21.0"));
        assert!(m.is_pruned());
        let req: Vec<(&str, &str, bool)> = m
            .require
            .iter()
            .map(|r| (r.path.as_str(), r.version.as_str(), r.indirect))
            .collect();
        assert_eq!(
            req,
            [
                ("rsc.io/quote", "v1.5.2", false),
                ("golang.org/x/text", "v0.3.0", true),
                ("rsc.io/sampler", "v1.3.0", true),
            ]
        );
        assert_eq!(
            m.replace,
            [
                Replace {
                    path: "example.com/a".into(),
                    version: None,
                    with: Replacement::Dir("../a".into())
                },
                Replace {
                    path: "example.com/b".into(),
                    version: Some("v1.0.0".into()),
                    with: Replacement::Module {
                        path: "example.com/c".into(),
                        version: "v1.1.0".into()
                    }
                },
                Replace {
                    path: "example.com/d".into(),
                    version: None,
                    with: Replacement::Dir("/abs/d".into())
                },
            ]
        );
        assert_eq!(
            m.exclude,
            [("rsc.io/sampler".to_string(), "v1.99.99".to_string())]
        );
    }

    #[test]
    fn pruning_starts_at_go_1_17() {
        for (go, pruned) in [
            ("1.16", false),
            ("1.17", true),
            ("1.9", false),
            ("1.21rc1", true),
            ("1.21.3", true),
            ("2", true),
        ] {
            let m = GoMod::parse(format!("module m\ngo {go}\n").as_bytes());
            assert_eq!(m.is_pruned(), pruned, "go {go}");
        }
        assert!(!GoMod::parse(b"module m\n").is_pruned(), "no go line");
    }

    #[test]
    fn a_go_work() {
        let w = GoWork::parse(
            b"go 1.22\n\nuse ./a\nuse (\n\t./b // the second\n\t\"./c d\"\n)\nreplace example.com/x v1.0.0 => example.com/y v1.0.1\n",
        );
        assert_eq!(w.uses, ["./a", "./b", "./c d"]);
        assert_eq!(w.replace.len(), 1);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let m = GoMod::parse(b"module m\nrequire \"unterminated v1.0.0\nrequire ok.example/x v1.0.0\nrequire onlypath\n");
        assert_eq!(m.require.len(), 1);
        assert_eq!(m.require[0].path, "ok.example/x");
    }

    #[test]
    fn the_toolchain_a_go_command_switches_to() {
        let cases = [
            // (local go, go line, toolchain line, switched to)
            ("1.0", Some("1.21"), Some("go1.22.0"), Some("go1.22.0")),
            ("1.0", Some("1.22.3"), Some("go1.22.0"), Some("go1.22.3")),
            ("1.0", Some("1.22"), None, Some("go1.22.0")),
            ("1.0", Some("1.23rc1"), None, Some("go1.23rc1")),
            ("1.0", Some("1.23rc1"), Some("go1.23.1"), Some("go1.23.1")),
            ("1.0", Some("1.22.0"), Some("go1.22rc1"), Some("go1.22.0")),
            ("1.0", Some("1.16"), None, None),
            ("1.0", Some("1.20"), Some("go1.20.5"), None),
            ("1.0", Some("1.22"), Some("default"), None),
            ("1.0", None, Some("go1.22.0-custom"), None),
            ("1.0", None, None, None),
            ("1.27.3", Some("1.22"), Some("go1.22.0"), None),
            ("1.27.3", Some("1.30"), Some("go1.22.0"), Some("go1.30.0")),
            ("1.22.1", Some("1.22.0"), Some("go1.22.4"), Some("go1.22.4")),
        ];
        for (local, go, toolchain, want) in cases {
            assert_eq!(
                switch_toolchain(local, go, toolchain).as_deref(),
                want,
                "go {local} with go {go:?} toolchain {toolchain:?}"
            );
        }
        let gomod = GoMod::parse(b"module m\n\ngo 1.21\n\ntoolchain go1.22.0\n");
        assert_eq!(gomod.toolchain.as_deref(), Some("go1.22.0"));
        let work = GoWork::parse(b"go 1.22\ntoolchain go1.23.0\nuse ./a\n");
        assert_eq!(
            (work.go.as_deref(), work.toolchain.as_deref()),
            (Some("1.22"), Some("go1.23.0"))
        );
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
