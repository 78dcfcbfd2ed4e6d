//! The fetch task behind a flight: upstream → validation → store.
//!
//! Small files (`.info`, `.mod`, lists) are read whole (under a size limit),
//! checked and published. Zips are written to a spool file as they arrive,
//! published by rename once complete. On any failure nothing is published and
//! the spool file is removed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use modproxy_module::{pseudo, semver};

use super::flight::{FlightState, Landed, Progress};
use super::Cache;
use crate::error::ServeError;
use crate::request::{Endpoint, ModuleRequest};
use crate::upstream::Fetched;

/// Largest `.mod` accepted (the go command's own limit for go.mod files).
const MOD_LIMIT: u64 = 16 << 20;
/// Largest `.info`, `@latest` or version list accepted.
const META_LIMIT: u64 = 16 << 20;
/// Largest module zip accepted (the go command's limit).
const ZIP_LIMIT: u64 = 500 << 20;
/// Spool writes are batched to this size, then shown to waiters.
const WRITE_BATCH: usize = 128 * 1024;

impl Cache {
    /// Runs one fetch of `request` to its end, reporting on `progress`.
    pub(super) async fn run_fetch(self: Arc<Self>, request: ModuleRequest, progress: Progress) {
        let key = request.protocol_path();
        if self.has_usable(&request, &key).await {
            progress.send_replace(FlightState::Done(Ok(Landed::Stored)));
            return;
        }
        let result = match &request.endpoint {
            Endpoint::Zip(_) => self.fetch_zip(&request, &key, &progress).await,
            _ => self.fetch_small(&request, &key).await.map(Landed::Bytes),
        };
        match &result {
            Ok(_) => {
                self.negative.remove(&key);
                tracing::info!(%request, "fetched");
            }
            Err(e) if e.is_not_found() => {
                self.negative
                    .insert(&key, e.to_string(), self.policy.negative_ttl);
            }
            Err(e) => tracing::warn!(%request, error = %e, "fetch failed"),
        }
        progress.send_replace(FlightState::Done(result));
    }

    /// Whether the store already holds a usable copy: a request that missed
    /// may start its fetch just after another fetch of the same key published.
    async fn has_usable(&self, request: &ModuleRequest, key: &str) -> bool {
        match self.store.get(key).await {
            Ok(Some(object)) => {
                request.endpoint.is_immutable()
                    || super::age(object.modified) < self.policy.fresh_for
            }
            _ => false,
        }
    }

    async fn fetch_small(&self, request: &ModuleRequest, key: &str) -> Result<Bytes, ServeError> {
        let fetched = self.upstreams.fetch(&request.module, key).await?;
        let upstream_name = fetched.upstream.clone();
        let what = request.to_string();
        let (body, canonical_info) = match &request.endpoint {
            Endpoint::Mod(_) => (fetched.bytes(&what, MOD_LIMIT).await?, None),
            Endpoint::List => {
                let body = fetched.bytes(&what, META_LIMIT).await?;
                (clean_list(&body), None)
            }
            Endpoint::Info(version) => {
                let (body, info) = read_info(fetched, &what).await?;
                if info != *version {
                    let reason = format!("names version {info:?}, not {version:?}");
                    return Err(invalid(&upstream_name, &what, reason));
                }
                (body, None)
            }
            Endpoint::Latest | Endpoint::Query(_) => {
                let (body, info) = read_info(fetched, &what).await?;
                if !semver::is_canonical_module_version(&info) {
                    let reason = format!("names non-canonical version {info:?}");
                    return Err(invalid(&upstream_name, &what, reason));
                }
                (body, Some(info))
            }
            Endpoint::Zip(_) => unreachable!("zips are spooled"),
        };
        self.publish(key, body.clone()).await;
        if let Some(version) = canonical_info {
            // The canonical .info is immutable: store it too, so the go
            // command's next request (for that version) is a hit.
            let info = ModuleRequest {
                module: request.module.clone(),
                endpoint: Endpoint::Info(version),
            };
            let info_key = info.protocol_path();
            if matches!(self.store.get(&info_key).await, Ok(None)) {
                self.publish(&info_key, body.clone()).await;
            }
        }
        Ok(body)
    }

    /// Publishes a small object. A store failure is logged, not fatal: the
    /// client is still answered with the bytes it asked for.
    async fn publish(&self, key: &str, body: Bytes) {
        if let Err(e) = self.store.put(key, body).await {
            tracing::error!(error = %e, "not cached");
        }
    }

    async fn fetch_zip(
        &self,
        request: &ModuleRequest,
        key: &str,
        progress: &Progress,
    ) -> Result<Landed, ServeError> {
        let mut fetched = self.upstreams.fetch(&request.module, key).await?;
        let what = request.to_string();
        if fetched.content_length.is_some_and(|n| n > ZIP_LIMIT) {
            let reason = format!("larger than the limit of {ZIP_LIMIT} bytes");
            return Err(fetched.invalid(&what, reason).into());
        }
        let spool = Spool::create(self.spool_path(key))?;
        progress.send_replace(FlightState::Streaming {
            file: Arc::clone(&spool.file),
            written: 0,
            length: fetched.content_length,
        });
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        let mut written = 0u64;
        loop {
            let chunk = fetched.chunk().await?;
            let end = chunk.is_none();
            if let Some(chunk) = chunk {
                batch.extend_from_slice(&chunk);
            }
            if batch.len() >= WRITE_BATCH || (end && !batch.is_empty()) {
                if written + batch.len() as u64 > ZIP_LIMIT {
                    let reason = format!("larger than the limit of {ZIP_LIMIT} bytes");
                    return Err(fetched.invalid(&what, reason).into());
                }
                batch = spool.write_at(batch, written).await?;
                written += batch.len() as u64;
                batch.clear();
                progress.send_modify(|state| {
                    if let FlightState::Streaming { written: w, .. } = state {
                        *w = written;
                    }
                });
            }
            if end {
                break;
            }
        }
        if let Some(expected) = fetched.content_length.filter(|n| *n != written) {
            let reason = format!("body ended after {written} of {expected} bytes");
            return Err(fetched.invalid(&what, reason).into());
        }
        let file = spool.publish(&*self.store, key).await?;
        Ok(Landed::Spool {
            file,
            size: written,
        })
    }

    fn spool_path(&self, key: &str) -> PathBuf {
        let n = self
            .spool_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = key.rsplit('/').next().unwrap_or("zip");
        self.store.spool_dir().join(format!("spool-{n}-{name}"))
    }
}

/// A file being downloaded; removed on drop unless published.
struct Spool {
    file: Arc<File>,
    path: Option<PathBuf>,
}

impl Spool {
    fn create(path: PathBuf) -> Result<Spool, ServeError> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| spool_error(&path, e))?;
        Ok(Spool {
            file: Arc::new(file),
            path: Some(path),
        })
    }

    /// Writes `buf` at `offset` off the async threads; hands the buffer back.
    async fn write_at(&self, buf: Vec<u8>, offset: u64) -> Result<Vec<u8>, ServeError> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone().unwrap_or_default();
        tokio::task::spawn_blocking(move || file.write_all_at(&buf, offset).map(|()| buf))
            .await
            .map_err(|e| ServeError::Internal(format!("spool writer panicked: {e}")))?
            .map_err(|e| spool_error(&path, e))
    }

    async fn publish(
        mut self,
        store: &dyn crate::store::Store,
        key: &str,
    ) -> Result<Arc<File>, ServeError> {
        let path = self.path.take().unwrap_or_default();
        let file = Arc::clone(&self.file);
        let sync = Arc::clone(&file);
        tokio::task::spawn_blocking(move || sync.sync_data())
            .await
            .map_err(|e| ServeError::Internal(format!("spool sync panicked: {e}")))?
            .map_err(|e| spool_error(&path, e))?;
        store.put_file(key, &path).await?;
        Ok(file)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn spool_error(path: &std::path::Path, e: std::io::Error) -> ServeError {
    ServeError::Internal(format!("spool file {}: {e}", path.display()))
}

fn invalid(upstream: &str, what: &str, reason: String) -> ServeError {
    crate::upstream::UpstreamError::Invalid {
        upstream: upstream.to_string(),
        what: what.to_string(),
        reason,
    }
    .into()
}

/// Reads an `.info` body and returns it with the version it names.
async fn read_info(fetched: Fetched, what: &str) -> Result<(Bytes, String), ServeError> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "Version")]
        version: String,
    }
    let upstream = fetched.upstream.clone();
    let body = fetched.bytes(what, META_LIMIT).await?;
    match serde_json::from_slice::<Info>(&body) {
        Ok(info) => Ok((body, info.version)),
        Err(e) => Err(invalid(&upstream, what, format!("not .info JSON: {e}"))),
    }
}

/// Keeps the lines of a version list the go command would use: valid
/// semantic versions that are not pseudo-versions, one per line.
fn clean_list(body: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(v) = line.split_whitespace().next() {
            if semver::is_valid(v) && !pseudo::is_pseudo_version(v) {
                out.push_str(v);
                out.push('\n');
            }
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keeps_release_and_prerelease_versions_only() {
        let body = b"v1.0.0\nv1.1.0 2019-01-01T00:00:00Z\n\nnot-a-version\nv0.0.0-20180628003336-dd9747d19b04\nv1.2.0-pre\n";
        assert_eq!(&clean_list(body)[..], b"v1.0.0\nv1.1.0\nv1.2.0-pre\n");
    }
}
