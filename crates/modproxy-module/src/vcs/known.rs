//! Statically known hosts (Go's `vcsPaths`).

use super::*;

/// `[\w.\-]` of Go's regexps (`\w` is ASCII only).
pub(super) fn is_elem_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `[\w.\-]+`.
pub(super) fn is_elem(e: &str) -> bool {
    !e.is_empty() && e.bytes().all(is_elem_byte)
}

/// One `vcsPaths` entry with a fixed host. `root_elems` gets the path
/// elements after the prefix and returns how many of them belong to the
/// root, or `None` where Go's regexp does not match.
pub(super) struct StaticHost {
    prefix: &'static str,
    vcs: &'static str,
    root_elems: fn(&[&str]) -> Option<usize>,
    no_vcs_suffix: bool,
}

/// `prefix/[\w.\-]+/[\w.\-]+(/[\w.\-]+)*` (GitHub, Bitbucket, OpenStack,
/// whose `(\.git)?` never captures since the element before is greedy).
pub(super) fn two_elems(e: &[&str]) -> Option<usize> {
    (e.len() >= 2 && e.iter().all(|e| is_elem(e))).then_some(2)
}

/// `hub\.jazz\.net/git/[a-z0-9]+/[\w.\-]+(/[\w.\-]+)*`.
pub(super) fn jazz_elems(e: &[&str]) -> Option<usize> {
    let user_ok = |u: &str| {
        !u.is_empty()
            && u.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (e.len() >= 2 && user_ok(e[0]) && e[1..].iter().all(|e| is_elem(e))).then_some(2)
}

/// `git\.apache\.org/[a-z0-9_.\-]+\.git(/[\w.\-]+)*`.
pub(super) fn apache_elems(e: &[&str]) -> Option<usize> {
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
pub(super) fn chisel_elems(e: &[&str]) -> Option<usize> {
    let ok = e.len() == 4
        && e[0] == "user"
        && !e[1].is_empty()
        && e[1].bytes().all(|b| b.is_ascii_alphanumeric())
        && e[2] == "repository"
        && is_elem(e[3]);
    ok.then_some(4)
}

/// Go's `vcsPaths`, but for the last (qualifier) entry.
pub(super) const STATIC_HOSTS: [StaticHost; 6] = [
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

pub(super) fn static_root(path: &str, host: &StaticHost) -> Result<RepoRoot, VcsError> {
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

pub(super) fn has_vcs_suffix(s: &str, vcs: &str) -> bool {
    s.len() > vcs.len() && s.ends_with(vcs) && s.as_bytes()[s.len() - vcs.len() - 1] == b'.'
}

/// A match of the qualifier rule, as byte offsets into the import path.
pub(super) struct Qualified {
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
pub(super) fn match_qualified(path: &str) -> Option<Qualified> {
    (0..path.len()).find_map(|start| match_qualified_at(path.as_bytes(), start))
}

pub(super) fn match_qualified_at(b: &[u8], start: usize) -> Option<Qualified> {
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

pub(super) fn qualified_root(
    path: &str,
    q: &Qualified,
    insecure: bool,
) -> Result<RepoRoot, VcsError> {
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

pub(super) fn finish(path: &str, root: String, repo: String) -> Result<RepoRoot, VcsError> {
    check_wildcard(path, &root)?;
    Ok(RepoRoot {
        root,
        repo,
        vcs: Vcs::Git,
        subdir: None,
    })
}

/// `RepoRootForImportPath`: no `...` in a root found for a pattern.
pub(super) fn check_wildcard(path: &str, root: &str) -> Result<(), VcsError> {
    if path.contains("...") && root.contains("...") {
        return Err(err(format!("cannot expand ... in {}", quote(path))));
    }
    Ok(())
}
