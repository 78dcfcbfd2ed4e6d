//! A bare mirror of one remote repository under the data directory,
//! fetched incrementally and shared by every version of every module in
//! it; every git command through [`Git`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::git::{Git, GitError};
use crate::sync::Locked;
use crate::upstream::redact;

/// How long remote refs (`git ls-remote`) are reused: one `go` command
/// asks for a list, `@latest` and a query within moments.
const REFS_FOR: Duration = Duration::from_secs(10);
/// A mirror's last use is written down at most this often.
const STAMP_EVERY: Duration = Duration::from_secs(600);

/// One commit: what `git log` says about it.
#[derive(Debug, Clone)]
pub struct Commit {
    pub hash: String,
    /// Commit time, Unix seconds.
    pub time: i64,
    /// Tags pointing at it.
    pub tags: Vec<String>,
}

/// The refs of a remote: `HEAD`, `refs/heads/*`, `refs/tags/*` (annotated
/// tags peeled) → commit hash.
pub type Refs = BTreeMap<String, String>;

/// A bare mirror of one remote repository.
#[derive(Debug)]
pub struct Mirror {
    pub url: String,
    dir: PathBuf,
    git: Arc<Git>,
    /// When its last use was stamped (seconds since the Unix epoch).
    stamped: AtomicU64,
    /// Remote refs and when they were listed.
    refs: Mutex<Option<(Instant, Arc<Refs>)>>,
    /// Held while fetching; the remote refs the last fetch brought in.
    fetched: tokio::sync::Mutex<Option<Arc<Refs>>>,
}

impl Mirror {
    pub fn new(url: String, dir: PathBuf, git: Arc<Git>) -> Mirror {
        Mirror {
            url,
            dir,
            git,
            stamped: AtomicU64::new(0),
            refs: Mutex::new(None),
            fetched: tokio::sync::Mutex::new(None),
        }
    }

    async fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.git.run(&self.url, Some(&self.dir), args, None).await
    }

    /// Creates the bare repository if it is not there yet (atomically: a
    /// half-made one is never used). Called with the fetch lock held.
    /// Whether it made one (then nothing fetched before is in it: the
    /// mirror may have been evicted by `--max-size` or `gc`).
    async fn ensure(&self) -> Result<bool, GitError> {
        if self.exists() {
            return Ok(false);
        }
        let tmp = self
            .dir
            .with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let tmp_str = tmp.to_string_lossy().into_owned();
        self.git
            .run(
                &self.url,
                None,
                &["init", "--bare", "--quiet", &tmp_str],
                None,
            )
            .await?;
        // As the go command does: archives are the tree as committed.
        let io = |e: std::io::Error| GitError::Spawn {
            what: "init".into(),
            error: e.to_string(),
        };
        std::fs::create_dir_all(tmp.join("info")).map_err(io)?;
        std::fs::write(
            tmp.join("info/attributes"),
            "\n* -export-subst -export-ignore\n",
        )
        .map_err(io)?;
        // What `gc` and `stats` call it (credentials hidden).
        std::fs::write(tmp.join("modproxy-remote"), redact(&self.url)).map_err(io)?;
        match std::fs::rename(&tmp, &self.dir) {
            Ok(()) => {}
            // Another process made it first.
            Err(_) if self.dir.join("HEAD").exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(io(e)),
        }
        Ok(true)
    }

    /// The remote's refs, listed at most every [`REFS_FOR`].
    pub async fn remote_refs(&self, access: &[String]) -> Result<Arc<Refs>, GitError> {
        if let Some((at, refs)) = &*self.refs.locked() {
            if at.elapsed() < REFS_FOR {
                return Ok(Arc::clone(refs));
            }
        }
        let mut args: Vec<&str> = access.iter().map(String::as_str).collect();
        args.extend(["ls-remote", "-q", "--end-of-options", &self.url]);
        let out = self.git.run(&self.url, None, &args, None).await?;
        let refs = Arc::new(parse_refs(&String::from_utf8_lossy(&out)));
        *self.refs.locked() = Some((Instant::now(), Arc::clone(&refs)));
        Ok(refs)
    }

    /// Fetches only `reference` (a tag, a branch or `HEAD`, at `hash` on
    /// the remote) at depth 1, as the go command first does: the objects
    /// of one commit, whatever the remote's history holds. Whether it
    /// worked (if not, the caller fetches everything). Like [`Self::fetch`],
    /// it runs to its end and never alongside another fetch. With
    /// `follow_tags`, the remote's tags on that commit come along (as the
    /// go command fetches); without, only `reference` (a tag asked for by
    /// its name: other tags on its commit are found in the remote's list
    /// when they matter, and the remote need not list all of its tags).
    pub async fn fetch_one(
        self: &Arc<Self>,
        reference: &str,
        hash: &str,
        follow_tags: bool,
        access: &[String],
    ) -> bool {
        let me = Arc::clone(self);
        let (reference, hash, access) = (reference.to_string(), hash.to_string(), access.to_vec());
        let fetched = tokio::spawn(async move {
            me.fetch_one_locked(&reference, &hash, follow_tags, &access)
                .await
        });
        match fetched.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "shallow fetch failed; fetching everything");
                false
            }
            Err(_) => false,
        }
    }

    async fn fetch_one_locked(
        &self,
        reference: &str,
        hash: &str,
        follow_tags: bool,
        access: &[String],
    ) -> Result<(), GitError> {
        let mut fetched = self.fetched.lock().await;
        if self.ensure().await? {
            // Made anew (evicted since): nothing fetched before is here.
            *fetched = None;
        }
        // Already here (a concurrent request fetched it, or it came with
        // another ref): a tag the mirror does not have is fetched without
        // a look, since tags do not move.
        let tag_missing =
            reference.starts_with("refs/tags/") && self.has_ref(reference) == Some(false);
        if !tag_missing && self.stat_local(hash).await?.is_some_and(|c| c.hash == hash) {
            return Ok(());
        }
        // `HEAD` is fetched by hash under a name of its own (which also
        // brings the remote's tags on that commit, when they are followed).
        let refspec = if reference == "HEAD" {
            format!("{hash}:refs/dummy")
        } else {
            format!("{reference}:{reference}")
        };
        let mut args: Vec<&str> = access.iter().map(String::as_str).collect();
        args.extend([
            // Protocol v2: version 1 can miss tags on the fetched commit
            // (go.dev/issue/56881), as the go command notes.
            "-c",
            "protocol.version=2",
            "fetch",
            "-f",
            "--depth=1",
            "--quiet",
        ]);
        if !follow_tags {
            args.push("--no-tags");
        }
        args.extend(["--end-of-options", &self.url, &refspec]);
        self.run_fetch(&args).await?;
        self.used();
        Ok(())
    }

    /// Fetches every branch and tag (and their history, refs deleted
    /// upstream pruned; a shallow mirror is deepened to the whole history)
    /// unless the last fetch already brought what the remote has now. Runs
    /// to the end even if the caller goes away, so a fetch is never cut
    /// short by a client and never runs twice at once.
    pub async fn fetch(
        self: &Arc<Self>,
        remote: &Arc<Refs>,
        access: &[String],
    ) -> Result<(), GitError> {
        let (me, remote, access) = (Arc::clone(self), Arc::clone(remote), access.to_vec());
        tokio::spawn(async move { me.fetch_locked(&remote, &access).await })
            .await
            .unwrap_or_else(|e| {
                Err(GitError::Spawn {
                    what: "fetch".into(),
                    error: e.to_string(),
                })
            })
    }

    async fn fetch_locked(&self, remote: &Arc<Refs>, access: &[String]) -> Result<(), GitError> {
        let mut fetched = self.fetched.lock().await;
        if self.ensure().await? {
            *fetched = None;
        }
        if fetched.as_ref().is_some_and(|f| f == remote) {
            return Ok(());
        }
        let mut args: Vec<&str> = access.iter().map(String::as_str).collect();
        args.extend([
            "fetch",
            "-f",
            "--prune",
            "--quiet",
            "--end-of-options",
            &self.url,
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ]);
        self.run_fetch(&args).await?;
        // Refs first, then the history below them, in a fetch of its own
        // (git before 2.24 cannot do both at once: go.dev/issue/34266).
        if self.dir.join("shallow").exists() {
            let mut args: Vec<&str> = access.iter().map(String::as_str).collect();
            args.extend([
                "fetch",
                "--unshallow",
                "-f",
                "--quiet",
                "--end-of-options",
                &self.url,
            ]);
            self.run_fetch(&args).await?;
        }
        *fetched = Some(Arc::clone(remote));
        self.used();
        Ok(())
    }

    /// Runs one fetch; a killed one leaves no lock files behind (they
    /// would fail every later fetch).
    async fn run_fetch(&self, args: &[&str]) -> Result<(), GitError> {
        let result = self.git(args).await.map(drop);
        if let Err(GitError::Timeout { .. }) = &result {
            remove_lock_files(&self.dir);
        }
        result
    }

    /// The bare repository is there (it is made on the first fetch, and
    /// may be evicted by `--max-size` or `gc` since).
    fn exists(&self) -> bool {
        self.dir.join("HEAD").exists()
    }

    /// Notes a use of the mirror for least-recently-used eviction: the
    /// time of its stamp file, written at most every [`STAMP_EVERY`].
    pub fn used(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.stamped.load(Ordering::Relaxed);
        if now.saturating_sub(last) < STAMP_EVERY.as_secs() || !self.exists() {
            return;
        }
        self.stamped.store(now, Ordering::Relaxed);
        let _ = std::fs::write(self.dir.join(crate::store::evict::MIRROR_STAMP), b"");
    }

    /// Whether the mirror has the ref `name` (`refs/tags/v1.2.3`), read
    /// from its files without running git: `None` when that cannot be told
    /// (a ref storage other than git's files, an unreadable file). A ref
    /// that is not there needs no `git log` to find it missing.
    pub fn has_ref(&self, name: &str) -> Option<bool> {
        if !self.exists() {
            return Some(false);
        }
        if self.dir.join("reftable").exists() || name.contains("..") || name.starts_with('/') {
            return None;
        }
        if self.dir.join(name).is_file() {
            return Some(true);
        }
        match std::fs::read(self.dir.join("packed-refs")) {
            Ok(packed) => Some(packed.split(|&b| b == b'\n').any(|line| {
                // `<hash> <name>`: SHA-1 or SHA-256 hashes.
                line.strip_suffix(name.as_bytes())
                    .is_some_and(|head| matches!(head.len(), 41 | 65) && head.ends_with(b" "))
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
            Err(_) => None,
        }
    }

    /// `rev` in the local mirror, or `None` when it does not have it.
    pub async fn stat_local(&self, rev: &str) -> Result<Option<Commit>, GitError> {
        if !self.exists() {
            return Ok(None);
        }
        let out = self
            .git(&[
                "-c",
                "log.showsignature=false",
                "log",
                "--no-decorate",
                "-n1",
                "--format=format:%H %ct %D",
                "--end-of-options",
                rev,
                "--",
            ])
            .await;
        let out = match out {
            Ok(out) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) if e.is_unknown_revision() => return Ok(None),
            Err(e) => return Err(e),
        };
        let fields: Vec<&str> = out.split_whitespace().collect();
        let (Some(hash), Some(time)) = (fields.first(), fields.get(1)) else {
            return Ok(None);
        };
        let Ok(time) = time.parse() else {
            return Ok(None);
        };
        // `%D` lists decorations: `HEAD -> main, tag: v1.2.3, tag: v1.2.4`.
        let mut tags: Vec<String> = fields
            .windows(2)
            .filter(|w| w[0] == "tag:")
            .map(|w| w[1].trim_end_matches(',').to_string())
            .collect();
        tags.sort();
        tags.dedup();
        Ok(Some(Commit {
            hash: hash.to_string(),
            time,
            tags,
        }))
    }

    /// The file at `path` in commit `hash`: `None` when there is none (or
    /// it is not a file). Larger than `limit` bytes is an error, found
    /// before anything is read.
    pub async fn read_file(
        &self,
        hash: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, GitError> {
        // One command: `<oid> <type> <size>` and the content, or `<spec>
        // missing`; output past the limit (plus that line) stops git.
        let spec = format!("{hash}:{path}");
        let cap = usize::try_from(limit).unwrap_or(usize::MAX - 4096) + spec.len() + 128;
        let out = self
            .git
            .run_capped(
                &self.url,
                Some(&self.dir),
                &["cat-file", "--batch"],
                Some(format!("{spec}\n").into_bytes()),
                cap,
            )
            .await;
        let too_large = || GitError::Failed {
            repo: redact(&self.url),
            what: "cat-file".into(),
            code: None,
            stderr: format!("{path} is larger than {limit} bytes"),
        };
        let out = match out {
            Ok(out) => out,
            Err(GitError::TooMuchOutput { .. }) => return Err(too_large()),
            Err(e) => return Err(e),
        };
        let header_end = out.iter().position(|&b| b == b'\n').unwrap_or(out.len());
        let header = String::from_utf8_lossy(&out[..header_end]);
        let fields: Vec<&str> = header.split_whitespace().collect();
        let [_, "blob", size] = fields[..] else {
            return Ok(None);
        };
        let size: u64 = size.parse().map_err(|_| too_large())?;
        if size > limit {
            return Err(too_large());
        }
        match out.get(header_end + 1..header_end + 1 + size as usize) {
            Some(body) => Ok(Some(body.to_vec())),
            None => Err(GitError::Failed {
                repo: redact(&self.url),
                what: "cat-file".into(),
                code: None,
                stderr: format!("{path}: output ended before its {size} bytes"),
            }),
        }
    }

    /// Tags reachable from `hash` (its history, itself included).
    pub async fn merged_tags(&self, hash: &str) -> Result<Vec<String>, GitError> {
        let out = self
            .git(&[
                "for-each-ref",
                "--format=%(refname)",
                &format!("--merged={hash}"),
                "refs/tags/",
            ])
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("refs/tags/"))
            .map(str::to_string)
            .collect())
    }

    /// Whether `tag` is an ancestor of (or is) `hash`.
    pub async fn descends_from(&self, hash: &str, tag: &str) -> Result<bool, GitError> {
        match self
            .git(&["merge-base", "--is-ancestor", "--", tag, hash])
            .await
        {
            Ok(_) => Ok(true),
            Err(GitError::Failed { code: Some(1), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes a tar archive of `subdir` ("" for everything) at `hash` to
    /// `out`, as the go command has git make its zips.
    pub async fn archive(&self, hash: &str, subdir: &str, out: &Path) -> Result<(), GitError> {
        let output = format!("--output={}", out.display());
        let mut args = vec![
            "-c",
            "core.autocrlf=input",
            "-c",
            "core.eol=lf",
            "archive",
            "--format=tar",
            "--prefix=prefix/",
            &output,
            "--end-of-options",
            hash,
        ];
        if !subdir.is_empty() {
            args.push(subdir);
        }
        self.git(&args).await.map(drop)
    }
}

/// Removes `*.lock` files a killed git left in the bare repository `dir`.
fn remove_lock_files(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name() != "objects" {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "lock") {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// `git ls-remote` output → refs, annotated tags peeled.
fn parse_refs(out: &str) -> Refs {
    let mut refs = Refs::new();
    let mut peeled = Vec::new();
    for line in out.lines() {
        let mut f = line.split_whitespace();
        let (Some(hash), Some(name), None) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name != "HEAD" && !name.starts_with("refs/heads/") && !name.starts_with("refs/tags/") {
            continue;
        }
        match name.strip_suffix("^{}") {
            Some(tag) => peeled.push((tag.to_string(), hash.to_string())),
            None => {
                refs.insert(name.to_string(), hash.to_string());
            }
        }
    }
    refs.extend(peeled);
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_tags_are_peeled() {
        let refs = parse_refs(
            "aaa\tHEAD\nbbb\trefs/heads/main\nccc\trefs/tags/v1.0.0\nddd\trefs/tags/v1.0.0^{}\neee\trefs/pull/1/head\n",
        );
        assert_eq!(refs["refs/tags/v1.0.0"], "ddd");
        assert_eq!(refs["HEAD"], "aaa");
        assert!(!refs.contains_key("refs/pull/1/head"));
    }
}
