//! `direct`: modules fetched from version control (git), natively — no
//! `go` binary — with the answers the go command computes in direct mode
//! for the same repository: the same versions, the same pseudo-versions,
//! byte-for-byte the same go.mod, and zips with the same `h1:` hash.
//!
//! - [`resolve`]: module path → repository (known hosts, `?go-get=1`).
//! - [`git`]: the one git runner; [`mirror`]: one bare mirror per
//!   repository under `$data/.vcs/`, fetched incrementally, shared by
//!   every version.
//! - [`repo`]: the go command's `codeRepo` rules over a mirror.
//! - [`zip`]: the module zip from `git archive`, by the module zip rules.

mod git;
mod mirror;
mod repo;
mod resolve;
mod time;
mod zip;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use modproxy_module::path::{unescape_version, ModulePath};
use modproxy_module::pattern::PathPatterns;
use sha2::Digest;

use git::{Git, GitError};
use mirror::Mirror;
use repo::{CodeRepo, RepoError};
use resolve::Resolver;

use super::address::AddressPolicy;
use super::redact;
use super::{Fetched, Http, UpstreamError};

use crate::sync::Locked;

/// What `direct` needs from the settings.
#[derive(Debug, Clone)]
pub struct DirectSettings {
    /// Mirrors and scratch files: `$data/.vcs`.
    pub dir: PathBuf,
    /// Every git command is killed after this long.
    pub git_timeout: Duration,
    /// Hosts reached over plain HTTP (GOINSECURE syntax).
    pub insecure: PathPatterns,
    /// Module paths (`--private`) whose repositories may be internal.
    pub trusted: PathPatterns,
    /// Where other module paths may lead.
    pub addresses: Arc<AddressPolicy>,
}

/// Fetches module files from version control.
pub struct Direct {
    git: Arc<Git>,
    dir: PathBuf,
    mirrors: Mutex<HashMap<String, Arc<Mirror>>>,
    resolver: Resolver,
    trusted: PathPatterns,
    addresses: Arc<AddressPolicy>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("dir", &self.dir).finish()
    }
}

/// The name `direct` has in messages and metrics.
pub const NAME: &str = "direct";

impl Direct {
    pub fn new(settings: &DirectSettings) -> Direct {
        zip::remove_leftovers(&settings.dir);
        Direct {
            git: Arc::new(Git::new(settings.git_timeout)),
            dir: settings.dir.clone(),
            mirrors: Mutex::new(HashMap::new()),
            resolver: Resolver::new(settings.insecure.clone()),
            trusted: settings.trusted.clone(),
            addresses: Arc::clone(&settings.addresses),
        }
    }

    /// The mirror of the repository at `url`, shared by every module in
    /// it: one for `--private` modules (`trusted`, fetched with the
    /// operator's credentials) and another for public ones, so a public
    /// module path never reads what credentials fetched.
    fn mirror(&self, url: &str, trusted: bool) -> Arc<Mirror> {
        let key = if trusted {
            format!("{url}\0private")
        } else {
            url.to_string()
        };
        let mut mirrors = self.mirrors.locked();
        let entry = mirrors.entry(key.clone()).or_insert_with(|| {
            let digest = sha2::Sha256::digest(key.as_bytes());
            let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            Arc::new(Mirror::new(
                url.to_string(),
                self.dir.join(name),
                Arc::clone(&self.git),
            ))
        });
        Arc::clone(entry)
    }

    /// Answers the protocol file `path` (`MODULE/@v/list`, `MODULE/@latest`,
    /// `MODULE/@v/VERSION.info|.mod|.zip`) of `module`. `trusted` is the
    /// client for `--private` modules, `guarded` the one for the others
    /// (public addresses only, see [`crate::upstream::address`]).
    pub async fn get(
        &self,
        trusted: &Http,
        guarded: &Http,
        module: &ModulePath,
        path: &str,
    ) -> Result<Fetched, UpstreamError> {
        let is_trusted = self.trusted.matches(module.as_str());
        let http = if is_trusted { trusted } else { guarded };
        let tail = path
            .strip_prefix(module.escaped().as_str())
            .and_then(|t| t.strip_prefix('/'))
            .unwrap_or(path);
        let root = match self.resolver.resolve(http, module.as_str()).await {
            // A go-import tag of kind `mod` names a module proxy serving it.
            Ok(root) if root.vcs == "mod" => {
                let proxy = super::ProxyUpstream::new(&root.url, &http.policy);
                return proxy.get(http, path).await;
            }
            Ok(root) => Ok(root),
            Err(e) => Err(e),
        };
        let answer = match &root {
            Ok(root) if is_trusted => self.answer(http, module, root, None, tail).await,
            Ok(root) => match self.remote_access(&root.url, http).await {
                Ok(access) => self.answer(http, module, root, Some(access), tail).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e.clone()),
        };
        let not_found = |message: String| UpstreamError::NotFound {
            upstream: NAME.into(),
            message,
        };
        match answer {
            Ok(fetched) => Ok(fetched),
            Err(RepoError::NotFound(message)) => Err(not_found(message)),
            Err(RepoError::Git(e)) if e.is_missing_repository() => Err(not_found(e.to_string())),
            Err(RepoError::Git(e)) => {
                // As the go command does: a remote git cannot list is
                // missing when its web address answers 404 (hosts ask for
                // credentials rather than say so).
                if let Ok(root) = &root {
                    if e.asked_for_credentials() && resolve::web_says_missing(http, &root.url).await
                    {
                        return Err(not_found(e.to_string()));
                    }
                }
                Err(UpstreamError::Vcs {
                    timed_out: matches!(e, GitError::Timeout { .. }),
                    message: e.to_string(),
                })
            }
            Err(RepoError::Io(message)) => Err(UpstreamError::Vcs {
                timed_out: false,
                message,
            }),
            Err(RepoError::Refused(message)) => Err(UpstreamError::Refused {
                upstream: NAME.into(),
                message,
            }),
        }
    }

    /// The `-c` options git reaches a public module's remote with: no
    /// redirects, and, for http(s), the addresses its host resolves to now
    /// (checked by the address policy) pinned, so a name that rebinds to
    /// an internal address between the check and git's own lookup gets
    /// nowhere. An ssh host is checked the same way (ssh resolves it
    /// again itself).
    async fn remote_access(&self, url: &str, http: &Http) -> Result<Vec<String>, RepoError> {
        // No redirects, and none of the operator's credential helpers: a
        // public module path must not get what they would unlock.
        let mut access: Vec<String> = [
            "-c",
            "http.followRedirects=false",
            "-c",
            "credential.helper=",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let refused = |why: String| RepoError::Refused(format!("git: {why}"));
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            refused(format!(
                "{} is not a URL whose host can be checked ({e})",
                redact(url)
            ))
        })?;
        let Some(host) = parsed.host_str() else {
            return Err(refused(format!("{} names no host to check", redact(url))));
        };
        let scheme = parsed.scheme();
        let port = parsed.port_or_known_default().unwrap_or(match scheme {
            "git" => 9418,
            _ => 22,
        });
        // Only http(s) can be pinned to the checked addresses: for ssh
        // and git://, any internal address among them refuses the host.
        let pinnable = matches!(scheme, "http" | "https");
        let resolved = self
            .addresses
            .resolve(host, port, http.policy.connect, !pinnable)
            .await
            .map_err(|r| refused(r.to_string()))?;
        if let (Some(addrs), true) = (resolved, pinnable) {
            if !host.starts_with('[') && host.parse::<std::net::IpAddr>().is_err() {
                let pinned: Vec<String> = addrs
                    .iter()
                    .map(|a| match a.ip() {
                        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                        v4 => v4.to_string(),
                    })
                    .collect();
                access.push("-c".into());
                access.push(format!(
                    "http.curloptResolve={host}:{port}:{}",
                    pinned.join(",")
                ));
            }
        }
        Ok(access)
    }

    async fn answer(
        &self,
        http: &Http,
        module: &ModulePath,
        root: &resolve::Root,
        // `None`: a `--private` module; else the public one's git options.
        access: Option<Vec<String>>,
        tail: &str,
    ) -> Result<Fetched, RepoError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| RepoError::Io(format!("cannot create {}: {e}", self.dir.display())))?;
        let mirror = self.mirror(&root.url, access.is_none());
        mirror.used();
        let mut repo = CodeRepo::new(mirror, &root.root, &root.subdir, module.as_str())?;
        repo.access = access.unwrap_or_default();
        let text = |s: String| Ok(Fetched::local(http, NAME, Bytes::from(s)));
        if tail == "@v/list" {
            let mut list = repo.versions().await?.join("\n");
            if !list.is_empty() {
                list.push('\n');
            }
            return text(list);
        }
        if tail == "@latest" {
            let info = repo.latest().await?;
            return text(info.json(&root.url, &repo.code_dir));
        }
        let file = tail
            .strip_prefix("@v/")
            .ok_or_else(|| RepoError::NotFound(format!("not a module file: {tail}")))?;
        let (escaped, ext) = file
            .rsplit_once('.')
            .ok_or_else(|| RepoError::NotFound(format!("not a module file: {tail}")))?;
        let version = unescape_version(escaped)
            .map_err(|e| RepoError::NotFound(format!("invalid version {escaped}: {e}")))?;
        match ext {
            "info" => {
                let info = repo.stat(&version).await?;
                text(info.json(&root.url, &repo.code_dir))
            }
            "mod" => Ok(Fetched::local(
                http,
                NAME,
                Bytes::from(repo.go_mod(&version).await?),
            )),
            "zip" => {
                let file = zip::build(&repo, &version, &self.dir).await?;
                Fetched::local_file(http, NAME, file)
                    .map_err(|e| RepoError::Io(format!("reading the zip built here: {e}")))
            }
            _ => Err(RepoError::NotFound(format!("not a module file: {tail}"))),
        }
    }
}
