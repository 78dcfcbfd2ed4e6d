//! Import path → repository: where the `go` command fetches a module that no
//! proxy serves ("direct" mode). A port of Go's `cmd/go/internal/vcs`
//! (`RepoRootForImportPath`, as `modfetch.lookupDirect` calls it):
//!
//! - the statically known hosts (`vcsPaths`: GitHub, Bitbucket, IBM
//!   DevOps, Apache, OpenStack, chiselapp, and the `host/path/repo.git/…`
//!   qualifier rule), answered by [`known_host`] without any request;
//! - for every other path, the `?go-get=1` discovery protocol: the page to
//!   request ([`meta_urls`]), its `<meta name="go-import">` tags
//!   ([`parse_meta_imports`], with the lenient `encoding/xml` tokenizer Go
//!   uses, ported byte for byte), the tag that applies ([`match_import`]),
//!   the check against the prefix's own page ([`confirm`]) and the checks
//!   on the tag's fields ([`repo_root_from_meta`]).
//!
//! No I/O: the caller fetches the pages. The whole flow, as Go runs it:
//!
//! 1. `known_host(path, insecure)`: `Some(result)` is the answer.
//! 2. Otherwise request the URLs of `meta_urls(path, insecure)` in order,
//!    moving to the next one only when the request itself fails (no
//!    connection, TLS error); any HTTP status is a response, and its body
//!    is parsed (people serve the tags on their 404 pages). When
//!    `insecure`, Go skips certificate verification for `https`; otherwise
//!    it refuses redirects from `https` to `http`.
//! 3. `imports = parse_meta_imports(body, true)`. If it is empty and the
//!    status was not 200, report the status instead.
//! 4. `mi = match_import(&imports, path)?`.
//! 5. If `mi.prefix != path`, fetch the prefix's page the same way
//!    (`meta_urls(&mi.prefix, insecure)`), parse it, and
//!    `confirm(path, &mi, &imports2)?` (Go caches this page per prefix).
//! 6. `repo_root_from_meta(path, &mi)?`.
//!
//! Go words errors of steps 2–6 as `unrecognized import path "PATH": …`
//! and prefixes those of steps 4 and 6 with the page URL (`parse URL: …`,
//! `URL: …`); the messages here are the parts after those prefixes.
//!
//! This proxy fetches only git repositories (and `mod` go-import entries,
//! i.e. another module proxy): other version control systems are errors.

use std::fmt;

use crate::goquote::quote;

/// The version control systems Go knows (`vcsList`, in its order).
const VCS_NAMES: [&str; 4] = ["hg", "git", "svn", "fossil"];

/// Where a module's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vcs {
    /// A git repository, cloned from [`RepoRoot::repo`].
    Git,
    /// A `mod` go-import entry: [`RepoRoot::repo`] is the base URL of a
    /// module proxy serving the module.
    Mod,
}

impl Vcs {
    /// The name Go uses (`git`, `mod`).
    pub fn as_str(self) -> &'static str {
        match self {
            Vcs::Git => "git",
            Vcs::Mod => "mod",
        }
    }
}

impl fmt::Display for Vcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The repository for an import path (Go's `vcs.RepoRoot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoot {
    /// The import path prefix the repository (or its `subdir`) holds,
    /// e.g. `github.com/acme/widget`.
    pub root: String,
    /// The URL to clone (or, for [`Vcs::Mod`], the proxy base URL).
    pub repo: String,
    /// How to fetch `repo`.
    pub vcs: Vcs,
    /// The directory of the repository that corresponds to `root`, from a
    /// four-field go-import tag (Go 1.25+); `None` for the repository root.
    pub subdir: Option<String>,
}

/// One `<meta name="go-import" content="prefix vcs repo [subdir]">` tag
/// (Go's `metaImport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaImport {
    /// The import path prefix the tag is about.
    pub prefix: String,
    /// The version control system named by the tag (`git`, `mod`, …).
    pub vcs: String,
    /// The repository URL (Go's `RepoRoot`), not yet validated.
    pub repo_root: String,
    /// The optional fourth field: a directory within the repository.
    pub subdir: Option<String>,
}

/// Why an import path has no usable repository; the messages follow Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VcsError(String);

fn err(msg: impl Into<String>) -> VcsError {
    VcsError(msg.into())
}

fn unsupported(vcs: &str, root: &str) -> VcsError {
    err(format!(
        "{root}: version control system {vcs} is not supported (only git repositories can be fetched)"
    ))
}

/// Go's `str.HasPathPrefix`: whether `s` is `prefix` or lies below it.
pub fn has_path_prefix(s: &str, prefix: &str) -> bool {
    if s.len() == prefix.len() {
        return s == prefix;
    }
    if prefix.is_empty() {
        return true;
    }
    s.len() > prefix.len()
        && (prefix.ends_with('/') || s.as_bytes()[prefix.len()] == b'/')
        && s.as_bytes()[..prefix.len()] == *prefix.as_bytes()
}

// ---------------------------------------------------------------------------
// Statically known hosts (vcsPaths).

/// `[\w.\-]` of Go's regexps (`\w` is ASCII only).
fn is_elem_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `[\w.\-]+`.
fn is_elem(e: &str) -> bool {
    !e.is_empty() && e.bytes().all(is_elem_byte)
}

/// One `vcsPaths` entry with a fixed host. `root_elems` gets the path
/// elements after the prefix and returns how many of them belong to the
/// root, or `None` where Go's regexp does not match.
struct StaticHost {
    prefix: &'static str,
    vcs: &'static str,
    root_elems: fn(&[&str]) -> Option<usize>,
    no_vcs_suffix: bool,
}

/// `prefix/[\w.\-]+/[\w.\-]+(/[\w.\-]+)*` (GitHub, Bitbucket, OpenStack,
/// whose `(\.git)?` never captures since the element before is greedy).
fn two_elems(e: &[&str]) -> Option<usize> {
    (e.len() >= 2 && e.iter().all(|e| is_elem(e))).then_some(2)
}

/// `hub\.jazz\.net/git/[a-z0-9]+/[\w.\-]+(/[\w.\-]+)*`.
fn jazz_elems(e: &[&str]) -> Option<usize> {
    let user_ok = |u: &str| {
        !u.is_empty()
            && u.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (e.len() >= 2 && user_ok(e[0]) && e[1..].iter().all(|e| is_elem(e))).then_some(2)
}

/// `git\.apache\.org/[a-z0-9_.\-]+\.git(/[\w.\-]+)*`.
fn apache_elems(e: &[&str]) -> Option<usize> {
    let repo_ok = |r: &str| {
        r.len() > ".git".len()
            && r.ends_with(".git")
            && r.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            })
    };
    (!e.is_empty() && repo_ok(e[0]) && e[1..].iter().all(|e| is_elem(e))).then_some(1)
}

/// `chiselapp\.com/user/[A-Za-z0-9]+/repository/[\w.\-]+`, nothing after.
fn chisel_elems(e: &[&str]) -> Option<usize> {
    let ok = e.len() == 4
        && e[0] == "user"
        && !e[1].is_empty()
        && e[1].bytes().all(|b| b.is_ascii_alphanumeric())
        && e[2] == "repository"
        && is_elem(e[3]);
    ok.then_some(4)
}

/// Go's `vcsPaths`, but for the last (qualifier) entry.
const STATIC_HOSTS: [StaticHost; 6] = [
    StaticHost {
        prefix: "github.com",
        vcs: "git",
        root_elems: two_elems,
        no_vcs_suffix: true,
    },
    StaticHost {
        prefix: "bitbucket.org",
        vcs: "git",
        root_elems: two_elems,
        no_vcs_suffix: true,
    },
    StaticHost {
        prefix: "hub.jazz.net/git",
        vcs: "git",
        root_elems: jazz_elems,
        no_vcs_suffix: true,
    },
    StaticHost {
        prefix: "git.apache.org",
        vcs: "git",
        root_elems: apache_elems,
        no_vcs_suffix: false,
    },
    StaticHost {
        prefix: "git.openstack.org",
        vcs: "git",
        root_elems: two_elems,
        no_vcs_suffix: false,
    },
    StaticHost {
        prefix: "chiselapp.com",
        vcs: "fossil",
        root_elems: chisel_elems,
        no_vcs_suffix: false,
    },
];

/// The repository of `import_path` if its host is one Go knows without
/// asking (Go's `repoRootFromVCSPaths`); `None` when the path needs the
/// `?go-get=1` discovery.
///
/// Fixed hosts are cloned over `https`. For the qualifier rule
/// (`host[:port]/path/repo.git/sub` → root `host[:port]/path/repo.git`,
/// repository `https://host[:port]/path/repo`, without the `.git`) Go
/// probes `git ls-remote` with each scheme in turn (`git`, `https`,
/// `http`, `git+ssh`, `ssh`, only the secure ones unless `insecure`); with
/// no probing here the scheme is `https`, or `http` when `insecure`.
pub fn known_host(import_path: &str, insecure: bool) -> Option<Result<RepoRoot, VcsError>> {
    let path = import_path;
    // Go's own special cases, which keep its tests off the network.
    if has_path_prefix(path, "example.net") {
        return Some(Err(err("no modules on example.net")));
    }
    if path == "rsc.io" {
        return Some(Err(err("rsc.io is not a module")));
    }
    // A common mistake: https://packagepath (cleaned to a single slash).
    for scheme in ["http:", "https:"] {
        if path.starts_with(scheme) {
            let shown = quote(&format!("{scheme}//"));
            return Some(Err(err(format!("{shown} not allowed in import path"))));
        }
    }
    if let Some(host) = STATIC_HOSTS
        .iter()
        .find(|h| has_path_prefix(path, h.prefix))
    {
        return Some(static_root(path, host));
    }
    let q = match_qualified(path)?;
    Some(qualified_root(path, &q, insecure))
}

fn static_root(path: &str, host: &StaticHost) -> Result<RepoRoot, VcsError> {
    let prefix = host.prefix;
    let elems: Vec<&str> = match path.get(prefix.len() + 1..) {
        Some(rest) => rest.split('/').collect(),
        None => Vec::new(),
    };
    let n = (host.root_elems)(&elems)
        .ok_or_else(|| err(format!("invalid {prefix} import path {}", quote(path))))?;
    let root = format!("{prefix}/{}", elems[..n].join("/"));
    let repo = format!("https://{root}");
    if host.no_vcs_suffix && VCS_NAMES.iter().any(|v| has_vcs_suffix(&repo, v)) {
        return Err(err(format!(
            "invalid version control suffix in {prefix}/ path"
        )));
    }
    if host.vcs != "git" {
        return Err(unsupported(host.vcs, &root));
    }
    finish(path, root, repo)
}

fn has_vcs_suffix(s: &str, vcs: &str) -> bool {
    s.len() > vcs.len() && s.ends_with(vcs) && s.as_bytes()[s.len() - vcs.len() - 1] == b'.'
}

/// A match of the qualifier rule, as byte offsets into the import path.
struct Qualified {
    start: usize,
    repo_end: usize,
    root_end: usize,
    vcs: &'static str,
}

/// Go's unanchored
/// `(?P<root>(?P<repo>([a-z0-9.\-]+\.)+[a-z0-9.\-]+(:[0-9]+)?(/~?[\w.\-]+)+?)\.(?P<vcs>fossil|git|hg|svn))(/~?[\w.\-]+)*$`
/// with leftmost-first semantics: the leftmost start that matches and,
/// there, the deepest element ending in `.vcs` (the lazy `+?` gives way
/// only once every element after has been tried as a whole).
fn match_qualified(path: &str) -> Option<Qualified> {
    (0..path.len()).find_map(|start| match_qualified_at(path.as_bytes(), start))
}

fn match_qualified_at(b: &[u8], start: usize) -> Option<Qualified> {
    let host_byte = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    // The host is the whole run of host bytes: a ':' or '/' must follow.
    let mut i = start;
    while i < b.len() && host_byte(b[i]) {
        i += 1;
    }
    let host = &b[start..i];
    if host.len() < 3 || !host[1..host.len() - 1].contains(&b'.') {
        return None;
    }
    if b.get(i) == Some(&b':') {
        i += 1;
        let digits = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits {
            return None;
        }
    }
    if b.get(i) != Some(&b'/') {
        return None;
    }
    // Every element must be `~?[\w.\-]+`; keep where each one ends.
    let mut elems = Vec::new();
    let mut end = i;
    for e in b[i + 1..].split(|&c| c == b'/') {
        end += 1 + e.len();
        let body = e.strip_prefix(b"~").unwrap_or(e);
        if body.is_empty() || !body.iter().all(|&c| is_elem_byte(c)) {
            return None;
        }
        elems.push((end, body));
    }
    elems.iter().rev().find_map(|&(end, body)| {
        ["fossil", "git", "hg", "svn"].into_iter().find_map(|vcs| {
            let dot = body.len().checked_sub(vcs.len() + 1)?;
            let found = dot > 0 && body[dot] == b'.' && body.ends_with(vcs.as_bytes());
            found.then_some(Qualified {
                start,
                repo_end: end - vcs.len() - 1,
                root_end: end,
                vcs,
            })
        })
    })
}

fn qualified_root(path: &str, q: &Qualified, insecure: bool) -> Result<RepoRoot, VcsError> {
    let root = &path[q.start..q.root_end];
    if q.vcs != "git" {
        return Err(unsupported(q.vcs, root));
    }
    if q.start != 0 {
        // Go goes on with this root and fails later (modfetch.newCodeRepo).
        return Err(err(format!("mismatched repo: found {root} for {path}")));
    }
    let scheme = if insecure { "http" } else { "https" };
    let repo = format!("{scheme}://{}", &path[q.start..q.repo_end]);
    finish(path, root.to_string(), repo)
}

fn finish(path: &str, root: String, repo: String) -> Result<RepoRoot, VcsError> {
    check_wildcard(path, &root)?;
    Ok(RepoRoot {
        root,
        repo,
        vcs: Vcs::Git,
        subdir: None,
    })
}

/// `RepoRootForImportPath`: no `...` in a root found for a pattern.
fn check_wildcard(path: &str, root: &str) -> Result<(), VcsError> {
    if path.contains("...") && root.contains("...") {
        return Err(err(format!("cannot expand ... in {}", quote(path))));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// ?go-get=1 discovery.

/// The page(s) to request for `import_path`'s go-import tags (Go's
/// `urlForImportPath` and `web.Get`): `https://PATH?go-get=1`, then, only
/// when `insecure`, `http://PATH?go-get=1` as a fallback should the `https`
/// request fail. The path is the full import path (`/` for a bare host).
pub fn meta_urls(import_path: &str, insecure: bool) -> Result<Vec<String>, VcsError> {
    let (host, path) = match import_path.find('/') {
        Some(i) => import_path.split_at(i),
        None => (import_path, ""),
    };
    if !host.contains('.') {
        return Err(err("import path does not begin with hostname"));
    }
    let path = if path.is_empty() { "/" } else { path };
    let tail = format!(
        "{}{}?go-get=1",
        escape(host, Mode::Host),
        escape(path, Mode::Path)
    );
    let mut urls = vec![format!("https://{tail}")];
    if insecure {
        urls.push(format!("http://{tail}"));
    }
    Ok(urls)
}

/// The go-import tags of a `?go-get=1` page (Go's `parseMetaGoImports`).
///
/// Like Go, this reads the page with `encoding/xml`'s non-strict
/// tokenizer and stops at `<body>`, at `</head>`, or where that tokenizer
/// gives up (an unescaped `<` in a script, a `--` inside a comment, an
/// `<?xml?>` declaring a charset other than UTF-8 or ASCII, …), keeping
/// the tags seen so far. Tags need `name="go-import"` (exact value) and a
/// `content` of three or four fields. With `prefer_mod` (what module mode
/// uses), `mod` entries come first and hide other entries for the same
/// prefix; without it, `mod` entries are dropped.
pub fn parse_meta_imports(html: &[u8], prefer_mod: bool) -> Vec<MetaImport> {
    let mut imports = Vec::new();
    let mut tokens = Tokenizer {
        s: html,
        i: 0,
        pending_end: None,
    };
    while let Some(token) = tokens.next_token() {
        match token {
            Token::Start { name, .. } if name.eq_ignore_ascii_case(b"body") => break,
            Token::End(name) if name.eq_ignore_ascii_case(b"head") => break,
            Token::Start { name, attrs } if name.eq_ignore_ascii_case(b"meta") => {
                if attr_value(&attrs, "name") != "go-import" {
                    continue;
                }
                let content = attr_value(&attrs, "content");
                let f: Vec<&str> = content.split_whitespace().collect();
                if f.len() == 3 || f.len() == 4 {
                    imports.push(MetaImport {
                        prefix: f[0].to_string(),
                        vcs: f[1].to_string(),
                        repo_root: f[2].to_string(),
                        subdir: f.get(3).map(|s| s.to_string()),
                    });
                }
            }
            _ => {}
        }
    }

    let mut list = Vec::new();
    let mut have = Vec::new();
    if prefer_mod {
        for m in imports.iter().filter(|m| m.vcs == "mod") {
            have.push(m.prefix.clone());
            list.push(m.clone());
        }
    }
    list.extend(
        imports
            .into_iter()
            .filter(|m| m.vcs != "mod" && !have.contains(&m.prefix)),
    );
    list
}

/// The value of the first attribute named `name` (ASCII case-insensitive,
/// which is what Go's `strings.EqualFold` amounts to for these names), or
/// `""`.
fn attr_value(attrs: &[(Vec<u8>, Vec<u8>)], name: &str) -> String {
    attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// The tag of `imports` that applies to `import_path` (Go's
/// `matchGoImport`): the one whose prefix is a path prefix of it. More than
/// one is an error, except that with `mod` entries first (as
/// [`parse_meta_imports`] orders them) a matching `mod` entry wins.
pub fn match_import(imports: &[MetaImport], import_path: &str) -> Result<MetaImport, VcsError> {
    let mut found: Option<&MetaImport> = None;
    let mut mismatches = Vec::new();
    for im in imports {
        if !has_path_prefix(import_path, &im.prefix) {
            mismatches.push(format!(
                "meta tag {} did not match import path {import_path}",
                im.prefix
            ));
            continue;
        }
        if let Some(m) = found {
            if m.vcs == "mod" && im.vcs != "mod" {
                // Every mod entry precedes every other entry.
                break;
            }
            return Err(err(format!(
                "multiple meta tags match import path {}",
                quote(import_path)
            )));
        }
        found = Some(im);
    }
    match found {
        Some(m) => Ok(m.clone()),
        None => Err(err(format!(
            "no go-import meta tags ({})",
            mismatches.join(", ")
        ))),
    }
}

/// The check Go makes when the tag found on `import_path`'s page is for a
/// shorter prefix (`repoRootForImportDynamic`): the prefix's own page,
/// parsed into `prefix_page`, must give the same tag for `import_path`, so
/// that a page below a prefix cannot redirect the whole prefix. Call it
/// only when `first.prefix != import_path`.
pub fn confirm(
    import_path: &str,
    first: &MetaImport,
    prefix_page: &[MetaImport],
) -> Result<(), VcsError> {
    let prefix = &first.prefix;
    if prefix_page.is_empty() {
        return Err(err(format!(
            "fetching {prefix}: no go-import meta tag found in its ?go-get=1 page"
        )));
    }
    match match_import(prefix_page, import_path) {
        Ok(second) if second == *first => Ok(()),
        _ => Err(err(format!(
            "the ?go-get=1 pages of {import_path} and {prefix} disagree about go-import for {prefix}"
        ))),
    }
}

/// The repository a matched (and, if needed, confirmed) go-import tag
/// names, after Go's checks: the subdirectory must not start with `/` or
/// `-`, the repository must be a URL with a scheme other than `file`
/// (`validateRepoRoot`; like Go in module mode, no other scheme is
/// refused), and the VCS must be `git` or `mod` here.
pub fn repo_root_from_meta(import_path: &str, mi: &MetaImport) -> Result<RepoRoot, VcsError> {
    if let Some(subdir) = &mi.subdir {
        validate_repo_subdir(subdir)
            .map_err(|e| err(format!("invalid subdirectory {}: {e}", quote(subdir))))?;
    }
    validate_repo_root(&mi.repo_root)
        .map_err(|e| err(format!("invalid repo root {}: {e}", quote(&mi.repo_root))))?;
    let vcs = match mi.vcs.as_str() {
        "git" => Vcs::Git,
        "mod" => Vcs::Mod,
        v if VCS_NAMES.contains(&v) => return Err(unsupported(v, &mi.prefix)),
        v => return Err(err(format!("unknown vcs {}", quote(v)))),
    };
    check_wildcard(import_path, &mi.prefix)?;
    Ok(RepoRoot {
        root: mi.prefix.clone(),
        repo: mi.repo_root.clone(),
        vcs,
        subdir: mi.subdir.clone(),
    })
}

/// Go's `validateRepoSubDir`.
fn validate_repo_subdir(subdir: &str) -> Result<(), String> {
    match subdir.as_bytes().first() {
        Some(b'/') => Err("leading slash".into()),
        Some(b'-') => Err("leading hyphen".into()),
        _ => Ok(()),
    }
}

/// Go's `validateRepoRoot`: `url.Parse` must accept it, with a scheme, not
/// `file`.
fn validate_repo_root(repo_root: &str) -> Result<(), String> {
    let scheme = url_scheme(repo_root)?;
    if scheme.is_empty() {
        return Err("no scheme".into());
    }
    if scheme == "file" {
        return Err("file scheme disallowed".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// net/url: Parse's checks, and escaping.

/// The `net/url` encoding modes used here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Go's `url.shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    !(mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*'))
}

/// Go's `url.escape` (for the modes without `+` for space).
fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, mode) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

/// The checks of Go's `url.unescape`, returning the unescaped bytes.
fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(hi), Some(lo)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) else {
                let bad = String::from_utf8_lossy(&b[i..(i + 3).min(b.len())]);
                return Err(format!("invalid URL escape {}", quote(&bad)));
            };
            let v = (hi << 4 | lo) as u8;
            let is25 = &b[i..i + 3] == b"%25";
            let bad = match mode {
                Mode::Host => hi < 8 && !is25,
                Mode::Zone => !is25 && v != b' ' && should_escape(v, Mode::Host),
                _ => false,
            };
            if bad {
                return Err(format!("invalid URL escape {}", quote(&s[i..i + 3])));
            }
            out.push(v);
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && b[i] < 0x80 && should_escape(b[i], mode) {
                let bad = char::from(b[i]).to_string();
                return Err(format!("invalid character {} in host name", quote(&bad)));
            }
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Go's `url.Parse`, reduced to its verdict: the lower-cased scheme (empty
/// for none), or Go's error message.
fn url_scheme(raw: &str) -> Result<String, String> {
    let (u, frag) = raw.split_once('#').unwrap_or((raw, ""));
    let scheme = parse_url(u).map_err(|e| format!("parse {}: {e}", quote(u)))?;
    if !frag.is_empty() {
        unescape(frag, Mode::Fragment).map_err(|e| format!("parse {}: {e}", quote(raw)))?;
    }
    Ok(scheme)
}

fn parse_url(raw: &str) -> Result<String, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    if raw == "*" {
        return Ok(String::new());
    }
    let (scheme, rest) = get_scheme(raw)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        rest.split_once('?').map_or(rest, |(r, _)| r)
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            return Ok(scheme); // opaque
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, p) = authority.split_at(authority.find('/').unwrap_or(authority.len()));
        parse_authority(&scheme, authority)?;
        path = p;
    }
    unescape(path, Mode::Path)?;
    Ok(scheme)
}

/// Go's `getScheme`.
fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(scheme: &str, authority: &str) -> Result<(), String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    parse_host(scheme, host)?;
    if let Some(userinfo) = userinfo {
        let valid = userinfo.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '.'
                        | '_'
                        | ':'
                        | '~'
                        | '!'
                        | '$'
                        | '&'
                        | '\''
                        | '('
                        | ')'
                        | '*'
                        | '+'
                        | ','
                        | ';'
                        | '='
                        | '%'
                        | '@'
                )
        });
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        // Splitting at the first ':' does not change which escapes are bad.
        unescape(userinfo, Mode::UserPassword)?;
    }
    Ok(())
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty() || (port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()))
}

fn parse_host(scheme: &str, host: &str) -> Result<(), String> {
    match host.rfind('[') {
        Some(i) if i > 0 => return Err("invalid IP-literal".into()),
        Some(_) => {
            let close = host.rfind(']').ok_or("missing ']' in host")?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", quote(colon_port)));
            }
            let hostname = &host[1..close];
            let addr = match hostname.find("%25") {
                Some(z) => {
                    let mut a = unescape(&hostname[..z], Mode::Host)?;
                    a.extend(unescape(&hostname[z..], Mode::Zone)?);
                    a
                }
                None => unescape(hostname, Mode::Host)?,
            };
            let addr = String::from_utf8_lossy(&addr);
            return parse_ipv6_literal(&addr);
        }
        None => {}
    }
    if let Some(first) = host.find(':') {
        let last = host.rfind(':').unwrap_or(first);
        // Strict about extra colons for http(s) only (godebug
        // urlstrictcolons=1, the default since Go 1.26).
        let i = if last != first && scheme != "http" && scheme != "https" {
            last
        } else {
            first
        };
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    }
    unescape(host, Mode::Host)?;
    Ok(())
}

/// `netip.ParseAddr` on a bracketed host: an IPv6 address, with an
/// optional non-empty zone.
fn parse_ipv6_literal(s: &str) -> Result<(), String> {
    let invalid = |msg: &str| Err(format!("invalid host: ParseAddr({}): {msg}", quote(s)));
    match s.bytes().find(|b| matches!(b, b'.' | b':' | b'%')) {
        Some(b'.') if s.parse::<std::net::Ipv4Addr>().is_ok() => Err("invalid IP-literal".into()),
        Some(b':') => {
            let (addr, zone) = match s.split_once('%') {
                Some((a, z)) => (a, Some(z)),
                None => (s, None),
            };
            if zone == Some("") {
                return invalid("zone must be a non-empty string");
            }
            match addr.parse::<std::net::Ipv6Addr>() {
                Ok(_) => Ok(()),
                Err(_) => invalid("invalid IPv6 address"),
            }
        }
        Some(b'%') => invalid("missing IPv6 address"),
        _ => invalid("unable to parse IP"),
    }
}

// ---------------------------------------------------------------------------
// encoding/xml's RawToken in non-strict mode, as parseMetaGoImports uses it.

/// The tokens `parseMetaGoImports` looks at; names are local names (after
/// any `space:` prefix).
enum Token {
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
struct Tokenizer<'a> {
    s: &'a [u8],
    i: usize,
    /// The end half of a self-closing `<x/>`.
    pending_end: Option<Vec<u8>>,
}

/// Go's `isNameByte`.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'.' | b'-')
}

/// Go's `isName`. Non-ASCII characters are accepted wherever Go's XML
/// name tables might allow them (an approximation: no HTML head uses them).
fn is_name(s: &[u8]) -> bool {
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
fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// `ToLower(s) == want` for Go's `unicode.ToLower`, where only `İ` and the
/// Kelvin sign lower to ASCII from outside it.
fn go_lower_eq(s: &[u8], want: &str) -> bool {
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
fn proc_inst<'a>(param: &str, s: &'a [u8]) -> &'a [u8] {
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
    fn next_token(&mut self) -> Option<Token> {
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

#[cfg(test)]
mod tests;
