//! One module in one repository: the go command's `codeRepo`
//! (`cmd/go/internal/modfetch/coderepo.go`) over a [`Mirror`] — tags to
//! versions, revisions to versions (tags, `+incompatible`,
//! pseudo-versions), where the module's go.mod is, and its zip.
//! Retractions are not consulted when picking a pseudo-version's base.

use std::path::Path;
use std::sync::Arc;

use modproxy_module::path::{match_path_major, split_path_version};
use modproxy_module::pseudo::{is_pseudo_version, parse_pseudo_version, pseudo_version_base};
use modproxy_module::semver;
use modproxy_module::vcs::has_path_prefix;

use super::git::GitError;
use super::mirror::{Commit, Mirror, Refs};
use super::time::{pseudo_timestamp, rfc3339};

use crate::sync::Locked;

mod archive;
mod convert;
mod find_dir;

/// The largest go.mod and LICENSE read from a repository.
const MAX_SMALL_FILE: u64 = 16 << 20;

/// Why a direct lookup gave no answer.
#[derive(Debug, Clone)]
pub enum RepoError {
    /// The module, version or revision does not exist (or is not valid for
    /// this module): a 404 for the client.
    NotFound(String),
    /// git failed (network, timeout, repository trouble).
    Git(GitError),
    /// The address policy does not let git reach the repository.
    Refused(String),
    /// Something else failed here (scratch files, discovery): a 502.
    Io(String),
}

impl From<GitError> for RepoError {
    fn from(e: GitError) -> Self {
        RepoError::Git(e)
    }
}

type Result<T> = std::result::Result<T, RepoError>;

/// A resolved revision: what `.info` says.
#[derive(Debug, Clone)]
pub struct RevInfo {
    pub version: String,
    pub time: i64,
    pub hash: String,
    /// The ref it was found by (`refs/tags/v1.0.0`, `refs/heads/main`,
    /// `HEAD`), if any.
    pub reference: Option<String>,
}

impl RevInfo {
    /// The `.info` file: `Version`, `Time` and `Origin`.
    pub fn json(&self, url: &str, subdir: &str) -> String {
        let mut origin = serde_json::json!({ "VCS": "git", "URL": url });
        if !subdir.is_empty() {
            origin["Subdir"] = subdir.into();
        }
        origin["Hash"] = self.hash.as_str().into();
        if let Some(r) = &self.reference {
            origin["Ref"] = r.as_str().into();
        }
        serde_json::json!({
            "Version": self.version,
            "Time": rfc3339(self.time),
            "Origin": origin,
        })
        .to_string()
    }
}

/// A module at `code_dir` of the repository mirrored by `mirror`.
pub struct CodeRepo {
    pub mirror: Arc<Mirror>,
    mod_path: String,
    code_root: String,
    /// The module's directory in the repository ("" at the root).
    pub code_dir: String,
    path_prefix: String,
    path_major: String,
    pseudo_major: String,
    /// Whether (commit, file) exists: `+incompatible` checks ask often.
    has_file: std::sync::Mutex<std::collections::HashMap<(String, String), bool>>,
    /// `-c` options of the git commands that reach the remote (the
    /// address policy's, for public modules).
    pub access: Vec<String>,
}

/// `module.PathMajorPrefix`: `v2` for `/v2` or `.v2-unstable`.
fn path_major_prefix(path_major: &str) -> String {
    let m = path_major
        .strip_suffix("-unstable")
        .filter(|_| path_major.starts_with(".v"))
        .unwrap_or(path_major);
    m.get(1..).unwrap_or("").to_string()
}

/// `isMajor`: the versions allowed for `mpath` fit `path_major`.
fn is_major(mpath: &str, path_major: &str) -> bool {
    if mpath.is_empty() {
        return false;
    }
    let Some((_, mpath_major)) = split_path_version(mpath) else {
        return false;
    };
    if path_major.is_empty() {
        return matches!(path_major_prefix(mpath_major).as_str(), "" | "v0" | "v1");
    }
    if mpath_major.is_empty() {
        return false;
    }
    path_major[1..] == mpath_major[1..]
}

/// A branch or tag name as git allows them (`git check-ref-format`), so
/// that no revision syntax (`~`, `^`, `:`, `@{`, `..`) reaches git.
fn plain_ref_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['-', '/', '.'])
        && !s.ends_with(['/', '.'])
        && !s.ends_with(".lock")
        && !s.contains("..")
        && !s.contains("@{")
        && !s.contains("//")
        && !s.contains("/.")
        && s != "@"
        && s.bytes()
            .all(|b| b > b' ' && b != 0x7f && !b"~^:?*[\\".contains(&b))
}

fn all_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where [`CodeRepo::locate`] found a revision.
enum Located {
    /// In the mirror already, with the ref it was found by.
    Local(Commit, Option<String>),
    /// Not there: fetched (at depth 1 when `shallow`), not yet looked at.
    Fetched(Fetched),
}

/// A revision fetched for [`CodeRepo::confirm`].
struct Fetched {
    /// The commit the remote's ref named (or the hash asked for).
    hash: String,
    reference: Option<String>,
    refs: Arc<Refs>,
    shallow: bool,
}

impl CodeRepo {
    /// `newCodeRepo`: module `path` in the repository rooted at import path
    /// `code_root`, with `subdir` from a go-import meta tag (usually "").
    pub fn new(mirror: Arc<Mirror>, code_root: &str, subdir: &str, path: &str) -> Result<CodeRepo> {
        if !has_path_prefix(path, code_root) {
            return Err(RepoError::NotFound(format!(
                "mismatched repo: found {code_root} for {path}"
            )));
        }
        let (mut path_prefix, path_major) = split_path_version(path)
            .ok_or_else(|| RepoError::NotFound(format!("invalid module path {path:?}")))?;
        if code_root == path {
            path_prefix = path;
        }
        let mut code_dir = String::new();
        if code_root != path {
            if !has_path_prefix(path_prefix, code_root) {
                return Err(RepoError::NotFound(format!(
                    "repository rooted at {code_root} cannot contain module {path}"
                )));
            }
            code_dir = path_prefix[code_root.len()..].trim_matches('/').to_string();
        }
        if !subdir.is_empty() {
            code_dir = [code_dir.as_str(), subdir]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
        }
        Ok(CodeRepo {
            mirror,
            mod_path: path.to_string(),
            code_root: code_root.to_string(),
            code_dir,
            path_prefix: path_prefix.to_string(),
            pseudo_major: path_major_prefix(path_major),
            path_major: path_major.to_string(),
            has_file: Default::default(),
            access: Vec::new(),
        })
    }

    fn tag_prefix(&self) -> String {
        if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        }
    }

    /// Reads `file` at `hash`, `None` when it does not exist.
    async fn read(&self, hash: &str, file: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.mirror.read_file(hash, file, MAX_SMALL_FILE).await?)
    }

    /// Whether `file` exists at `hash` (remembered per repository use).
    async fn exists(&self, hash: &str, file: &str) -> Result<bool> {
        let key = (hash.to_string(), file.to_string());
        if let Some(known) = self.has_file.locked().get(&key) {
            return Ok(*known);
        }
        let found = self.read(hash, file).await?.is_some();
        self.has_file.locked().insert(key, found);
        Ok(found)
    }

    /// The commit a remote tag points at, fetched if needed.
    async fn tag_commit(&self, tag: &str) -> Result<Commit> {
        self.code_stat(tag).await.map(|(c, _)| c)
    }

    /// `Versions`: the module's versions from the repository's tags.
    pub async fn versions(&self) -> Result<Vec<String>> {
        if self.mod_path.starts_with("gopkg.in/") && self.mod_path.ends_with("-unstable") {
            return Ok(Vec::new());
        }
        let p = self.tag_prefix();
        let refs = self.mirror.remote_refs(&self.access).await?;
        let (mut list, mut incompatible) = (Vec::new(), Vec::new());
        for name in refs.keys() {
            let Some(tag) = name.strip_prefix("refs/tags/") else {
                continue;
            };
            let Some(v) = tag.strip_prefix(p.as_str()) else {
                continue;
            };
            if v.is_empty() || semver::canonical(v).as_deref() != Some(v) || is_pseudo_version(v) {
                continue;
            }
            if !match_path_major(v, &self.path_major) {
                if self.code_dir.is_empty()
                    && self.path_major.is_empty()
                    && semver::major(v).is_some_and(|m| semver::compare(m, "v1").is_gt())
                {
                    incompatible.push(v.to_string());
                }
                continue;
            }
            list.push(v.to_string());
        }
        semver::sort_versions(&mut list);
        semver::sort_versions(&mut incompatible);
        if incompatible.is_empty() || !self.path_major.is_empty() {
            return Ok(list);
        }
        // appendIncompatibleVersions.
        if let Some(last) = list.last() {
            let c = self.tag_commit(last).await?;
            if self.exists(&c.hash, "go.mod").await? {
                return Ok(list);
            }
        }
        let mut i = 0;
        while i < incompatible.len() {
            let major = semver::major(&incompatible[i]).unwrap_or("").to_string();
            let mut j = i;
            while j < incompatible.len() && semver::major(&incompatible[j]) == Some(major.as_str())
            {
                j += 1;
            }
            let latest = &incompatible[j - 1];
            let c = self.tag_commit(latest).await?;
            let has_go_mod = self.exists(&c.hash, "go.mod").await?;
            if !has_go_mod {
                list.extend(
                    incompatible[i..j]
                        .iter()
                        .map(|v| format!("{v}+incompatible")),
                );
            }
            i = j;
        }
        Ok(list)
    }

    /// `codehost.Stat`: the commit `rev` names (a tag, branch, `HEAD`, a
    /// full or abbreviated hash) and the ref it was found by. Fetches from
    /// the remote only when the mirror does not have it yet.
    async fn code_stat(&self, rev: &str) -> Result<(Commit, Option<String>)> {
        match self.locate(rev).await? {
            Located::Local(commit, reference) => Ok((commit, reference)),
            Located::Fetched(fetched) => self.confirm(rev, fetched).await,
        }
    }

    /// [`CodeRepo::code_stat`] up to the fetch: the commit when the mirror
    /// has it already, else what was fetched (to be [`CodeRepo::confirm`]ed).
    async fn locate(&self, rev: &str) -> Result<Located> {
        let unknown = || RepoError::NotFound(format!("unknown revision {rev}"));
        let hash_like = rev.len() >= 7 && rev.len() <= 40 && all_hex(rev);
        let lower;
        let rev = if hash_like {
            lower = rev.to_ascii_lowercase();
            lower.as_str()
        } else if plain_ref_name(rev) {
            rev
        } else {
            // `v1.0.0~1`, `HEAD^`, `main@{1}`: git revision syntax, not names.
            return Err(unknown());
        };
        if hash_like {
            if let Some(c) = self.mirror.stat_local(rev).await? {
                if c.hash.starts_with(rev) {
                    return Ok(Located::Local(c, None));
                }
            }
        }
        // Tags do not move: a tag the mirror has needs no network.
        let tag_ref = format!("refs/tags/{rev}");
        if !hash_like && !rev.is_empty() && self.mirror.has_ref(&tag_ref) != Some(false) {
            if let Some(c) = self.mirror.stat_local(&tag_ref).await? {
                return Ok(Located::Local(c, Some(tag_ref)));
            }
        }
        let refs = self.mirror.remote_refs(&self.access).await?;
        let (reference, hash) = if let Some(h) = refs.get(&tag_ref) {
            (Some(tag_ref.clone()), h.clone())
        } else if let Some(h) = refs.get(&format!("refs/heads/{rev}")) {
            (Some(format!("refs/heads/{rev}")), h.clone())
        } else if rev == "HEAD" && refs.contains_key("HEAD") {
            (Some("HEAD".to_string()), refs["HEAD"].clone())
        } else if hash_like {
            let mut found: Option<(String, String)> = None;
            for (k, h) in refs.iter() {
                if h.starts_with(rev) {
                    match &found {
                        Some((_, fh)) if fh != h => {
                            return Err(RepoError::NotFound(format!("ambiguous revision {rev}")))
                        }
                        Some((fk, _)) if fk.as_str() <= k.as_str() => {}
                        _ => found = Some((k.clone(), h.clone())),
                    }
                }
            }
            match found {
                Some((k, h)) => (Some(k), h),
                // A (possibly abbreviated) hash in some branch's history.
                None => (None, rev.to_string()),
            }
        } else {
            return Err(unknown());
        };
        // A commit a ref names: that ref alone, at depth 1 (as the go
        // command does); anything else, or if that fails, everything.
        let named = reference.as_deref().filter(|_| hash.len() >= 40);
        let shallow = match named {
            Some(r) => {
                // A tag asked for by name: only it (see `fetch_one`).
                let follow_tags = hash_like || r != tag_ref;
                self.mirror
                    .fetch_one(r, &hash, follow_tags, &self.access)
                    .await
            }
            None => false,
        };
        Ok(Located::Fetched(Fetched {
            hash,
            reference,
            refs,
            shallow,
        }))
    }

    /// The end of [`CodeRepo::code_stat`]: the commit a shallow fetch
    /// brought, or, if it brought something else, everything fetched.
    async fn confirm(&self, rev: &str, fetched: Fetched) -> Result<(Commit, Option<String>)> {
        let unknown = || RepoError::NotFound(format!("unknown revision {rev}"));
        let Fetched {
            hash,
            reference,
            refs,
            shallow,
        } = fetched;
        let mut found = None;
        if shallow {
            // A branch moved since it was listed: its old commit is not
            // what the shallow fetch brought.
            found = self.mirror.stat_local(&hash).await?;
        }
        if found.is_none() {
            self.mirror.fetch(&refs, &self.access).await?;
            found = self.mirror.stat_local(&hash).await?;
        }
        let commit = found.ok_or_else(unknown)?;
        if !commit.hash.starts_with(&hash) {
            return Err(unknown());
        }
        let reference = reference.filter(|r| *r != commit.hash);
        Ok((commit, reference))
    }

    /// `Stat`: `.info` for `rev` (a version, tag, branch or hash).
    pub async fn stat(&self, rev: &str) -> Result<RevInfo> {
        let code_rev = self.rev_to_rev(rev);
        let (commit, reference) = self.code_stat(&code_rev).await?;
        self.convert(commit, reference, &code_rev, rev).await
    }

    /// `@latest`: the latest release, else the latest prerelease, else
    /// the default branch's head.
    pub async fn latest(&self) -> Result<RevInfo> {
        let versions = self.versions().await?;
        let pick = versions
            .iter()
            .rev()
            .find(|v| semver::prerelease(v).is_none())
            .or(versions.last());
        if let Some(v) = pick {
            return self.stat(v).await;
        }
        let (commit, _) = self.code_stat("HEAD").await?;
        let hash = commit.hash.clone();
        self.convert(commit, Some("HEAD".into()), &hash, "").await
    }

    fn rev_to_rev(&self, rev: &str) -> String {
        if !semver::is_valid(rev) {
            return rev.to_string();
        }
        if is_pseudo_version(rev) {
            return parse_pseudo_version(rev).map_or_else(|_| rev.to_string(), |p| p.revision);
        }
        let rev = rev.strip_suffix("+incompatible").unwrap_or(rev);
        format!("{}{rev}", self.tag_prefix())
    }

    /// Resolves a canonical `version` for `.mod` and `.zip`: its commit
    /// (checked like `Stat` for pseudo-versions) and the module's directory
    /// and go.mod there.
    pub async fn find_dir(&self, version: &str) -> Result<(Commit, String, Option<Vec<u8>>)> {
        let commit = self.version_commit(version).await?;
        let (dir, gomod) = self.find_dir_at(&commit, version).await?;
        Ok((commit, dir, gomod))
    }

    /// The commit of a canonical `version` (checked like `Stat` for a
    /// pseudo-version).
    async fn version_commit(&self, version: &str) -> Result<Commit> {
        if semver::canonical_module_version(version).as_deref() != Some(version) {
            return Err(RepoError::NotFound(format!(
                "version {version} is not canonical"
            )));
        }
        let code_rev = self.rev_to_rev(version);
        let (commit, reference) = self.code_stat(&code_rev).await?;
        if is_pseudo_version(version) {
            // The metadata in a pseudo-version must be right too.
            self.convert(commit.clone(), reference, &code_rev, version)
                .await?;
        }
        Ok(commit)
    }

    /// `GoMod`: the go.mod of `version`, or a `module` line when the
    /// repository has none.
    pub async fn go_mod(&self, version: &str) -> Result<Vec<u8>> {
        let (_, _, gomod) = self.find_dir(version).await?;
        Ok(gomod.unwrap_or_else(|| format!("module {}\n", self.mod_path).into_bytes()))
    }

    pub fn module_path(&self) -> &str {
        &self.mod_path
    }
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert!(has_path_prefix("github.com/a/b/c", "github.com/a/b"));
        assert!(!has_path_prefix("github.com/a/bc", "github.com/a/b"));
        assert_eq!(path_major_prefix("/v2"), "v2");
        assert_eq!(path_major_prefix(".v3-unstable"), "v3");
        assert!(is_major("example.com/m/v2", "/v2"));
        assert!(!is_major("example.com/m", "/v2"));
        assert!(is_major("example.com/m", ""));
    }

    #[test]
    fn revision_syntax_is_not_a_name() {
        for ok in ["main", "v1.0.0", "sub/v1.0.0", "feature/x-1", "HEAD"] {
            assert!(plain_ref_name(ok), "{ok}");
        }
        for bad in [
            "v1.0.0~1", "HEAD^", "main@{1}", "a..b", "-x", "a:b", "a b", "x.lock", "",
        ] {
            assert!(!plain_ref_name(bad), "{bad}");
        }
    }
}
