//! The module cache on this machine (`GOMODCACHE`): instead of `go clean
//! -modcache` (everything gone, everything downloaded again), find exactly
//! what is broken, as `go mod verify` would but for every module at once,
//! in parallel and bounded in time, and (`--repair`) remove only that.
//!
//! Checked: a download whose zip does not match its `.ziphash` (the go
//! command trusts the `.ziphash` and never looks at the zip again); an
//! extracted tree that differs from its download (files changed, added or
//! missing); `.info` files that do not parse or name another version,
//! empty or binary `.mod` files, version lists that do not match the `.mod`
//! files beside them; leftovers of interrupted downloads (`.tmp` files,
//! extractions marked `.partial`); the checksum database's tree head the
//! go command keeps for `GOSUMDB` that does not verify with its key (the
//! doctor also compares it with the one a working proxy serves).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use modproxy_module::modzip::{check_zip, hash1, ZipError};
use modproxy_module::path::{unescape_version, ModulePath};
use modproxy_module::SumDbSetting;
use modproxy_service::sumdb::Tree;
use modproxy_service::sync::Locked;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Free space under which the cache's disk is worth a warning.
const LOW_SPACE: u64 = 1 << 30;

/// What is wrong with one module version (or one leftover file).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `module@version`, or the file's path for leftovers.
    pub module: String,
    pub what: String,
    /// What `--repair` removes (files, and extracted trees).
    pub remove: Vec<PathBuf>,
}

/// The module cache section of the diagnosis.
#[derive(Debug, Serialize)]
pub struct CacheReport {
    pub dir: PathBuf,
    pub bytes: u64,
    pub files: u64,
    /// Free space on its file system, when `df` could tell.
    pub free_bytes: Option<u64>,
    /// Module versions (downloads and extracted trees) checked, and left
    /// unchecked when the time ran out.
    pub checked: usize,
    pub skipped: usize,
    pub problems: Vec<Problem>,
    /// What `--repair` removed.
    pub removed: Vec<PathBuf>,
    /// Notes: low disk space, a checksum database head that does not
    /// verify, an unreadable cache.
    pub warnings: Vec<String>,
    /// The go command's cached tree head of GOSUMDB, verified, and its
    /// file: `(database name, tree, latest)`.
    #[serde(skip)]
    pub sumdb_head: Option<(String, Tree, PathBuf)>,
}

/// One unit of hashing work.
enum Job {
    /// `cache/download/…/@v/V.zip` with its `.ziphash`.
    Zip {
        module: String,
        version: String,
        zip: PathBuf,
        extracted: PathBuf,
    },
    /// An extracted tree `GOMODCACHE/MODULE@VERSION` and its `.ziphash`.
    Tree {
        module: String,
        version: String,
        dir: PathBuf,
        ziphash: PathBuf,
    },
}

/// Checks the cache at `dir`, for at most `limit`; `sumdb` is GOSUMDB,
/// whose tree head the go command keeps under `gopath/pkg/sumdb`.
pub fn check(dir: &Path, gopath: &Path, sumdb: &str, limit: Duration) -> CacheReport {
    let started = Instant::now();
    let mut report = CacheReport {
        dir: dir.to_path_buf(),
        bytes: 0,
        files: 0,
        free_bytes: free_space(dir),
        checked: 0,
        skipped: 0,
        problems: Vec::new(),
        removed: Vec::new(),
        warnings: Vec::new(),
        sumdb_head: None,
    };
    if !dir.is_dir() {
        // Nothing downloaded yet: nothing to check.
        return report;
    }
    if let Some(free) = report.free_bytes.filter(|f| *f < LOW_SPACE) {
        report.warnings.push(format!(
            "only {} MiB free on the module cache's disk: downloads and builds may fail",
            free >> 20
        ));
    }
    let mut jobs = Vec::new();
    walk_downloads(dir, &mut jobs, &mut report);
    walk_trees(dir, dir, &mut jobs, &mut report);
    check_sumdb_head(gopath, sumdb, &mut report);

    // Hash in parallel, one job at a time per core, until the time is up.
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let checked = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                if started.elapsed() > limit {
                    break;
                }
                if let Some(problem) = run(job) {
                    found.locked().push(problem);
                }
                checked.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    report.checked = checked.into_inner();
    report.skipped = jobs.len() - report.checked;
    if report.skipped > 0 {
        report.warnings.push(format!(
            "{} module versions left unchecked after {}s (raise --cache-timeout)",
            report.skipped,
            limit.as_secs()
        ));
    }
    report
        .problems
        .extend(modproxy_service::sync::into_inner(found));
    report.problems.sort_by(|a, b| a.module.cmp(&b.module));
    report
}

/// Removes what the problems name (making read-only directories writable
/// first, as `go clean -modcache` does).
pub fn repair(report: &mut CacheReport) {
    // Only in what is a module cache (a GOMODCACHE pointed elsewhere must
    // not have directories removed).
    if !report.dir.join("cache/download").is_dir() {
        if !report.problems.is_empty() {
            report.warnings.push(format!(
                "{} has no cache/download: not a module cache, nothing removed",
                report.dir.display()
            ));
        }
        return;
    }
    let mut removed = Vec::new();
    for problem in &report.problems {
        for path in &problem.remove {
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            if removed.contains(path) || !path.starts_with(&report.dir) {
                continue;
            }
            // A link is removed itself, never followed.
            let result = if meta.is_dir() {
                make_writable(path);
                std::fs::remove_dir_all(path)
            } else {
                if let Some(parent) = path.parent() {
                    make_writable_dir(parent);
                }
                std::fs::remove_file(path)
            };
            match result {
                Ok(()) => removed.push(path.clone()),
                Err(e) => report
                    .warnings
                    .push(format!("cannot remove {}: {e}", path.display())),
            }
        }
    }
    report.removed = removed;
}

fn make_writable_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir) {
        let mut perms = meta.permissions();
        perms.set_mode(perms.mode() | 0o700);
        let _ = std::fs::set_permissions(dir, perms);
    }
}

fn make_writable(dir: &Path) {
    make_writable_dir(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&e.path());
            }
        }
    }
}

/// `cache/download/ESCAPED/@v/`: zips, `.info`, `.mod`, leftovers.
fn walk_downloads(root: &Path, jobs: &mut Vec<Job>, report: &mut CacheReport) {
    let download = root.join("cache/download");
    let mut stack = vec![download.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                // The checksum database's cache is not module files.
                if path != download.join("sumdb") {
                    stack.push(path);
                }
                continue;
            }
            report.files += 1;
            report.bytes += meta.len();
            if dir.file_name().is_some_and(|n| n == "@v") {
                let escaped = dir.parent().and_then(|m| m.strip_prefix(&download).ok());
                if let Some(escaped) = escaped {
                    let escaped = escaped.to_string_lossy().replace('\\', "/");
                    download_file(root, &escaped, &path, jobs, report);
                }
            }
        }
    }
}

/// One file of `@v/`.
fn download_file(
    root: &Path,
    escaped: &str,
    path: &Path,
    jobs: &mut Vec<Job>,
    report: &mut CacheReport,
) {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let Ok(module) = ModulePath::unescape(escaped) else {
        return;
    };
    let module = module.as_str().to_string();
    if name.ends_with(".tmp") {
        report.problems.push(Problem {
            module: path.display().to_string(),
            what: "a temporary file left by an interrupted download".into(),
            remove: vec![path.to_path_buf()],
        });
        return;
    }
    if name == "list" {
        if let Some(what) = bad_list(path) {
            report.problems.push(Problem {
                module,
                what,
                remove: vec![path.to_path_buf()],
            });
        }
        return;
    }
    let Some((escaped_version, ext)) = name.rsplit_once('.') else {
        return;
    };
    let Ok(version) = unescape_version(escaped_version) else {
        return;
    };
    let extracted = root.join(format!("{escaped}@{escaped_version}"));
    let at = format!("{module}@{version}");
    match ext {
        "zip" => jobs.push(Job::Zip {
            module,
            version,
            zip: path.to_path_buf(),
            extracted,
        }),
        "partial" => report.problems.push(Problem {
            module: at,
            what: "its extraction was interrupted (a .partial marker is left)".into(),
            remove: vec![path.to_path_buf(), extracted],
        }),
        "info" => {
            if let Some(what) = bad_info(path, &version) {
                report.problems.push(Problem {
                    module: at,
                    what,
                    remove: vec![path.to_path_buf()],
                });
            }
        }
        "mod" => {
            if let Some(what) = bad_mod(path) {
                report.problems.push(Problem {
                    module: at,
                    what,
                    remove: vec![path.to_path_buf()],
                });
            }
        }
        _ => {}
    }
}

/// A `@v/list` lists exactly the versions whose `.mod` is beside it (the
/// go command rewrites it after each `.mod` it writes; an interrupted
/// write leaves it short or NUL-filled). It is what a GOPROXY serving the
/// cache answers, and what the go command uses offline.
fn bad_list(path: &Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    if data.contains(&0) {
        return Some("its version list was cut short while written (NUL bytes)".into());
    }
    let text = String::from_utf8_lossy(&data);
    let mut listed: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut cached: Vec<String> = std::fs::read_dir(path.parent()?)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let v = name.strip_suffix(".mod")?.to_string();
            modproxy_module::semver::is_canonical_module_version(&v).then_some(v)
        })
        .collect();
    listed.sort_unstable();
    cached.sort_unstable();
    let missing: Vec<&str> = cached
        .iter()
        .map(String::as_str)
        .filter(|v| !listed.contains(v))
        .collect();
    let extra: Vec<&str> = listed
        .iter()
        .copied()
        .filter(|v| !cached.iter().any(|c| c == v))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    let mut what = "its version list does not match the .mod files beside it:".to_string();
    if !missing.is_empty() {
        what.push_str(&format!(" {} missing", missing.join(", ")));
    }
    if !extra.is_empty() {
        what.push_str(&format!(" {} listed without a .mod", extra.join(", ")));
    }
    Some(what)
}

fn bad_info(path: &Path, version: &str) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let info: serde_json::Value = match serde_json::from_slice(&data) {
        Ok(v) => v,
        Err(e) => return Some(format!("its .info is not JSON: {e}")),
    };
    match info["Version"].as_str() {
        Some(v) if v == version => None,
        other => Some(format!(
            "its .info names version {:?}, not {version}",
            other.unwrap_or("")
        )),
    }
}

fn bad_mod(path: &Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    if data.is_empty() {
        return Some("its .mod is empty".into());
    }
    if data.contains(&0) || std::str::from_utf8(&data).is_err() {
        return Some("its .mod is not text".into());
    }
    None
}

/// Extracted trees: the first path element with an `@` below the cache
/// root (module paths have none), outside `cache/`.
fn walk_trees(root: &Path, dir: &Path, jobs: &mut Vec<Job>, report: &mut CacheReport) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if dir == root && e.file_name() == "cache" {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        if !meta.is_dir() {
            continue;
        }
        if name.contains('@') && name.contains(".tmp-") {
            report.problems.push(Problem {
                module: path.display().to_string(),
                what: "a temporary directory left by an interrupted extraction".into(),
                remove: vec![path],
            });
            continue;
        }
        let Some((_, escaped_version)) = name.split_once('@') else {
            walk_trees(root, &path, jobs, report);
            continue;
        };
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let rel = rel.to_string_lossy().replace('\\', "/");
        let escaped_module = &rel[..rel.len() - escaped_version.len() - 1];
        let (Ok(module), Ok(version)) = (
            ModulePath::unescape(escaped_module),
            unescape_version(escaped_version),
        ) else {
            continue;
        };
        let ziphash = root.join(format!(
            "cache/download/{escaped_module}/@v/{escaped_version}.ziphash"
        ));
        count_tree(&path, report);
        jobs.push(Job::Tree {
            module: module.as_str().to_string(),
            version,
            dir: path,
            ziphash,
        });
    }
}

fn count_tree(dir: &Path, report: &mut CacheReport) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() {
            count_tree(&e.path(), report);
        } else {
            report.files += 1;
            report.bytes += meta.len();
        }
    }
}

fn run(job: &Job) -> Option<Problem> {
    match job {
        Job::Zip {
            module,
            version,
            zip,
            extracted,
        } => {
            let recorded = read_hash(&zip.with_extension("ziphash"))?;
            let size = std::fs::metadata(zip).ok()?.len();
            let file = std::fs::File::open(zip).ok()?;
            let got = match check_zip(&mut std::io::BufReader::new(file), size, module, version) {
                Ok(report) => Ok(report.h1),
                // A zip the module zip rules refuse was downloaded whole:
                // the go command refuses to extract it, here or anywhere;
                // not the cache's fault.
                Err(
                    ZipError::NonCanonicalVersion { .. }
                    | ZipError::ModulePath(_)
                    | ZipError::InvalidVersion { .. }
                    | ZipError::ZipTooLarge { .. }
                    | ZipError::ContentsTooLarge
                    | ZipError::InvalidFiles(_),
                ) => return None,
                Err(e) => Err(e.to_string()),
            };
            match got {
                Ok(h1) if h1 == recorded => None,
                got => Some(Problem {
                    module: format!("{module}@{version}"),
                    what: match got {
                        Ok(h1) => format!(
                            "its zip does not match its .ziphash (corrupt or truncated): {h1}, recorded {recorded}"
                        ),
                        Err(e) => format!("its zip cannot be read (corrupt or truncated): {e}"),
                    },
                    remove: vec![
                        zip.clone(),
                        zip.with_extension("ziphash"),
                        extracted.clone(),
                    ],
                }),
            }
        }
        Job::Tree {
            module,
            version,
            dir,
            ziphash,
        } => {
            let recorded = read_hash(ziphash)?;
            let prefix = format!("{module}@{version}");
            let mut files = Vec::new();
            hash_tree(dir, &prefix, &mut files).ok()?;
            let got = hash1(&mut files);
            (got != recorded).then(|| Problem {
                module: prefix,
                what: format!(
                    "its extracted files differ from the download (changed, added or missing): {got}, recorded {recorded}"
                ),
                remove: vec![dir.clone()],
            })
        }
    }
}

fn read_hash(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_string())
}

/// (`prefix/relative/name`, SHA-256) of every file below `dir`, as Go's
/// `dirhash.DirFiles` lists them.
fn hash_tree(dir: &Path, prefix: &str, out: &mut Vec<(String, [u8; 32])>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
        let meta = std::fs::symlink_metadata(e.path())?;
        if meta.is_dir() {
            hash_tree(&e.path(), &name, out)?;
            continue;
        }
        let mut file = std::fs::File::open(e.path())?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        out.push((name, hasher.finalize().into()));
    }
    Ok(())
}

/// The go command's cached tree head of GOSUMDB
/// (`$GOPATH/pkg/sumdb/NAME/latest`) must verify with its key.
fn check_sumdb_head(gopath: &Path, sumdb: &str, report: &mut CacheReport) {
    let Ok(SumDbSetting::Db(config)) = SumDbSetting::parse(sumdb) else {
        return;
    };
    let latest = gopath.join("pkg/sumdb").join(&config.name).join("latest");
    let Ok(note) = std::fs::read(&latest) else {
        return;
    };
    match modproxy_service::sumdb::open_tree_note(&note, &config.key) {
        Ok(tree) => report.sumdb_head = Some((config.name.clone(), tree, latest)),
        Err(e) => report.problems.push(Problem {
            module: latest.display().to_string(),
            what: format!(
                "the cached tree head of {} does not verify with GOSUMDB's key ({e}): it came from another or a forked database",
                config.name
            ),
            remove: vec![latest.clone()],
        }),
    }
}

/// Free bytes on `dir`'s file system (`df -Pk`).
fn free_space(dir: &Path) -> Option<u64> {
    let probe = if dir.exists() { dir } else { dir.parent()? };
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(probe)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}
