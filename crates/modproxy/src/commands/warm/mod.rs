//! `modproxy warm INPUT…`: fetch everything a build needs into the store,
//! so the build works with every upstream gone. Through a running proxy
//! (`--proxy URL`), or into the local store by a proxy started in this
//! process on a loopback port (same settings as `serve`; safe while a
//! `serve` runs on the same directory).

mod inputs;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use modproxy_service::server::Server;
use modproxy_service::settings::PrefetchMode;
use modproxy_service::warm::{Got, Outcome, Plan, Warmer};

use crate::cli::WarmArgs;
use crate::printer;
use crate::printer::human_bytes;
use modproxy_service::Settings;

pub fn run(args: &WarmArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let go_version = match &args.go_version {
        Some(v) => Some(v.trim_start_matches("go").to_string()),
        None => local_go_version(),
    };
    let toolchains = inputs::Toolchains {
        platforms: &args.platforms(),
        go_version: go_version.as_deref(),
    };
    let plan = inputs::plan(&args.inputs, toolchains)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcomes = runtime.block_on(async {
        match &args.proxy {
            Some(url) => warm(url, args, plan).await,
            None => warm_local(args, settings, plan).await,
        }
    })?;
    // A resolver thread stuck in a DNS lookup must not hold the exit.
    runtime.shutdown_background();
    let summary = Summary::of(&outcomes);
    summary.print(args.json, &outcomes);
    Ok(if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The version of the go command on PATH (`1.22.4`), if it answers
/// `go env GOVERSION` within 10 s.
fn local_go_version() -> Option<String> {
    let mut child = std::process::Command::new("go")
        .args(["env", "GOVERSION"])
        // Never a toolchain download to answer this.
        .env("GOTOOLCHAIN", "local")
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let started = std::time::Instant::now();
    while child.try_wait().ok()?.is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    // `go1.22.4`, possibly with a suffix (`go1.22.4 X:…`, `-custom`).
    let version = out.trim().strip_prefix("go")?;
    let end = version.find([' ', '-']).unwrap_or(version.len());
    Some(version[..end].to_string())
}

/// Starts the proxy on the local store (loopback, any port) for the run.
async fn warm_local(
    args: &WarmArgs,
    mut settings: Settings,
    plan: Plan,
) -> anyhow::Result<Vec<Outcome>> {
    settings.listen = ([127, 0, 0, 1], 0).into();
    // warm walks the graph itself; prefetch would only add noise.
    settings.prefetch = PrefetchMode::Off;
    let server = Server::bind(&settings)
        .await
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?;
    let url = settings.goproxy_url(server.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let outcomes = warm(&url, args, plan).await;
    let _ = stop.send(());
    let _ = serving.await;
    outcomes
}

async fn warm(url: &str, args: &WarmArgs, plan: Plan) -> anyhow::Result<Vec<Outcome>> {
    let warmer = Warmer::new(url, args.concurrency).context("cannot build the HTTP client")?;
    let bar = progress_bar(args.quiet || args.json);
    let mut bytes = 0u64;
    let outcomes = warmer
        .run(plan, |outcome| {
            bar.inc(1);
            if let Ok(Got::Fetched(n) | Got::Present(n)) = outcome.result {
                bytes += n;
            }
            bar.set_message(format!("{} {}", human_bytes(bytes), outcome.what));
        })
        .await;
    bar.finish_and_clear();
    Ok(outcomes)
}

/// Files done, and the last one with the bytes so far (stderr, only on a
/// terminal).
fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} files {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Counts of one run.
struct Summary {
    fetched: u64,
    present: u64,
    failed: u64,
    bytes_fetched: u64,
    bytes_present: u64,
}

impl Summary {
    fn of(outcomes: &[Outcome]) -> Summary {
        let mut s = Summary {
            fetched: 0,
            present: 0,
            failed: 0,
            bytes_fetched: 0,
            bytes_present: 0,
        };
        for o in outcomes {
            match o.result {
                Ok(Got::Fetched(n)) => {
                    s.fetched += 1;
                    s.bytes_fetched += n;
                }
                Ok(Got::Present(n)) => {
                    s.present += 1;
                    s.bytes_present += n;
                }
                Err(_) => s.failed += 1,
            }
        }
        s
    }

    fn print(&self, json: bool, outcomes: &[Outcome]) {
        let failures: Vec<(&str, &str)> = outcomes
            .iter()
            .filter_map(|o| {
                o.result
                    .as_ref()
                    .err()
                    .map(|e| (o.what.as_str(), e.as_str()))
            })
            .collect();
        if json {
            let failures: Vec<serde_json::Value> = failures
                .iter()
                .map(|(what, error)| serde_json::json!({ "file": what, "error": error }))
                .collect();
            let report = serde_json::json!({
                "fetched": self.fetched,
                "present": self.present,
                "failed": self.failed,
                "bytes_fetched": self.bytes_fetched,
                "bytes_present": self.bytes_present,
                "failures": failures,
            });
            printer::line(&report.to_string());
            return;
        }
        printer::line(&format!(
            "{} fetched ({}), {} already present ({}), {} failed",
            self.fetched,
            human_bytes(self.bytes_fetched),
            self.present,
            human_bytes(self.bytes_present),
            self.failed
        ));
        for (what, error) in failures {
            printer::line(&format!("  failed: {what}: {error}"));
        }
    }
}
