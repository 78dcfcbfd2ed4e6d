//! What the checks mean: the findings (`judge`), and the settings to use
//! instead (`fixes`), GOPROXY's working proxies fastest first.

use modproxy_module::pattern::PathPatterns;

use super::goenv::GoEnv;
use super::probe::{self, Report};
use super::{Check, Finding, Proxies, Severity, Topic};

pub(super) fn judge(
    env: &GoEnv,
    proxies: &Proxies,
    sumdb: Option<&str>,
    checks: &[Check],
    git: Option<Result<String, String>>,
    findings: &mut Vec<Finding>,
) {
    let mut say = |finding: Finding| findings.push(finding);
    if proxies.off {
        say(Finding::new(
            Severity::Broken,
            "GOPROXY=off: the go command may not download any module".into(),
        ));
    }
    let by = |what: &'static str| checks.iter().filter(move |c| c.what == what);
    for c in by("proxy").filter(|c| !c.report.ok()) {
        say(Finding::new(
            Severity::Warning,
            format!("proxy {} is not usable: {}", c.base, failure(&c.report)),
        ));
    }
    let git_ok = matches!(git, Some(Ok(_)));
    if let Some(Err(why)) = &git {
        say(Finding {
            topic: Some(Topic::GitMissing),
            ..Finding::new(
                Severity::Warning,
                format!("GOPROXY lists direct but git is missing: {why}"),
            )
        });
    }
    let working = by("proxy").any(|c| c.report.ok());
    if !working && !git_ok && !proxies.off {
        say(Finding::new(
            Severity::Broken,
            "no GOPROXY entry works: every download will fail or hang".into(),
        ));
    }
    match sumdb {
        None => say(Finding::new(
            Severity::Warning,
            "GOSUMDB=off: downloaded modules are not checked against the checksum database".into(),
        )),
        Some(name) => {
            let direct_ok = by("checksum database").any(|c| c.report.ok());
            let routed = by("checksum database via proxy")
                .any(|c| c.report.ok() && c.report.status == Some(200));
            if !direct_ok && !routed {
                say(Finding::new(Severity::Broken, format!(
                    "the checksum database {name} is unreachable and no proxy serves it (/sumdb/{name}/supported): the go command cannot verify new modules"
                )));
            } else if !direct_ok {
                say(Finding::new(
                    Severity::Info,
                    format!(
                        "the checksum database {name} is reached through a proxy (not directly)"
                    ),
                ));
            }
        }
    }
    for c in by("HTTP proxy") {
        let reached = c
            .report
            .steps
            .iter()
            .take_while(|s| s.ok())
            .any(|s| s.step == "connect");
        if !reached {
            say(Finding::new(
                Severity::Broken,
                format!(
                "HTTP(S)_PROXY {} is unreachable ({}): the go command sends every download there",
                c.base,
                failure(&c.report)
            ),
            ));
        }
    }
    let public = proxies.goproxy.iter().any(|u| is_public_proxy(u));
    for (var, consequence, applies) in [
        (
            "GONOPROXY",
            "are still fetched from a public proxy in GOPROXY",
            public,
        ),
        (
            "GONOSUMDB",
            "are still looked up in the checksum database (names leak, lookups fail)",
            sumdb.is_some(),
        ),
    ] {
        for pattern in missing_private(env, var).into_iter().filter(|_| applies) {
            say(Finding {
                topic: Some(Topic::NotExempt(var)),
                ..Finding::new(
                    Severity::Warning,
                    format!(
                        "GOPRIVATE pattern {pattern} is not in {var}: its modules {consequence}"
                    ),
                )
            });
        }
    }
}

/// Hosts of public module proxies: private module paths must not go there.
const PUBLIC_PROXIES: [&str; 5] = [
    "proxy.golang.org",
    "goproxy.io",
    "goproxy.cn",
    "proxy.golang.com.cn",
    "mirrors.aliyun.com",
];

fn is_public_proxy(url: &str) -> bool {
    probe::Target::parse(url).is_some_and(|t| PUBLIC_PROXIES.contains(&t.host.as_str()))
}

/// The GOPRIVATE patterns that `var` (GONOPROXY or GONOSUMDB) leaves out.
fn missing_private(env: &GoEnv, var: &str) -> Vec<String> {
    let Ok(exempt) = PathPatterns::parse(env.get(var)) else {
        return Vec::new();
    };
    env.get("GOPRIVATE")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !exempt.matches(p))
        .map(str::to_string)
        .collect()
}

/// The line that sets `var`: `go env -w`, unless the variable is set in
/// the environment, which `go env -w` cannot override.
fn set_line(var: &str, value: &str) -> String {
    if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
        format!("export {var}={value}")
    } else {
        format!("go env -w {var}={value}")
    }
}

/// The settings to use: GOPROXY's working proxies, fastest first.
pub(super) fn fixes(
    env: &GoEnv,
    proxies: &Proxies,
    checks: &[Check],
    findings: &[Finding],
) -> Vec<String> {
    let mut fix = Vec::new();
    let mut working: Vec<&Check> = checks
        .iter()
        .filter(|c| c.what == "proxy" && c.report.ok() && proxies.goproxy.contains(&c.base))
        .collect();
    working.sort_by(|a, b| a.report.total_ms().total_cmp(&b.report.total_ms()));
    let mut entries: Vec<String> = working.iter().map(|c| c.base.clone()).collect();
    let about = |topic| findings.iter().any(|f| f.topic == Some(topic));
    let git_missing = about(Topic::GitMissing);
    if proxies.direct && !git_missing {
        entries.push("direct".into());
    }
    // Each kept entry keeps the separator the user wrote after it.
    let mut goproxy = String::new();
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            let pipe = proxies.pipe_after.contains(&entries[i - 1]);
            goproxy.push(if pipe { '|' } else { ',' });
        }
        goproxy.push_str(entry);
    }
    if entries.is_empty() {
        fix.push(format!(
            "modproxy serve   # then: {}",
            set_line("GOPROXY", "http://127.0.0.1:3000")
        ));
    } else if goproxy != env.get("GOPROXY") {
        fix.push(set_line("GOPROXY", &goproxy));
    }
    if env.get("GOSUMDB") == "off" {
        fix.push(set_line("GOSUMDB", "sum.golang.org"));
    }
    for var in ["GONOPROXY", "GONOSUMDB"] {
        if about(Topic::NotExempt(var)) {
            let mut patterns: Vec<String> = env
                .get(var)
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            patterns.extend(missing_private(env, var));
            fix.push(set_line(var, &patterns.join(",")));
        }
    }
    fix
}

pub(super) fn failure(report: &Report) -> String {
    report
        .steps
        .iter()
        .find(|s| !s.ok())
        .map_or("failed".into(), |s| {
            format!("{} {}: {}", s.step, s.verdict, s.detail)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> GoEnv {
        GoEnv::of(vars)
    }

    #[test]
    fn fixes_go_by_what_a_finding_is_about_not_its_words() {
        let env = env(&[
            ("GOPROXY", "direct"),
            ("GOSUMDB", "sum.golang.org"),
            ("GOPRIVATE", "corp.example.com"),
            ("GONOPROXY", "corp.example.com"),
            ("GONOSUMDB", "corp.example.com"),
        ]);
        let proxies = Proxies {
            urls: Vec::new(),
            goproxy: Vec::new(),
            pipe_after: Vec::new(),
            direct: true,
            off: false,
        };
        let worded = |message: &str, topic| Finding {
            topic,
            ..Finding::new(Severity::Warning, message.into())
        };
        // Reworded: still about git being missing, so no `direct`.
        let missing = [worded("cannot run git", Some(Topic::GitMissing))];
        let fix = fixes(&env, &proxies, &[], &missing);
        assert!(fix.iter().any(|f| f.contains("modproxy serve")), "{fix:?}");
        // The old words on a finding about nothing: `direct` stays.
        let words = [worded(
            "git is missing; pattern x is not in GONOPROXY",
            None,
        )];
        assert!(fixes(&env, &proxies, &[], &words).is_empty());
        let exempt = [worded("reworded", Some(Topic::NotExempt("GONOSUMDB")))];
        let fix = fixes(&env, &proxies, &[], &exempt);
        assert!(
            fix.len() == 1 && fix[0].contains("GONOSUMDB=corp.example.com"),
            "{fix:?}"
        );
    }
}
