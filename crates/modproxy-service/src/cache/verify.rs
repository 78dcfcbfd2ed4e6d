//! Verify before publish: a `.mod` or `.zip` enters the store only if it
//! matches the checksum database (unless the module is private or exempt,
//! or the database is off) and, for zips, passes the module zip rules.
//! A mismatch is a security event: logged on the `security` target, counted
//! in `modproxy_checksum_failures_total`, and nothing is stored.

use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use modproxy_module::modzip::{check_zip, hash_gomod};
use modproxy_module::path::ModulePath;

use super::flight::SpoolFile;
use super::Cache;
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::sumdb::SumHashes;

/// Where a downloaded zip is while it is checked.
pub(super) enum ZipSource {
    Spool(Arc<SpoolFile>),
    Memory(Bytes),
}

impl Cache {
    /// The checksum database's hashes for `module`@`version`, or `None`
    /// when the module is not checked.
    pub(super) async fn expected(
        &self,
        module: &ModulePath,
        version: &str,
    ) -> Result<Option<SumHashes>, ServeError> {
        let Some(db) = self.sumdb.as_ref().filter(|db| db.covers(module)) else {
            return Ok(None);
        };
        match db.hashes(module, version).await {
            Ok(hashes) => Ok(Some(hashes)),
            // Not "does not exist" for the client: the module exists but
            // cannot be vouched for, so it is not served.
            Err(e) if e.is_not_found() => Err(ServeError::Integrity(format!(
                "{module}@{version}: not found in checksum database {}: cannot verify it, so it is not served (if it is private, list it in --private or --nosumdb): {e}",
                db.name()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a go.mod's `h1:` against `expected`, what
    /// [`Cache::expected`] said (looked up while the go.mod downloaded).
    pub(super) fn check_gomod(
        &self,
        module: &ModulePath,
        version: &str,
        body: &[u8],
        expected: Option<SumHashes>,
    ) -> Result<(), ServeError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let got = hash_gomod(body);
        match expected.gomod {
            Some(want) if want == got => Ok(()),
            want => Err(self.mismatch(module, version, "go.mod", &got, want.as_deref())),
        }
    }

    /// Validates a complete zip of `size` bytes (in its spool file or in
    /// memory) by the module zip rules, computes its `h1:` and checks it
    /// (and its go.mod) against the checksum database.
    pub(super) async fn verify_zip(
        &self,
        module: &ModulePath,
        version: &str,
        zip: ZipSource,
        size: u64,
    ) -> Result<String, ServeError> {
        let (m, v) = (module.as_str().to_string(), version.to_string());
        let report = tokio::task::spawn_blocking(move || match zip {
            ZipSource::Spool(spool) => check_zip(&mut &spool.file, size, &m, &v),
            ZipSource::Memory(bytes) => check_zip(&mut Cursor::new(bytes), size, &m, &v),
        })
        .await
        .map_err(|e| ServeError::Internal(format!("zip check panicked: {e}")))?;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                Metrics::inc(&self.metrics.checksum_failures);
                let message = format!("{module}@{version}: invalid module zip: {e}");
                tracing::error!(target: "security", %module, %version, error = %e, "refused an invalid module zip");
                return Err(ServeError::Integrity(message));
            }
        };
        let Some(expected) = self.expected(module, version).await? else {
            return Ok(report.h1);
        };
        if expected.zip.as_deref() != Some(report.h1.as_str()) {
            return Err(self.mismatch(module, version, "zip", &report.h1, expected.zip.as_deref()));
        }
        // The go.mod inside must be the one the database vouches for (not
        // for +incompatible versions, whose go.mod is synthesized).
        if let (Some(gomod), Some(want)) = (&report.gomod, &expected.gomod) {
            let got = hash_gomod(gomod);
            if !version.ends_with("+incompatible") && &got != want {
                return Err(self.mismatch(module, version, "go.mod in the zip", &got, Some(want)));
            }
        }
        Ok(report.h1)
    }

    fn mismatch(
        &self,
        module: &ModulePath,
        version: &str,
        what: &str,
        got: &str,
        want: Option<&str>,
    ) -> ServeError {
        Metrics::inc(&self.metrics.checksum_failures);
        let want = want.unwrap_or("(no hash in the checksum database record)");
        tracing::error!(
            target: "security",
            %module, %version, what, downloaded = got, checksum_db = want,
            "SECURITY: checksum mismatch; not stored"
        );
        ServeError::Integrity(format!(
            "SECURITY ERROR: {module}@{version}: {what} checksum mismatch\n\tdownloaded:   {got}\n\tchecksum db:  {want}\nThe upstream served different bytes than the checksum database records; nothing was stored."
        ))
    }
}
