//! `modproxy doctor`: why is `go mod tidy` slow or hanging here?
//!
//! Checks every proxy the go command (GOPROXY) and modproxy (`--upstream`)
//! would use, and the checksum database directly and through each proxy,
//! step by step with a time bound per step ([`probe`]); reads the go
//! command's environment ([`goenv`]); flags the usual mistakes; and ends
//! with the settings to use, the working proxies ranked by measured time.
//! Then the module cache on this machine ([`modcache`]): what is broken in
//! it, and (`--repair`) only that removed. Exit code: 0 healthy, 1
//! degraded, 2 broken.

mod advice;
mod goenv;
mod modcache;
mod probe;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use modproxy_module::{ProxyList, ProxySpec, SumDbSetting};
use modproxy_service::upstream::redact;
use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::printer::{self, human_bytes};
use crate::settings::layers::Raw;
use advice::{fixes, judge};
use goenv::GoEnv;
use probe::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Info,
    Warning,
    Broken,
}

#[derive(Serialize)]
struct Finding {
    severity: Severity,
    message: String,
    /// What it is about, where a fix line depends on it (the fixes go
    /// by this, never by the message).
    #[serde(skip)]
    topic: Option<Topic>,
}

/// A finding some fix line answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    /// GOPROXY lists `direct`, but git cannot be run.
    GitMissing,
    /// A GOPRIVATE pattern is not in this variable (GONOPROXY, GONOSUMDB).
    NotExempt(&'static str),
}

impl Finding {
    fn new(severity: Severity, message: String) -> Finding {
        Finding {
            severity,
            message,
            topic: None,
        }
    }
}

/// Everything found, in the order it is printed.
#[derive(Serialize)]
struct Diagnosis {
    environment_source: String,
    environment: std::collections::BTreeMap<String, String>,
    checks: Vec<Check>,
    module_cache: Option<modcache::CacheReport>,
    findings: Vec<Finding>,
    fix: Vec<String>,
    verdict: &'static str,
}

#[derive(Serialize)]
struct Check {
    /// `proxy`, `checksum database`, `checksum database via proxy`,
    /// `HTTP proxy`; with ` (direct route)` for the comparison made when
    /// the go command's route goes through an HTTP proxy.
    what: String,
    /// The proxy or database checked (the report's URL is a file of it).
    base: String,
    /// `direct`, or `HTTPS_PROXY http://…` (how the go command gets there).
    route: String,
    #[serde(flatten)]
    report: Report,
}

/// `upstream`: modproxy's upstream list, when one is configured (checked
/// too).
/// `settings_problem`: why modproxy's own settings (`--config`) could not
/// be read, reported as a finding.
pub fn run(
    args: &DoctorArgs,
    upstream: Option<&Raw>,
    settings_problem: Option<String>,
) -> anyhow::Result<ExitCode> {
    let limit = args.timeout.max(Duration::from_millis(100));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let diagnosis = runtime.block_on(diagnose(args, upstream, settings_problem, limit));
    // A resolver thread stuck in a DNS lookup (timed out above) must not
    // hold the exit.
    runtime.shutdown_background();
    if args.json {
        printer::line(&serde_json::to_string_pretty(&diagnosis)?);
    } else {
        print(&diagnosis);
    }
    Ok(ExitCode::from(match diagnosis.verdict {
        "healthy" => 0,
        "degraded" => 1,
        _ => 2,
    }))
}

/// The proxies to check: GOPROXY's, then modproxy's upstreams; whether
/// `direct` is among them; and problems with the lists themselves.
struct Proxies {
    /// Every proxy to check, GOPROXY's first.
    urls: Vec<String>,
    /// The ones GOPROXY lists (the fix lines are about these).
    goproxy: Vec<String>,
    /// GOPROXY entries (URLs and `direct`) followed by `|` (fall through
    /// on any error), kept in the suggested line.
    pipe_after: Vec<String>,
    direct: bool,
    off: bool,
}

fn proxies(lists: &[(&str, &str)], findings: &mut Vec<Finding>) -> Proxies {
    let mut p = Proxies {
        urls: Vec::new(),
        goproxy: Vec::new(),
        pipe_after: Vec::new(),
        direct: false,
        off: false,
    };
    for (name, list) in lists {
        match ProxyList::parse(list) {
            Ok(list) => {
                for entry in list.entries {
                    if *name == "GOPROXY" && entry.fall_through_on_error {
                        p.pipe_after.push(match &entry.spec {
                            ProxySpec::Url(url) => url.clone(),
                            _ => "direct".into(),
                        });
                    }
                    match entry.spec {
                        ProxySpec::Url(url) => {
                            if *name == "GOPROXY" {
                                p.goproxy.push(url.clone());
                            }
                            if !p.urls.contains(&url) {
                                p.urls.push(url);
                            }
                        }
                        ProxySpec::Direct => p.direct = true,
                        ProxySpec::Off => p.off |= *name == "GOPROXY",
                    }
                }
            }
            Err(e) => findings.push(Finding::new(
                Severity::Broken,
                format!("{name} is invalid: {e}"),
            )),
        }
    }
    p
}

async fn diagnose(
    args: &DoctorArgs,
    upstream: Option<&Raw>,
    settings_problem: Option<String>,
    limit: Duration,
) -> Diagnosis {
    let env = goenv::read(limit.max(Duration::from_secs(10))).await;
    let mut findings = Vec::new();
    if let Some(problem) = settings_problem {
        findings.push(Finding::new(
            Severity::Broken,
            format!("modproxy's settings cannot be read: {problem}"),
        ));
    }
    let mut lists = vec![("GOPROXY", env.get("GOPROXY"))];
    let upstream_label = upstream.map(|raw| raw.origin.to_string());
    if let (Some(raw), Some(label)) = (upstream, &upstream_label) {
        lists.push((label.as_str(), raw.value.as_str()));
    }
    let proxies = proxies(&lists, &mut findings);
    let sumdb = match SumDbSetting::parse(env.get("GOSUMDB")) {
        Ok(SumDbSetting::Db(config)) => Some(config),
        Ok(SumDbSetting::Off) => None,
        Err(e) => {
            findings.push(Finding::new(
                Severity::Broken,
                format!("GOSUMDB is invalid: {e}"),
            ));
            None
        }
    };

    // All checks at once: each is bounded, so the whole is too.
    // (what, base, URL fetched)
    let mut jobs: Vec<(&'static str, String, String)> = proxies
        .urls
        .iter()
        .map(|u| ("proxy", u.clone(), format!("{u}/{}/@v/list", args.module)))
        .collect();
    if let (Some(db), false) = (&sumdb, args.no_network) {
        let direct = db
            .url
            .clone()
            .unwrap_or_else(|| format!("https://{}", db.name));
        jobs.push((
            "checksum database",
            direct.clone(),
            format!("{direct}/latest"),
        ));
        for u in &proxies.urls {
            let url = format!("{u}/sumdb/{}/supported", db.name);
            jobs.push(("checksum database via proxy", u.clone(), url));
        }
    }
    for name in ["HTTPS_PROXY", "HTTP_PROXY"] {
        let value = env.get(name);
        if args.no_network {
            jobs.clear();
            break;
        }
        if !value.is_empty() {
            let url = if value.contains("://") {
                value.to_string()
            } else {
                format!("http://{value}")
            };
            jobs.push(("HTTP proxy", url.clone(), url));
        }
    }
    // Each check takes the go command's route: through HTTPS_PROXY or
    // HTTP_PROXY where those apply, and then the direct route too, to
    // compare (an HTTP proxy itself is only asked for a connection).
    let mut routed: Vec<Routed> = Vec::new();
    for (what, base, url) in jobs {
        let via = (what != "HTTP proxy")
            .then(|| env.proxy_for(&url))
            .flatten();
        if via.is_some() {
            let direct = format!("{what} (direct route)");
            routed.push((direct, base.clone(), url.clone(), None));
        }
        routed.insert(
            routed.len() - usize::from(via.is_some()),
            (what.to_string(), base, url, via),
        );
    }
    let reports = futures_join(routed.iter().map(|(what, _, url, via)| {
        let depth = if what == "HTTP proxy" {
            probe::Depth::Connect
        } else {
            probe::Depth::Download
        };
        probe::check(
            url.clone(),
            depth,
            limit,
            via.as_ref().map(|(_, p)| p.clone()),
        )
    }))
    .await;
    let checks: Vec<Check> = routed
        .into_iter()
        .zip(reports)
        .map(|((what, base, _, via), report)| Check {
            what,
            base,
            route: via.map_or("direct".into(), |(var, proxy)| format!("{var} {proxy}")),
            report,
        })
        .collect();
    let git = if proxies.direct && !args.no_network {
        Some(git_version(limit).await)
    } else {
        None
    };

    if !args.no_network {
        judge(
            &env,
            &proxies,
            sumdb.as_ref().map(|d| d.name.as_str()),
            &checks,
            git,
            &mut findings,
        );
    }
    let fix = if args.no_network {
        Vec::new()
    } else {
        fixes(&env, &proxies, &checks, &findings)
    };
    let module_cache = module_cache(&env, args, &checks, &proxies, limit, &mut findings).await;
    let worst = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    // Nothing printed shows a password from a proxy URL.
    let checks = checks
        .into_iter()
        .map(|mut c| {
            c.base = redact(&c.base);
            c.route = redact(&c.route);
            c.report.url = redact(&c.report.url);
            c
        })
        .collect();
    let findings = findings
        .into_iter()
        .map(|f| Finding {
            message: redact(&f.message),
            ..f
        })
        .collect();
    Diagnosis {
        environment_source: env.source.clone(),
        environment: env
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), redact(v)))
            .collect(),
        checks,
        module_cache,
        findings,
        fix: fix.iter().map(|line| redact(line)).collect(),
        verdict: match worst {
            Severity::Info => "healthy",
            Severity::Warning => "degraded",
            Severity::Broken => "broken",
        },
    }
}

/// One check to run: (what, base, URL, the HTTP proxy it goes through as
/// `(variable, proxy URL)`).
type Routed = (String, String, String, Option<(&'static str, String)>);

/// Checks (and with `--repair`, repairs) the module cache; its findings.
async fn module_cache(
    env: &GoEnv,
    args: &DoctorArgs,
    checks: &[Check],
    proxies: &Proxies,
    limit: Duration,
    findings: &mut Vec<Finding>,
) -> Option<modcache::CacheReport> {
    let dir = std::path::PathBuf::from(env.get("GOMODCACHE"));
    if dir.as_os_str().is_empty() {
        return None;
    }
    let (sumdb, cache_limit, repair) = (
        env.get("GOSUMDB").to_string(),
        args.cache_timeout,
        args.repair,
    );
    let gopath = std::path::PathBuf::from(env.get("GOPATH").split(':').next().unwrap_or(""));
    let mut report =
        tokio::task::spawn_blocking(move || modcache::check(&dir, &gopath, &sumdb, cache_limit))
            .await
            .ok()?;
    // Against the first working proxy of GOPROXY: a tree head of another
    // database.
    let working = checks
        .iter()
        .find(|c| c.what == "proxy" && c.report.ok() && proxies.goproxy.contains(&c.base));
    if let (Some(proxy), false) = (working, args.no_network) {
        against_proxy(env, &proxy.base, limit, &mut report).await;
    }
    if repair {
        report = tokio::task::spawn_blocking(move || {
            modcache::repair(&mut report);
            report
        })
        .await
        .ok()?;
    }
    for problem in &report.problems {
        let fixed = !problem.remove.is_empty()
            && problem
                .remove
                .iter()
                .all(|p| report.removed.contains(p) || std::fs::symlink_metadata(p).is_err());
        let (severity, label) = if repair && fixed {
            (Severity::Info, "repaired")
        } else {
            (Severity::Warning, "broken")
        };
        findings.push(Finding::new(
            severity,
            format!(
                "module cache: {label}: {}: {}",
                problem.module, problem.what
            ),
        ));
    }
    for warning in &report.warnings {
        findings.push(Finding::new(
            Severity::Warning,
            format!("module cache: {warning}"),
        ));
    }
    if !report.problems.is_empty() && !repair {
        findings.push(Finding::new(
            Severity::Info,
            "module cache: `modproxy doctor --repair` removes only the broken entries (not `go clean -modcache`)".into(),
        ));
    }
    Some(report)
}

/// Compares the checksum tree head the go command keeps with the one
/// `proxy` serves now; a fork becomes a problem of `report`.
async fn against_proxy(
    env: &GoEnv,
    proxy: &str,
    limit: Duration,
    report: &mut modcache::CacheReport,
) {
    let fetch = |url: String| {
        let via = env.proxy_for(&url).map(|(_, p)| p);
        probe::check(url, probe::Depth::Download, limit, via)
    };
    let Some((name, cached, latest)) = report.sumdb_head.clone() else {
        return;
    };
    let Ok(SumDbSetting::Db(config)) = SumDbSetting::parse(env.get("GOSUMDB")) else {
        return;
    };
    let answer = fetch(format!("{proxy}/sumdb/{name}/latest")).await;
    let served = (answer.status == Some(200))
        .then(|| modproxy_service::sumdb::open_tree_note(&answer.body, &config.key).ok())
        .flatten();
    // Same size, another hash: two different trees, one of them forked.
    // Which one cannot be told here, so nothing is removed: the go
    // command's head is what lets it notice a fork.
    // (A larger tree's consistency needs the database's tiles: the go
    // command proves that itself on its next lookup.)
    if let Some(served) = served.filter(|s| s.n == cached.n && s.hash != cached.hash) {
        report.problems.push(modcache::Problem {
            module: latest.display().to_string(),
            what: format!(
                "the go command's tree head of {name} (size {}) is not the one {proxy} serves for the same size: one of them is a different or forked database; find out which before trusting either (--repair leaves it alone)",
                served.n
            ),
            remove: Vec::new(),
        });
    }
}

/// Runs futures concurrently, results in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a check panicked"));
    }
    out
}

/// `git --version`, or why there is none.
async fn git_version(limit: Duration) -> Result<String, String> {
    let mut command = tokio::process::Command::new("git");
    command.arg("--version").kill_on_drop(true);
    match tokio::time::timeout(limit, command.output()).await {
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(Ok(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Ok(Err(e)) => Err(format!("git is not usable: {e}")),
        Err(_) => Err(format!("git --version did not answer within {limit:?}")),
    }
}

fn print(d: &Diagnosis) {
    printer::line(&format!("go environment (from {}):", d.environment_source));
    for (name, value) in &d.environment {
        printer::line(&format!("  {name}={value}"));
    }
    for c in &d.checks {
        printer::line("");
        let route = if c.route == "direct" {
            String::new()
        } else {
            format!(" (through {})", c.route)
        };
        printer::line(&format!("{} {}{route}", c.what, c.report.url));
        for s in &c.report.steps {
            let ms = s.ms.map_or(String::new(), |ms| format!("{ms:.1} ms"));
            printer::line(&format!(
                "  {:<11} {:<8} {:>10}  {}",
                s.step, s.verdict, ms, s.detail
            ));
        }
        let verdict = if c.report.ok() { "ok" } else { "FAILED" };
        printer::line(&format!("  => {verdict} ({:.1} ms)", c.report.total_ms()));
    }
    if let Some(cache) = &d.module_cache {
        printer::line("");
        let free = cache
            .free_bytes
            .map_or(String::new(), |f| format!(", {} free", human_bytes(f)));
        printer::line(&format!(
            "module cache {}: {} in {} files{free}; {} module versions checked",
            cache.dir.display(),
            human_bytes(cache.bytes),
            cache.files,
            cache.checked
        ));
        for path in &cache.removed {
            printer::line(&format!("  removed {}", path.display()));
        }
        let again: Vec<&str> = cache
            .problems
            .iter()
            .filter(|p| p.module.contains('@') && !p.module.starts_with('/'))
            .map(|p| p.module.as_str())
            .collect();
        if !cache.removed.is_empty() && !again.is_empty() {
            printer::line(&format!(
                "  the next go command downloads again: {}",
                again.join(", ")
            ));
        }
    }
    printer::line("");
    for f in &d.findings {
        let label = match f.severity {
            Severity::Info => "note",
            Severity::Warning => "WARNING",
            Severity::Broken => "BROKEN",
        };
        printer::line(&format!("{label}: {}", f.message));
    }
    if !d.fix.is_empty() {
        printer::line("to fix:");
        for line in &d.fix {
            printer::line(&format!("  {line}"));
        }
    }
    printer::line(&format!("verdict: {}", d.verdict));
}
