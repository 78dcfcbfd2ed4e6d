//! Module path → repository, as the go command finds it: the hosts it
//! knows (`github.com/OWNER/REPO`, `.git` qualifiers, …), else the
//! `<meta name="go-import">` tags at `https://PATH?go-get=1` (HTTPS
//! only, unless the path matches `--insecure`). Answers are remembered for
//! a while: a module's repository does not move often.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use modproxy_module::pattern::PathPatterns;
use modproxy_module::vcs;

use super::repo::RepoError;
use crate::sync::Locked;
use crate::upstream::address::{refused_in, Refused};
use crate::upstream::{redact, Http};

/// How long a resolved repository is reused.
const REMEMBER: Duration = Duration::from_secs(15 * 60);
/// The largest `?go-get=1` page read.
const PAGE_LIMIT: u64 = 1 << 20;

/// Where a module's code is.
#[derive(Debug, Clone)]
pub struct Root {
    /// The import path of the repository's root.
    pub root: String,
    /// What `git` fetches.
    pub url: String,
    /// The repository directory the import path's root maps to (a
    /// go-import tag's fourth field; usually "").
    pub subdir: String,
    /// `"git"`, or `"mod"`: `url` is a module proxy serving the module.
    pub vcs: String,
}

pub struct Resolver {
    insecure: PathPatterns,
    known: Mutex<HashMap<String, (Instant, Root)>>,
}

impl Resolver {
    pub fn new(insecure: PathPatterns) -> Resolver {
        Resolver {
            insecure,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The repository of `module`.
    pub async fn resolve(&self, http: &Http, module: &str) -> Result<Root, RepoError> {
        if let Some((at, root)) = self.known.locked().get(module) {
            if at.elapsed() < REMEMBER {
                return Ok(root.clone());
            }
        }
        let root = self.find(http, module).await?;
        self.known
            .locked()
            .insert(module.to_string(), (Instant::now(), root.clone()));
        Ok(root)
    }

    async fn find(&self, http: &Http, module: &str) -> Result<Root, RepoError> {
        let insecure = self.insecure.matches(module);
        let unrecognized =
            |e: String| RepoError::NotFound(format!("unrecognized import path {module:?}: {e}"));
        let root = match vcs::known_host(module, insecure) {
            Some(known) => known.map_err(|e| unrecognized(e.to_string()))?,
            None => {
                let imports = self.meta(http, module, insecure).await?;
                let found =
                    vcs::match_import(&imports, module).map_err(|e| unrecognized(e.to_string()))?;
                if found.prefix != module {
                    // The prefix's own page must agree.
                    let again = self.meta(http, &found.prefix, insecure).await?;
                    vcs::confirm(module, &found, &again)
                        .map_err(|e| unrecognized(e.to_string()))?;
                }
                vcs::repo_root_from_meta(module, &found).map_err(|e| unrecognized(e.to_string()))?
            }
        };
        // What a go-import tag may send git to: https and ssh; plain http
        // and git:// only where the operator said so. (An operator's own
        // `insteadOf` rules apply afterwards, inside git.)
        let scheme = root.repo.split_once("://").map_or("", |(s, _)| s);
        let allowed = match scheme {
            "https" | "ssh" | "git+ssh" => true,
            "http" | "git" => insecure,
            _ => false,
        };
        if !allowed {
            return Err(unrecognized(format!(
                "its repository {} uses {scheme}://, which is not allowed{}",
                redact(&root.repo),
                if matches!(scheme, "http" | "git") {
                    " (add the path to --insecure to allow it)"
                } else {
                    ""
                }
            )));
        }
        Ok(Root {
            root: root.root,
            url: root.repo,
            subdir: root.subdir.unwrap_or_default(),
            vcs: root.vcs.as_str().to_string(),
        })
    }

    /// The go-import tags of `path`'s `?go-get=1` page: the https page,
    /// or (insecure paths only) the http one when https cannot be reached.
    /// Any status counts as a page (the go command reads 404 pages too).
    async fn meta(
        &self,
        http: &Http,
        path: &str,
        insecure: bool,
    ) -> Result<Vec<vcs::MetaImport>, RepoError> {
        let urls = vcs::meta_urls(path, insecure)
            .map_err(|e| RepoError::NotFound(format!("unrecognized import path {path:?}: {e}")))?;
        let mut last = String::new();
        for url in &urls {
            match self.page(http, url).await {
                Err(Page::Refused(refused)) => {
                    return Err(RepoError::Refused(format!(
                        "unrecognized import path {path:?}: {refused}"
                    )))
                }
                Ok((status, page)) => {
                    let imports = vcs::parse_meta_imports(&page, true);
                    if imports.is_empty() && status != 200 {
                        let message =
                            format!("unrecognized import path {path:?}: reading {url}: {status}");
                        // A server failing is not an answer about the module.
                        return Err(if status >= 500 {
                            RepoError::Io(message)
                        } else {
                            RepoError::NotFound(message)
                        });
                    }
                    return Ok(imports);
                }
                Err(Page::Failed(e)) => last = format!("{url}: {e}"),
            }
        }
        let message = format!("unrecognized import path {path:?}: {last}");
        // A host that does not exist: the module does not (as the go
        // command's proxies answer); a lookup that failed for now, or
        // anything else, is a failure.
        let no_such_host = [
            "Name or service not known",
            "No address associated",
            "nodename nor servname",
        ]
        .iter()
        .any(|m| last.contains(m));
        Err(if no_such_host {
            RepoError::NotFound(message)
        } else {
            RepoError::Io(message)
        })
    }

    /// GETs `url` under the upstream bounds: status and at most
    /// [`PAGE_LIMIT`] bytes of the page.
    async fn page(&self, http: &Http, url: &str) -> Result<(u16, Vec<u8>), Page> {
        let policy = &http.policy;
        let request = http.get(url).map_err(Page::Refused)?;
        let mut response = tokio::time::timeout(policy.headers, request.send())
            .await
            .map_err(|_| Page::Failed(format!("no answer within {}s", policy.headers.as_secs())))?
            .map_err(|e| match refused_in(&e) {
                Some(refused) => Page::Refused(refused),
                None => Page::Failed(crate::error::chain(&e.without_url()).to_string()),
            })?;
        let status = response.status().as_u16();
        let mut page = Vec::new();
        let deadline = Instant::now() + policy.stall;
        while (page.len() as u64) < PAGE_LIMIT {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, response.chunk())
                .await
                .map_err(|_| Page::Failed("the page did not arrive in time".to_string()))?
                .map_err(|e| Page::Failed(crate::error::chain(&e.without_url()).to_string()))?;
            let Some(chunk) = chunk else { break };
            page.extend_from_slice(&chunk);
        }
        Ok((status, page))
    }
}

/// Why a `?go-get=1` page could not be had.
enum Page {
    /// The address policy does not allow it.
    Refused(Refused),
    Failed(String),
}

/// Whether the web page of a git remote whose listing failed answers 404
/// or 410 (the go command's test for a repository that does not exist,
/// since hosts ask for credentials rather than say so). Bounded by the
/// upstream headers timeout; any other outcome is "not known missing".
pub async fn web_says_missing(http: &Http, url: &str) -> bool {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return false;
    }
    let Ok(request) = http.get(url) else {
        return false;
    };
    let sent = tokio::time::timeout(http.policy.headers, request.send()).await;
    matches!(sent, Ok(Ok(r)) if matches!(r.status().as_u16(), 404 | 410))
}
