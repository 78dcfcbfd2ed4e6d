//! The environment the go command will use: `go env -json` when `go` is on
//! PATH (it knows `go env -w` settings and defaults), else the process
//! environment with Go's defaults. HTTP(S)_PROXY and NO_PROXY always come
//! from the process environment (the go command reads them there).

use std::collections::BTreeMap;
use std::time::Duration;

/// The go command's own settings that decide where modules come from.
const GO_VARS: [&str; 9] = [
    "GOMODCACHE",
    "GOPATH",
    "GOPROXY",
    "GOSUMDB",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOFLAGS",
    "GOINSECURE",
];
/// Proxy settings of Go's HTTP client (upper case wins, like Go).
const NET_VARS: [&str; 3] = ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"];

pub struct GoEnv {
    pub vars: BTreeMap<String, String>,
    /// Where `vars` came from: `go env -json` or the environment.
    pub source: String,
}

impl GoEnv {
    pub fn get(&self, name: &str) -> &str {
        self.vars.get(name).map_or("", String::as_str)
    }

    /// The HTTP proxy the go command sends a request for `url` through
    /// (Go's `http.ProxyFromEnvironment`): `HTTPS_PROXY` for https,
    /// `HTTP_PROXY` for http, none for loopback hosts or hosts `NO_PROXY`
    /// names. `(variable, proxy URL)`.
    pub fn proxy_for(&self, url: &str) -> Option<(&'static str, String)> {
        let target = super::probe::Target::parse(url)?;
        let var = if target.https {
            "HTTPS_PROXY"
        } else {
            "HTTP_PROXY"
        };
        let proxy = self.get(var);
        if proxy.is_empty() || is_loopback(&target.host) {
            return None;
        }
        let host = target.host.to_ascii_lowercase();
        for entry in self.get("NO_PROXY").split([',', ' ']).map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return None;
            }
            let (name, port) = split_port(entry);
            if port.is_some_and(|p| p != target.port) {
                continue;
            }
            if let Some((net, bits)) = name.split_once('/') {
                if in_cidr(&host, net, bits) {
                    return None;
                }
                continue;
            }
            let name = name.to_ascii_lowercase();
            let domain = name.trim_start_matches('.');
            let matches = if name.starts_with('.') {
                host.ends_with(&name) || host == domain
            } else {
                host == name || host.ends_with(&format!(".{name}"))
            };
            if matches {
                return None;
            }
        }
        let proxy = if proxy.contains("://") {
            proxy.to_string()
        } else {
            format!("http://{proxy}")
        };
        Some((var, proxy))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` (or `[v6]:port`) into its parts.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            return (host, port.parse().ok());
        }
        return (rest.trim_end_matches(']'), None);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (entry, None),
    }
}

fn in_cidr(host: &str, net: &str, bits: &str) -> bool {
    let (Ok(ip), Ok(net), Ok(bits)) = (
        host.parse::<std::net::IpAddr>(),
        net.parse::<std::net::IpAddr>(),
        bits.parse::<u32>(),
    ) else {
        return false;
    };
    match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Reads the environment, asking `go env` for at most `limit`.
pub async fn read(limit: Duration) -> GoEnv {
    let (mut vars, source) = match go_env(limit).await {
        Ok(vars) => (vars, "go env -json".to_string()),
        Err(why) => (from_process(), format!("the environment ({why})")),
    };
    for name in NET_VARS {
        let value = std::env::var(name)
            .or_else(|_| std::env::var(name.to_lowercase()))
            .unwrap_or_default();
        vars.insert(name.to_string(), value);
    }
    GoEnv { vars, source }
}

async fn go_env(limit: Duration) -> Result<BTreeMap<String, String>, String> {
    let mut command = tokio::process::Command::new("go");
    command
        .arg("env")
        .arg("-json")
        .args(GO_VARS)
        // Outside any module and with GOTOOLCHAIN=local: `go env` must not
        // go and download a toolchain (through the proxy being diagnosed).
        .env("GOTOOLCHAIN", "local")
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(limit, command.output()).await {
        Ok(Ok(out)) if out.status.success() => out,
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("go env failed: {}", err.trim()));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("go is not on PATH".into())
        }
        Ok(Err(e)) => return Err(format!("cannot run go: {e}")),
        Err(_) => return Err(format!("go env did not answer within {limit:?}")),
    };
    serde_json::from_slice(&output.stdout).map_err(|e| format!("go env printed no JSON: {e}"))
}

/// The variables with the go command's defaults.
fn from_process() -> BTreeMap<String, String> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let mut vars: BTreeMap<String, String> =
        GO_VARS.iter().map(|n| (n.to_string(), var(n))).collect();
    let gopath = match var("GOPATH") {
        p if p.is_empty() => format!("{}/go", var("HOME")),
        p => p.split(':').next().unwrap_or("").to_string(),
    };
    let defaults = [
        ("GOPATH", gopath.clone()),
        ("GOMODCACHE", format!("{gopath}/pkg/mod")),
        ("GOPROXY", "https://proxy.golang.org,direct".to_string()),
        ("GOSUMDB", "sum.golang.org".to_string()),
        ("GONOPROXY", var("GOPRIVATE")),
        ("GONOSUMDB", var("GOPRIVATE")),
    ];
    for (name, default) in defaults {
        if vars.get(name).is_none_or(String::is_empty) {
            vars.insert(name.to_string(), default);
        }
    }
    vars
}

#[cfg(test)]
impl GoEnv {
    /// An environment of these variables (for tests).
    pub fn of(vars: &[(&str, &str)]) -> GoEnv {
        GoEnv {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            source: "test".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> GoEnv {
        GoEnv::of(vars)
    }

    #[test]
    fn the_proxy_is_chosen_as_the_go_command_chooses_it() {
        let e = env(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("HTTP_PROXY", "http://plain.corp:3128"),
            ("NO_PROXY", ".internal.corp,git.corp:8443,10.0.0.0/8"),
        ]);
        let via = |url: &str| e.proxy_for(url).map(|(_, p)| p);
        assert_eq!(
            via("https://proxy.golang.org/x").as_deref(),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(
            via("http://mirror.example/x").as_deref(),
            Some("http://plain.corp:3128")
        );
        assert_eq!(via("https://a.internal.corp/"), None);
        assert_eq!(via("https://internal.corp/"), None);
        assert_eq!(via("https://git.corp:8443/"), None);
        assert!(via("https://git.corp/").is_some());
        assert_eq!(via("https://10.1.2.3/"), None);
        assert_eq!(via("http://127.0.0.1:3000/"), None);
        assert_eq!(via("http://localhost:3000/"), None);
        assert_eq!(
            env(&[("NO_PROXY", "*"), ("HTTPS_PROXY", "p:1")]).proxy_for("https://x.y/"),
            None
        );
        assert_eq!(env(&[]).proxy_for("https://x.y/"), None);
    }
}
