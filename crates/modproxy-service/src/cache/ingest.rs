//! Ingest checks, verify before publish: a `.mod` or `.zip` enters the store only if it
//! matches the checksum database (unless the module is private or exempt,
//! or the database is off) and, for zips, passes the module zip rules.
//! A mismatch is a security event: logged on the `security` target, counted
//! in `modproxy_checksum_failures_total`, and nothing is stored.
//!
//! The rule: **modproxy refuses only what the go command itself would
//! refuse from the same upstream.** That is:
//! - a `.mod` whose `h1:` is not the checksum database's `/go.mod` line
//!   (`checkGoMod` in cmd/go/internal/modfetch);
//! - a zip whose `h1:` is not the database's line, or that breaks the
//!   module zip rules (`modzip.CheckZip`, which the go command applies
//!   when it extracts the zip, so it would refuse the zip anyway);
//! - a module path or version the go command rejects (a `400` before any
//!   fetch) and answers that are not what was asked (an `.info` naming
//!   another version, as `proxyRepo.Stat` checks).
//!
//! Nothing stricter. The go command hashes a proxy's `.mod` without
//! parsing it (and parses it laxly, `modfile.ParseLax`, only to load a
//! graph), so a `.mod` without a `module` line (every `golang.org/toolchain`
//! version) is served. It never compares the go.mod inside a zip with the
//! `.mod` file: they legitimately differ (`+incompatible` versions whose
//! repository has a go.mod, hand-made versions), the database vouches for
//! each separately. Such oddities are served, logged as warnings and
//! counted in `modproxy_accepted_anomalies_total`; a false security error
//! would teach operators to ignore the real ones.

use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use modproxy_module::gomod;
use modproxy_module::modzip::{check_zip, hash_gomod};
use modproxy_module::path::ModulePath;

use super::flight::SpoolFile;
use super::Cache;
use crate::error::{IntegrityError, Internal, ServeError};
use crate::metrics::{Anomaly, Metrics};
use crate::request::ModuleRequest;
use crate::sumdb::SumHashes;

/// The module of the go command's toolchains (`GOTOOLCHAIN` switching):
/// its `.mod` files hold only the module path, no `module` keyword.
const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

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
            Err(e) if e.kind().is_not_found() => Err(IntegrityError::NotInSumDb {
                module: module.to_string(),
                version: version.to_string(),
                db: db.name().to_string(),
                source: e,
            }
            .into()),
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
    ) -> Result<ZipHash, ServeError> {
        let (m, v) = (module.as_str().to_string(), version.to_string());
        let report = tokio::task::spawn_blocking(move || match zip {
            ZipSource::Spool(spool) => check_zip(&mut &spool.file, size, &m, &v),
            ZipSource::Memory(bytes) => check_zip(&mut Cursor::new(bytes), size, &m, &v),
        })
        .await
        .map_err(|e| Internal::Panicked {
            task: "the zip check",
            panic: e.to_string(),
        })?;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                Metrics::inc(&self.metrics.checksum_failures);
                tracing::error!(target: "security", %module, %version, error = %e, "refused an invalid module zip");
                return Err(IntegrityError::InvalidZip {
                    module: module.to_string(),
                    version: version.to_string(),
                    source: e,
                }
                .into());
            }
        };
        let Some(expected) = self.expected(module, version).await? else {
            return Ok(ZipHash {
                h1: report.h1,
                vouched: false,
            });
        };
        if expected.zip.as_deref() != Some(report.h1.as_str()) {
            return Err(self.mismatch(module, version, "zip", &report.h1, expected.zip.as_deref()));
        }
        // The go command does not compare the zip's own go.mod with the
        // `.mod` file; a difference is worth a note, not a refusal.
        if let (Some(gomod), Some(want)) = (&report.gomod, &expected.gomod) {
            let got = hash_gomod(gomod);
            if &got != want {
                self.metrics.anomaly(Anomaly::ZipGoModDiffers);
                tracing::warn!(
                    %module, %version, zip_gomod = %got, mod_file = %want,
                    "the go.mod inside the zip differs from the .mod file; both match the checksum database, served"
                );
            }
        }
        Ok(ZipHash {
            h1: report.h1,
            vouched: true,
        })
    }

    /// Whether the store holds the checksum database's answer for
    /// `module`@`version`: the record of a zip it vouched for.
    pub(super) async fn lookup_stored(&self, module: &ModulePath, version: &str) -> bool {
        match &self.sumdb {
            Some(db) => db.lookup_stored(module, version).await,
            None => false,
        }
    }

    /// Notes a `.mod` whose `module` line does not name its module: served
    /// all the same (see the module docs; toolchain modules have none by
    /// design, so they are not noted).
    pub(super) fn note_module_line(&self, request: &ModuleRequest, body: &[u8], upstream: &str) {
        let module = request.module.as_str();
        let declared = gomod::module_path(body);
        if module == TOOLCHAIN_MODULE || declared.as_deref() == Some(module) {
            return;
        }
        self.metrics.anomaly(Anomaly::GoModModuleLine);
        tracing::warn!(
            %request, upstream, declared = declared.as_deref().unwrap_or("(none)"),
            "the .mod file's module line does not name the module; served, as the go command reads it laxly"
        );
    }

    fn mismatch(
        &self,
        module: &ModulePath,
        version: &str,
        what: &'static str,
        got: &str,
        want: Option<&str>,
    ) -> ServeError {
        Metrics::inc(&self.metrics.checksum_failures);
        tracing::error!(
            target: "security",
            %module, %version, what, downloaded = got,
            checksum_db = want.unwrap_or("(no hash in the checksum database record)"),
            "SECURITY: checksum mismatch; not stored"
        );
        IntegrityError::Mismatch {
            module: module.to_string(),
            version: version.to_string(),
            file: what,
            got: got.to_string(),
            want: want.map(str::to_string),
        }
        .into()
    }
}

/// A verified zip's `h1:`, and whether a checksum database vouched for it.
pub(super) struct ZipHash {
    pub h1: String,
    pub vouched: bool,
}
