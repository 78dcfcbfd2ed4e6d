//! Every git command modproxy runs goes through [`Git::run`]: one place
//! for the environment (the user's git configuration, credential helpers,
//! SSH keys and `.netrc` apply; prompts never do), the time limit (the
//! whole process group is killed on expiry, helpers such as
//! `git-remote-https` and `ssh` included), a transfer that stalls is
//! aborted by git itself, and the concurrency limits (one for commands
//! that talk to a remote, one for local reads).
//!
//! A [`Mirror`] is one bare repository per remote under the data
//! directory, fetched incrementally and shared by every version of every
//! module in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::upstream::redact;

/// Environment variables that would point git somewhere else than the
/// mirror it is run on.
const SCRUBBED: [&str; 8] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_COMMON_DIR",
];

/// How long remote refs (`git ls-remote`) are reused: one `go` command
/// asks for a list, `@latest` and a query within moments.
const REFS_FOR: Duration = Duration::from_secs(10);

/// Commands that talk to a remote at once, and local reads at once.
const NETWORK_JOBS: usize = 4;
const LOCAL_JOBS: usize = 8;

/// Why a git command failed.
#[derive(Debug, Clone)]
pub enum GitError {
    /// Killed at the time limit.
    Timeout {
        repo: String,
        what: String,
        after: Duration,
    },
    /// Exited with an error: git's own message.
    Failed {
        repo: String,
        what: String,
        code: Option<i32>,
        stderr: String,
    },
    /// Could not be started at all.
    Spawn { what: String, error: String },
}

impl std::fmt::Display for GitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitError::Timeout { repo, what, after } => {
                write!(f, "{repo}: git {what} killed after {}s", after.as_secs())
            }
            GitError::Failed {
                repo, what, stderr, ..
            } => {
                write!(f, "{repo}: git {what} failed: {}", stderr.trim())
            }
            GitError::Spawn { what, error } => write!(f, "cannot run git {what}: {error}"),
        }
    }
}

impl GitError {
    /// git said the repository does not exist (rather than that it could
    /// not be reached): a "not found" for the client.
    pub fn is_missing_repository(&self) -> bool {
        let GitError::Failed { stderr, .. } = self else {
            return false;
        };
        let s = stderr.to_ascii_lowercase();
        s.contains("repository not found")
            || s.contains("does not appear to be a git repository")
            || s.contains("could not be found")
            || (s.contains("repository '") && s.contains("' not found"))
    }

    /// git wanted credentials it could not get (prompts are off): what
    /// hosts answer for a private or missing repository.
    pub fn asked_for_credentials(&self) -> bool {
        let GitError::Failed { stderr, .. } = self else {
            return false;
        };
        stderr.contains("could not read Username")
            || stderr.contains("terminal prompts disabled")
            || stderr.contains("Authentication failed")
    }

    /// git could not resolve a revision name (exit 128 with one of its
    /// messages for that), as opposed to a broken repository.
    fn is_unknown_revision(&self) -> bool {
        let GitError::Failed { stderr, code, .. } = self else {
            return false;
        };
        *code == Some(128)
            && [
                "unknown revision",
                "bad revision",
                "ambiguous argument",
                "bad object",
            ]
            .iter()
            .any(|m| stderr.contains(m))
    }
}

/// Runs git: time limit, concurrency limits, sanitized environment.
#[derive(Debug)]
pub struct Git {
    timeout: Duration,
    network_jobs: Semaphore,
    local_jobs: Semaphore,
    /// Commands that talked to a remote (`ls-remote`, `fetch`).
    pub network: AtomicU64,
}

impl Git {
    pub fn new(timeout: Duration) -> Git {
        Git {
            timeout,
            network_jobs: Semaphore::new(NETWORK_JOBS),
            local_jobs: Semaphore::new(LOCAL_JOBS),
            network: AtomicU64::new(0),
        }
    }

    /// Runs `git ARGS` in the bare repository `dir` (if any), feeding
    /// `stdin`; its standard output. `repo` names the remote in errors.
    pub async fn run(
        &self,
        repo: &str,
        dir: Option<&Path>,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, GitError> {
        let what = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .copied()
            .unwrap_or("")
            .to_string();
        let network = matches!(what.as_str(), "fetch" | "ls-remote");
        let jobs = if network {
            self.network.fetch_add(1, Ordering::Relaxed);
            &self.network_jobs
        } else {
            &self.local_jobs
        };
        let _job = jobs.acquire().await.map_err(|e| GitError::Spawn {
            what: what.clone(),
            error: e.to_string(),
        })?;
        // coreutils `timeout` runs git in a process group of its own and
        // signals the whole group on expiry: TERM, then KILL 2 s later.
        let mut cmd = tokio::process::Command::new("timeout");
        cmd.arg("--kill-after=2")
            .arg(format!("{}", self.timeout.as_secs().max(1)))
            .arg("git")
            // A transfer slower than 1 KB/s for 30 s is abandoned by git
            // itself, long before the overall limit.
            .args([
                "-c",
                "http.lowSpeedLimit=1000",
                "-c",
                "http.lowSpeedTime=30",
            ])
            .args(args);
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("LC_ALL", "C");
        if std::env::var_os("GIT_SSH").is_none() && std::env::var_os("GIT_SSH_COMMAND").is_none() {
            cmd.env(
                "GIT_SSH_COMMAND",
                "ssh -o ControlMaster=no -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=2",
            );
        }
        if let Some(dir) = dir {
            cmd.env("GIT_DIR", dir).current_dir(dir);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let spawn_error = |e: std::io::Error| GitError::Spawn {
            what: what.clone(),
            error: e.to_string(),
        };
        let mut child = cmd.spawn().map_err(spawn_error)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // git reads its input before it answers: no deadlock.
            tokio::spawn(async move {
                let _ = pipe.write_all(&input).await;
            });
        }
        // The process is always waited for (no zombies), even when the
        // request that wanted it is gone: the wait runs on its own task.
        let waited = tokio::spawn(child.wait_with_output());
        let backstop = self.timeout + Duration::from_secs(10);
        let output = match tokio::time::timeout(backstop, waited).await {
            Ok(Ok(Ok(output))) => output,
            Ok(Ok(Err(e))) => return Err(spawn_error(e)),
            Ok(Err(e)) => return Err(spawn_error(std::io::Error::other(e))),
            Err(_) => {
                return Err(GitError::Timeout {
                    repo: redact(repo),
                    what,
                    after: backstop,
                })
            }
        };
        match output.status.code() {
            Some(0) => Ok(output.stdout),
            // 124: timed out (TERM), 137: killed after ignoring TERM.
            Some(124 | 137) | None => Err(GitError::Timeout {
                repo: redact(repo),
                what,
                after: self.timeout,
            }),
            code => Err(GitError::Failed {
                repo: redact(repo),
                what,
                code,
                stderr: redact(&String::from_utf8_lossy(&output.stderr)),
            }),
        }
    }
}

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
    /// The bare repository exists.
    ready: AtomicBool,
    /// Remote refs and when they were listed.
    refs: Mutex<Option<(Instant, Arc<Refs>)>>,
    /// Held while fetching; the remote refs the last fetch brought in.
    fetched: tokio::sync::Mutex<Option<Arc<Refs>>>,
}

impl Mirror {
    pub fn new(url: String, dir: PathBuf, git: Arc<Git>) -> Mirror {
        let ready = dir.join("HEAD").exists();
        Mirror {
            url,
            dir,
            git,
            ready: AtomicBool::new(ready),
            refs: Mutex::new(None),
            fetched: tokio::sync::Mutex::new(None),
        }
    }

    async fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.git.run(&self.url, Some(&self.dir), args, None).await
    }

    /// Creates the bare repository if it is not there yet (atomically: a
    /// half-made one is never used). Called with the fetch lock held.
    async fn ensure(&self) -> Result<(), GitError> {
        if self.ready.load(Ordering::Acquire) || self.dir.join("HEAD").exists() {
            self.ready.store(true, Ordering::Release);
            return Ok(());
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
        match std::fs::rename(&tmp, &self.dir) {
            Ok(()) => {}
            // Another process made it first.
            Err(_) if self.dir.join("HEAD").exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(io(e)),
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The remote's refs, listed at most every [`REFS_FOR`].
    pub async fn remote_refs(&self) -> Result<Arc<Refs>, GitError> {
        if let Some((at, refs)) = &*self.refs.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < REFS_FOR {
                return Ok(Arc::clone(refs));
            }
        }
        let out = self
            .git
            .run(
                &self.url,
                None,
                &["ls-remote", "-q", "--end-of-options", &self.url],
                None,
            )
            .await?;
        let refs = Arc::new(parse_refs(&String::from_utf8_lossy(&out)));
        *self.refs.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), Arc::clone(&refs)));
        Ok(refs)
    }

    /// Fetches every branch and tag (and their history, refs deleted
    /// upstream pruned) unless the last fetch already brought what the
    /// remote has now. Runs to the end even if the caller goes away, so a
    /// fetch is never cut short by a client and never runs twice at once.
    pub async fn fetch(self: &Arc<Self>, remote: &Arc<Refs>) -> Result<(), GitError> {
        let (me, remote) = (Arc::clone(self), Arc::clone(remote));
        tokio::spawn(async move { me.fetch_locked(&remote).await })
            .await
            .unwrap_or_else(|e| {
                Err(GitError::Spawn {
                    what: "fetch".into(),
                    error: e.to_string(),
                })
            })
    }

    async fn fetch_locked(&self, remote: &Arc<Refs>) -> Result<(), GitError> {
        let mut fetched = self.fetched.lock().await;
        self.ensure().await?;
        if fetched.as_ref().is_some_and(|f| f == remote) {
            return Ok(());
        }
        let result = self
            .git(&[
                "fetch",
                "-f",
                "--prune",
                "--quiet",
                "--end-of-options",
                &self.url,
                "refs/heads/*:refs/heads/*",
                "refs/tags/*:refs/tags/*",
            ])
            .await;
        if let Err(e) = result {
            // A killed fetch can leave git's lock files behind, which
            // would fail every later one.
            if matches!(e, GitError::Timeout { .. }) {
                remove_lock_files(&self.dir);
            }
            return Err(e);
        }
        *fetched = Some(Arc::clone(remote));
        Ok(())
    }

    /// `rev` in the local mirror, or `None` when it does not have it.
    pub async fn stat_local(&self, rev: &str) -> Result<Option<Commit>, GitError> {
        if !self.ready.load(Ordering::Acquire) {
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
        let spec = format!("{hash}:{path}");
        let check = self
            .git
            .run(
                &self.url,
                Some(&self.dir),
                &["cat-file", "--batch-check"],
                Some(format!("{spec}\n").into_bytes()),
            )
            .await?;
        // `<oid> <type> <size>`, or `<spec> missing`.
        let check = String::from_utf8_lossy(&check).into_owned();
        let fields: Vec<&str> = check.split_whitespace().collect();
        let [_, "blob", size] = fields[..] else {
            return Ok(None);
        };
        if size.parse::<u64>().map_or(true, |n| n > limit) {
            return Err(GitError::Failed {
                repo: redact(&self.url),
                what: "cat-file".into(),
                code: None,
                stderr: format!("{path} is larger than {limit} bytes"),
            });
        }
        self.git(&["cat-file", "blob", "--end-of-options", &spec])
            .await
            .map(Some)
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

    #[test]
    fn missing_repositories_are_told_from_other_failures() {
        let failed = |stderr: &str| GitError::Failed {
            repo: "r".into(),
            what: "ls-remote".into(),
            code: Some(128),
            stderr: stderr.into(),
        };
        assert!(failed(
            "remote: Repository not found.\nfatal: repository 'https://github.com/a/b/' not found"
        )
        .is_missing_repository());
        assert!(
            failed("fatal: '/x' does not appear to be a git repository").is_missing_repository()
        );
        assert!(!failed("sh: 1: ssh: not found").is_missing_repository());
        assert!(
            !failed("fatal: unable to access 'https://h/': Could not resolve host: h")
                .is_missing_repository()
        );
    }
}
