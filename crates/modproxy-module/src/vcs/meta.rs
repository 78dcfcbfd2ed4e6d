//! `?go-get=1` discovery: the page, its go-import tags, the tag that
//! applies.

use super::*;

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
pub(super) fn attr_value(attrs: &[(Vec<u8>, Vec<u8>)], name: &str) -> String {
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
pub(super) fn validate_repo_subdir(subdir: &str) -> Result<(), String> {
    match subdir.as_bytes().first() {
        Some(b'/') => Err("leading slash".into()),
        Some(b'-') => Err("leading hyphen".into()),
        _ => Ok(()),
    }
}

/// Go's `validateRepoRoot`: `url.Parse` must accept it, with a scheme, not
/// `file`.
pub(super) fn validate_repo_root(repo_root: &str) -> Result<(), String> {
    let scheme = url_scheme(repo_root)?;
    if scheme.is_empty() {
        return Err("no scheme".into());
    }
    if scheme == "file" {
        return Err("file scheme disallowed".into());
    }
    Ok(())
}
