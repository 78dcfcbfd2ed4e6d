//! `modproxy serve`: run the proxy until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use modproxy_service::server::{Server, StartError};

use crate::cli::{ServeArgs, Sources};
use crate::settings::Resolved;
use crate::{logging, printer, settings};

/// Threads for blocking file I/O (store reads and writes, spool reads),
/// per core. Tokio's default (512 in all) let hundreds of clients of one
/// download each keep a thread busy with its own reads, scattering them
/// over the file and memory over the threads (bench/memory.sh: 75 MiB and
/// 30 s at 500 clients, against 42 MiB and 12 s with 16 threads: queued
/// readers stay together and share recent pieces).
const BLOCKING_THREADS_PER_CORE: usize = 8;

pub fn run(args: &ServeArgs, sources: &Sources) -> anyhow::Result<ExitCode> {
    let resolved = settings::resolve(args, sources)?;
    logging::init(resolved.log_format)?;
    let Resolved {
        service: settings,
        data_key,
        listen_key,
        ..
    } = resolved;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&settings).await.map_err(|e| {
            // Where to look, by what failed; the error itself follows.
            let hint = match &e {
                StartError::Store(_) => {
                    format!("check the data directory, {data_key}, and --store")
                }
                StartError::Listen { .. } => format!("check the listen address, {listen_key}"),
                StartError::Client(_) => "check the system's TLS certificates".to_string(),
                StartError::Tls(_) => "check --tls-cert and --tls-key".to_string(),
                StartError::Auth(_) => "check --auth-file".to_string(),
                StartError::Lock(_) => "check --lock".to_string(),
            };
            anyhow::Error::new(e).context(format!("cannot start the server ({hint})"))
        })?;
        let addr = server
            .local_addr()
            .context("cannot read the listening address")?;
        tracing::info!(
            %addr,
            data = %settings.data_dir.display(),
            upstream = %settings.upstream,
            "modproxy listening"
        );
        printer::line(&format!("export GOPROXY={}", settings.goproxy_url(addr)));
        server.run(shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
