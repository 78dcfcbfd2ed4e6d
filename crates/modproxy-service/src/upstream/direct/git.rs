//! Every git command modproxy runs goes through [`Git::run`]: one place
//! for the environment (the user's git configuration, credential helpers,
//! SSH keys and `.netrc` apply; prompts never do), the time limit (the
//! whole process group is killed on expiry, helpers such as
//! `git-remote-https` and `ssh` included) and the concurrency limit.
//!
//! A [`Mirror`] is one bare repository per remote under the data
//! directory, fetched incrementally and shared by every version of every
//! module in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

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
            GitError::Failed { repo, what, stderr } => {
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
        [
            "repository not found",
            "does not appear to be a git repository",
            "not found",
        ]
        .iter()
        .any(|m| s.contains(m))
    }
}

/// Runs git: time limit, concurrency limit, sanitized environment.
#[derive(Debug)]
pub struct Git {
    timeout: Duration,
    jobs: Semaphore,
    /// Commands that talked to a remote (`ls-remote`, `fetch`).
    pub network: AtomicU64,
}

impl Git {
    pub fn new(timeout: Duration, jobs: usize) -> Git {
        Git {
            timeout,
            jobs: Semaphore::new(jobs),
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
        if matches!(what.as_str(), "fetch" | "ls-remote") {
            self.network.fetch_add(1, Ordering::Relaxed);
        }
        let _job = self.jobs.acquire().await.map_err(|e| GitError::Spawn {
            what: what.clone(),
            error: e.to_string(),
        })?;
        // coreutils `timeout` runs git in a process group of its own and
        // signals the whole group on expiry: TERM, then KILL 2 s later.
        let mut cmd = tokio::process::Command::new("timeout");
        cmd.arg("--kill-after=2")
            .arg(format!("{}", self.timeout.as_secs().max(1)))
            .arg("git")
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
                "ssh -o ControlMaster=no -o BatchMode=yes",
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
            Some(_) => Err(GitError::Failed {
                repo: redact(repo),
                what,
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
    state: Mutex<MirrorState>,
}

#[derive(Debug, Default)]
struct MirrorState {
    /// The bare repository exists.
    ready: bool,
    /// Remote refs and when they were listed.
    refs: Option<(Instant, Arc<Refs>)>,
    /// The remote refs the last full fetch brought in.
    fetched: Option<Arc<Refs>>,
}

impl Mirror {
    pub fn new(url: String, dir: PathBuf, git: Arc<Git>) -> Mirror {
        Mirror {
            url,
            dir,
            git,
            state: Mutex::new(MirrorState::default()),
        }
    }

    async fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.git.run(&self.url, Some(&self.dir), args, None).await
    }

    /// Creates the bare repository if it is not there yet (atomically: a
    /// half-made one is never used).
    async fn ensure(&self, state: &mut MirrorState) -> Result<(), GitError> {
        if state.ready || self.dir.join("HEAD").exists() {
            state.ready = true;
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
        state.ready = true;
        Ok(())
    }

    /// The remote's refs, listed at most every [`REFS_FOR`].
    pub async fn remote_refs(&self) -> Result<Arc<Refs>, GitError> {
        let mut state = self.state.lock().await;
        if let Some((at, refs)) = &state.refs {
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
        state.refs = Some((Instant::now(), Arc::clone(&refs)));
        Ok(refs)
    }

    /// Fetches every branch and tag (and their history) unless the last
    /// full fetch already brought what the remote has now.
    pub async fn fetch(&self, remote: &Arc<Refs>) -> Result<(), GitError> {
        let mut state = self.state.lock().await;
        self.ensure(&mut state).await?;
        if state.fetched.as_ref().is_some_and(|f| f == remote) {
            return Ok(());
        }
        self.git(&[
            "fetch",
            "-f",
            "--quiet",
            "--end-of-options",
            &self.url,
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ])
        .await?;
        state.fetched = Some(Arc::clone(remote));
        Ok(())
    }

    /// Whether the bare repository exists (nothing can be local before).
    pub async fn exists(&self) -> bool {
        let mut state = self.state.lock().await;
        state.ready || {
            state.ready = self.dir.join("HEAD").exists();
            state.ready
        }
    }

    /// `rev` in the local mirror, or `None` when it does not have it.
    pub async fn stat_local(&self, rev: &str) -> Result<Option<Commit>, GitError> {
        if !self.exists().await {
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
            Err(GitError::Failed { .. }) => return Ok(None),
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
    /// it is not a file). At most `limit` bytes.
    pub async fn read_file(
        &self,
        hash: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let spec = format!("{hash}:{path}\n");
        let out = self
            .git
            .run(
                &self.url,
                Some(&self.dir),
                &["cat-file", "--batch"],
                Some(spec.into_bytes()),
            )
            .await?;
        // `<oid> <type> <size>\n<content>\n`, or `<spec> missing\n`.
        let Some(nl) = out.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let header = String::from_utf8_lossy(&out[..nl]).into_owned();
        let fields: Vec<&str> = header.split(' ').collect();
        let [_, "blob", size] = fields[..] else {
            return Ok(None);
        };
        let size: usize = size.parse().unwrap_or(0);
        if size as u64 > limit {
            return Err(GitError::Failed {
                repo: redact(&self.url),
                what: "cat-file".into(),
                stderr: format!("{path} is larger than {limit} bytes"),
            });
        }
        Ok(out.get(nl + 1..nl + 1 + size).map(<[u8]>::to_vec))
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
            Err(GitError::Failed { .. }) => Ok(false),
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
    use super::parse_refs;

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
