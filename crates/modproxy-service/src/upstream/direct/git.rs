//! Every git command modproxy runs goes through [`Git::run`]: one place
//! for the environment (the user's git configuration, credential helpers,
//! SSH keys and `.netrc` apply; prompts never do), the time limit (the
//! whole process group is killed on expiry, helpers such as
//! `git-remote-https` and `ssh` included), a transfer that stalls is
//! aborted by git itself, and the concurrency limits (one for commands
//! that talk to a remote, one for local reads).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
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

/// How long a git process group gets after TERM before KILL.
const KILL_AFTER: Duration = Duration::from_secs(2);

/// Signals every process of the group `leader` started (git and its
/// helpers); a group already gone is fine.
fn signal_group(leader: Option<u32>, signal: Signal) {
    let pid = leader.and_then(|id| Pid::from_raw(i32::try_from(id).ok()?));
    if let Some(pid) = pid {
        let _ = kill_process_group(pid, signal);
    }
}

/// Most output read from one git command (a remote's `ls-remote` of a
/// million refs is about 100 MB); past it the command is killed and fails.
pub const MAX_OUTPUT: usize = 256 << 20;
/// Most of git's error output kept for a message.
const MAX_STDERR: usize = 64 << 10;

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
    /// Wrote more than it was allowed to, and was killed.
    TooMuchOutput {
        repo: String,
        what: String,
        cap: usize,
    },
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
            GitError::TooMuchOutput {
                repo, what, cap, ..
            } => {
                write!(f, "{repo}: git {what} wrote more than {cap} bytes")
            }
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
    pub fn is_unknown_revision(&self) -> bool {
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
    network_jobs: Arc<Semaphore>,
    local_jobs: Arc<Semaphore>,
}

impl Git {
    pub fn new(timeout: Duration) -> Git {
        Git {
            timeout,
            network_jobs: Arc::new(Semaphore::new(NETWORK_JOBS)),
            local_jobs: Arc::new(Semaphore::new(LOCAL_JOBS)),
        }
    }

    /// Runs `git ARGS` in the bare repository `dir` (if any), feeding
    /// `stdin`; its standard output (at most [`MAX_OUTPUT`] bytes). `repo`
    /// names the remote in errors.
    pub async fn run(
        &self,
        repo: &str,
        dir: Option<&Path>,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, GitError> {
        self.run_capped(repo, dir, args, stdin, MAX_OUTPUT).await
    }

    /// [`Git::run`] reading at most `cap` bytes of output: a command that
    /// writes more is killed and fails with [`GitError::TooMuchOutput`].
    pub async fn run_capped(
        &self,
        repo: &str,
        dir: Option<&Path>,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        cap: usize,
    ) -> Result<Vec<u8>, GitError> {
        let what = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .copied()
            .unwrap_or("")
            .to_string();
        let network = matches!(what.as_str(), "fetch" | "ls-remote");
        let jobs = if network {
            &self.network_jobs
        } else {
            &self.local_jobs
        };
        let job = Arc::clone(jobs)
            .acquire_owned()
            .await
            .map_err(|e| GitError::Spawn {
                what: what.clone(),
                error: e.to_string(),
            })?;
        // git runs in a process group of its own: at the time limit the
        // whole group (git-remote-https, ssh, index-pack…) gets TERM, then
        // KILL 2 s later.
        let mut cmd = tokio::process::Command::new("git");
        cmd.process_group(0)
            // A transfer slower than 1 KB/s for 30 s is abandoned by git
            // itself, long before the overall limit.
            .args([
                "-c",
                "http.lowSpeedLimit=1000",
                "-c",
                "http.lowSpeedTime=30",
                // No housekeeping spawned after a fetch: the mirror is
                // modproxy's own, and an answer is waiting.
                "-c",
                "maintenance.auto=false",
                "-c",
                "gc.auto=0",
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
        let group = child.id();
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // git reads its input before it answers: no deadlock.
            tokio::spawn(async move {
                let _ = pipe.write_all(&input).await;
            });
        }
        // The process is supervised by a task of its own: it is always
        // waited for (no zombies), and killed at the time limit, also when
        // the request that wanted it is gone; its job slot is held until
        // it has ended.
        let limit = self.timeout;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let supervised = tokio::spawn(async move {
            let _job = job;
            let mut waited = tokio::spawn(async move {
                let (out, err) = tokio::join!(
                    read_capped(stdout, cap, Some(group)),
                    read_capped(stderr, MAX_STDERR, None)
                );
                let status = child.wait().await?;
                Ok::<_, std::io::Error>((status, out?, err?.0))
            });
            match tokio::time::timeout(limit, &mut waited).await {
                Ok(joined) => Some(joined),
                Err(_) => {
                    signal_group(group, Signal::TERM);
                    if tokio::time::timeout(KILL_AFTER, &mut waited).await.is_err() {
                        signal_group(group, Signal::KILL);
                    }
                    None
                }
            }
        });
        let timed_out = || GitError::Timeout {
            repo: redact(repo),
            what: what.clone(),
            after: self.timeout,
        };
        let (status, (stdout, overflowed), stderr) = match supervised.await {
            Ok(Some(Ok(Ok(output)))) => output,
            Ok(None) => return Err(timed_out()),
            Ok(Some(Ok(Err(e)))) => return Err(spawn_error(e)),
            Ok(Some(Err(e))) => return Err(spawn_error(std::io::Error::other(e))),
            Err(e) => return Err(spawn_error(std::io::Error::other(e))),
        };
        if overflowed {
            return Err(GitError::TooMuchOutput {
                repo: redact(repo),
                what,
                cap,
            });
        }
        match status.code() {
            Some(0) => Ok(stdout),
            // Killed by a signal (not ours: ours is reported above).
            None => Err(timed_out()),
            code => Err(GitError::Failed {
                repo: redact(repo),
                what,
                code,
                stderr: redact(&String::from_utf8_lossy(&stderr)),
            }),
        }
    }
}

/// Reads `pipe` to its end, keeping at most `cap` bytes; whether there
/// was more. With `kill` (a process group), a process that writes more
/// is killed rather than read on; without, the rest is read and dropped
/// (git's error output: a long one must not kill git by a closed pipe).
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
    kill: Option<Option<u32>>,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    let Some(pipe) = pipe else {
        return Ok((buf, false));
    };
    let mut pipe = pipe;
    (&mut pipe)
        .take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    let over = buf.len() > cap;
    if over {
        buf.truncate(cap);
        match kill {
            Some(group) => signal_group(group, Signal::KILL),
            None => {
                tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await?;
            }
        }
    }
    Ok((buf, over))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_past_the_cap_fails_the_command() {
        let git = Git::new(Duration::from_secs(30));
        let out = git.run_capped("r", None, &["version"], None, 1000).await;
        assert!(out.unwrap().starts_with(b"git version"));
        let out = git.run_capped("r", None, &["version"], None, 5).await;
        assert!(
            matches!(out, Err(GitError::TooMuchOutput { cap: 5, .. })),
            "{out:?}"
        );
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
