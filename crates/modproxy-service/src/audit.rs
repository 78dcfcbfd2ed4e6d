//! Re-checking the store (`modproxy verify`): every zip against the module
//! zip rules, its recorded `h1:` (`.ziphash`: written for a zip unless a
//! database vouched for it and its answer is stored; older stores have
//! one for every zip) and the checksum database; every go.mod against
//! the database. With `repair`, what fails is removed
//! so the next request fetches it again.

use std::sync::Arc;

use modproxy_module::modzip::{check_zip, hash_gomod};
use modproxy_module::path::{unescape_version, ModulePath};
use modproxy_module::sumdb_setting::SumDbSetting;

use crate::error::{chain, ErrorKind, SumDbFailure};
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::sumdb::SumDb;
use crate::upstream::Upstreams;

/// Why the store could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The verdict on one stored file.
#[derive(Debug)]
pub enum Verdict {
    Good,
    /// Not checked against the database (private, exempt, off, unreachable).
    Unverified(String),
    /// Does not match; removed when repairing.
    Bad(String),
}

/// One checked file.
#[derive(Debug)]
pub struct Checked {
    /// Its key in the store, e.g. `rsc.io/quote/@v/v1.5.2.zip`.
    pub key: String,
    pub verdict: Verdict,
    pub removed: bool,
}

/// Checks every `.zip` and `.mod` in the store; calls `report` for each.
pub async fn audit(
    settings: &Settings,
    repair: bool,
    mut report: impl FnMut(&Checked),
) -> Result<(), AuditError> {
    let store = crate::store::open(settings)?;
    let upstreams = Arc::new(Upstreams::new(settings).map_err(AuditError::Client)?);
    let sumdb = match &settings.sumdb {
        SumDbSetting::Off => None,
        SumDbSetting::Db(config) => Some(Arc::new(SumDb::new(
            config,
            Arc::clone(&store),
            upstreams,
            settings.private.clone(),
            settings.nosumdb.clone(),
        ))),
    };
    // Module files only: not the checksum database's.
    let mut keys: Vec<String> = store
        .entries()
        .await?
        .into_iter()
        .map(|e| e.key)
        .filter(|k| !k.starts_with("sumdb/"))
        .collect();
    keys.sort();
    for key in keys {
        let Some((module, version, ext)) = parse_stored(&key) else {
            continue;
        };
        let verdict =
            check_file(store.as_ref(), &key, &module, &version, ext, sumdb.as_ref()).await;
        let removed =
            repair && matches!(verdict, Verdict::Bad(_)) && remove(store.as_ref(), &key, ext).await;
        report(&Checked {
            key,
            verdict,
            removed,
        });
    }
    // The tree heads accepted on the way are kept for the next run.
    if let Some(db) = &sumdb {
        crate::sync::settled(&db.background).await;
    }
    Ok(())
}

/// The whole object at `key`, `None` when there is none.
async fn read(store: &dyn Store, key: &str) -> Result<Option<bytes::Bytes>, StoreError> {
    match store.get(key).await? {
        Some(object) => object.into_bytes(key).await.map(Some),
        None => Ok(None),
    }
}

async fn check_file(
    store: &dyn Store,
    key: &str,
    module: &ModulePath,
    version: &str,
    ext: &str,
    sumdb: Option<&Arc<SumDb>>,
) -> Verdict {
    let data = match read(store, key).await {
        Ok(Some(d)) => d,
        Ok(None) => return Verdict::Bad("gone while checking".into()),
        Err(e) => return Verdict::Bad(format!("unreadable: {}", chain(&e))),
    };
    let got = if ext == "zip" {
        let size = data.len() as u64;
        match check_zip(
            &mut std::io::Cursor::new(&data),
            size,
            module.as_str(),
            version,
        ) {
            Ok(report) => report.h1,
            Err(e) => return Verdict::Bad(format!("invalid module zip: {e}")),
        }
    } else {
        hash_gomod(&data)
    };
    let mut recorded = None;
    if ext == "zip" {
        let hash_key = format!("{}.ziphash", key.trim_end_matches(".zip"));
        recorded = read(store, &hash_key).await.ok().flatten();
        if let Some(recorded) = recorded
            .as_ref()
            .map(|r| String::from_utf8_lossy(r).trim().to_string())
        {
            if recorded != got {
                return Verdict::Bad(format!("hash {got} differs from the recorded {recorded}"));
            }
        }
    }
    let Some(db) = sumdb.filter(|db| db.covers(module)) else {
        return Verdict::Unverified(if ext == "zip" && recorded.is_none() {
            // Fetched while a database covered it: its answer was the
            // record, and that database is not asked now.
            "not checked against a checksum database, and no h1: recorded with it (a database vouched for it when it was fetched)".into()
        } else {
            "not checked against a checksum database".into()
        });
    };
    let hashes = match db.hashes_reverified(module, version).await {
        Ok(h) => h,
        // The database disowns it, or misbehaves: that is a finding.
        Err(e) => {
            let why = chain(&e).to_string();
            return match e.kind() {
                ErrorKind::NotFound
                | ErrorKind::SumDb(SumDbFailure::Fork | SumDbFailure::Invalid) => Verdict::Bad(why),
                _ => Verdict::Unverified(why),
            };
        }
    };
    let want = if ext == "zip" {
        hashes.zip
    } else {
        hashes.gomod
    };
    match want {
        Some(want) if want == got => Verdict::Good,
        Some(want) => Verdict::Bad(format!("hash {got}, checksum database says {want}")),
        None => Verdict::Bad("the checksum database lists no hash for it".into()),
    }
}

async fn remove(store: &dyn Store, key: &str, ext: &str) -> bool {
    if ext == "zip" {
        let _ = store
            .remove(&format!("{}.ziphash", key.trim_end_matches(".zip")))
            .await;
    }
    store.remove(key).await.is_ok()
}

/// `(module, version, "zip"|"mod")` of a store path like
/// `rsc.io/quote/@v/v1.5.2.zip`.
fn parse_stored(rel: &str) -> Option<(ModulePath, String, &'static str)> {
    let (module, file) = rel.split_once("/@v/")?;
    let (version, ext) = file.rsplit_once('.')?;
    let ext = match ext {
        "zip" => "zip",
        "mod" => "mod",
        _ => return None,
    };
    let module = ModulePath::unescape(module).ok()?;
    let version = unescape_version(version).ok()?;
    Some((module, version, ext))
}
