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
