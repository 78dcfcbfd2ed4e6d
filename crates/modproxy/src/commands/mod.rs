//! One module per subcommand, each with `run(…) -> Result<ExitCode>`.

pub mod doctor;
pub mod gc;
pub mod serve;
pub mod stats;
pub mod verify;
pub mod warm;

/// Runs `work` to its end on a single-threaded runtime (for the
/// commands that are not a server).
pub fn block_on<F: std::future::Future>(work: F) -> anyhow::Result<F::Output> {
    use anyhow::Context;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(work))
}

/// Opens the configured store and evicts from it by `policy` (a policy
/// with no limits only scans: `stats`); the report and where the store is.
pub fn evict(
    settings: &modproxy_service::Settings,
    policy: modproxy_service::store::evict::Policy,
) -> anyhow::Result<(modproxy_service::store::evict::Report, String)> {
    use anyhow::Context;
    block_on(async {
        let store = modproxy_service::store::open(settings).context("cannot open the store")?;
        let vcs = settings.data_dir.join(".vcs");
        let report = modproxy_service::store::evict::run(
            store.as_ref(),
            Some(&vcs),
            policy,
            std::time::SystemTime::now(),
        )
        .await?; // the error names the store
        Ok((report, store.describe()))
    })?
}
