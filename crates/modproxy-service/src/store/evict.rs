//! Eviction of whole module versions from a store (disk or object
//! storage), least recently used first: what `--max-size` applies
//! continuously and `modproxy gc` on demand.
//!
//! The git mirrors of `direct` (`$data/.vcs/*`, local even with a bucket
//! store) count toward the budget too and take their place in the same
//! order, by their last use (a stamp file [`MIRROR_STAMP`] inside each).
//!
//! A version is its `.info`, `.mod`, `.zip` (and anything else named
//! `VERSION.*` in its `@v/` directory). Its last use is the newest access
//! or modification time of those objects: on disk, hits stamp the access
//! time of the file they serve (at most once an hour per file, see
//! [`Toucher`]), so the order survives restarts; object storage has only
//! write times. Version lists, `@latest` answers and the checksum
//! database's files are small and never evicted (they count towards the
//! size). Removing a file that is being sent is safe on disk (the reader
//! keeps its open file) and on object storage (a read in progress keeps
//! its response).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use modproxy_module::path::{unescape_version, ModulePath};

use super::Store;

/// What to evict.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Evict least recently used versions until the store is at most this
    /// many bytes.
    pub max_size: Option<u64>,
    /// Evict versions not used for this long.
    pub older_than: Option<Duration>,
    /// Only say what would be evicted.
    pub dry_run: bool,
    /// With `max_size`: evict down to this many bytes once over
    /// `max_size` (a low-water mark, so the next few fetches do not each
    /// trigger a scan), sparing recently used versions below `max_size`.
    pub low_water: Option<u64>,
    /// Versions used this recently are evicted only to get under
    /// `max_size`, not down to `low_water` (a build is fetching them).
    pub spare_used_within: Option<Duration>,
}

/// One object of a store, as its listing gives it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its key: the protocol path, `rsc.io/quote/@v/v1.5.2.zip`.
    pub key: String,
    pub size: u64,
    /// Its last use: access or modification time, whichever is newer
    /// (object storage: the modification time).
    pub last_used: SystemTime,
}

/// One module version in the store, or one git mirror.
#[derive(Debug, Clone)]
pub struct Version {
    /// `module@version`, or `git mirror of URL`.
    pub label: String,
    /// The keys of its objects (none for a mirror).
    pub files: Vec<String>,
    pub bytes: u64,
    pub last_used: SystemTime,
    /// The directory of a git mirror.
    pub mirror: Option<PathBuf>,
}

/// The file whose modification time is a mirror's last use.
pub const MIRROR_STAMP: &str = "modproxy-used";

/// What a scan found and an eviction did.
#[derive(Debug, Default)]
pub struct Report {
    /// Bytes and objects in the store before eviction.
    pub bytes_before: u64,
    pub objects_before: u64,
    /// Versions evicted (or that would be, in a dry run), oldest first.
    pub evicted: Vec<Version>,
    pub bytes_evicted: u64,
    /// Objects that could not be removed, with why (their versions are not
    /// in `evicted`).
    pub failed: Vec<String>,
    /// Every version, for `stats` (oldest use first); mirrors included.
    pub versions: Vec<Version>,
    /// Git mirrors found, and their bytes (part of `bytes_before`).
    pub mirrors: usize,
    pub mirror_bytes: u64,
}

/// Lists `store` and evicts by `policy`; the store's running count is
/// replaced by what the listing measured, less what went.
/// The git mirrors under `vcs` (`$data/.vcs`) are candidates too.
pub async fn run(
    store: &dyn Store,
    vcs: Option<&Path>,
    policy: Policy,
    now: SystemTime,
) -> Result<Report, super::StoreError> {
    let (mut versions, store_bytes, objects_before) = group(store.entries().await?);
    let found = match vcs {
        Some(dir) => {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || mirrors(&dir))
                .await
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let mirror_bytes: u64 = found.iter().map(|m| m.bytes).sum();
    let mirror_count = found.len();
    versions.extend(found);
    versions.sort_by_key(|v| v.last_used);
    let bytes_before = store_bytes + mirror_bytes;
    let mut report = Report {
        bytes_before,
        objects_before,
        mirrors: mirror_count,
        mirror_bytes,
        ..Report::default()
    };
    let mut mirror_bytes_evicted = 0u64;
    let mut remaining = bytes_before;
    let mut files_removed = 0u64;
    for v in &versions {
        let unused_for = now.duration_since(v.last_used).unwrap_or_default();
        let too_old = policy.older_than.is_some_and(|d| unused_for > d);
        let recent = policy.spare_used_within.is_some_and(|d| unused_for < d);
        let over_budget = policy.max_size.is_some_and(|max| {
            let goal = match policy.low_water {
                Some(low) if !recent && bytes_before > max => low.min(max),
                _ => max,
            };
            remaining > goal
        });
        if !(too_old || over_budget) {
            continue;
        }
        if let (Some(dir), false) = (&v.mirror, policy.dry_run) {
            if let Err(e) = remove_mirror(dir) {
                report
                    .failed
                    .push(format!("cannot remove {}: {e}", dir.display()));
                continue;
            }
        }
        if v.mirror.is_some() {
            mirror_bytes_evicted += v.bytes;
        } else if !policy.dry_run {
            // Keep going past an object that cannot be removed: the others
            // still free space. The version stays counted as stored.
            let mut errors = Vec::new();
            for key in &v.files {
                if let Err(e) = store.remove(key).await {
                    errors.push(crate::error::chain(&e).to_string());
                }
            }
            if !errors.is_empty() {
                report.failed.extend(errors);
                continue;
            }
            files_removed += v.files.len() as u64;
        }
        remaining = remaining.saturating_sub(v.bytes);
        report.bytes_evicted += v.bytes;
        report.evicted.push(v.clone());
    }
    if !policy.dry_run {
        let store_evicted = report.bytes_evicted - mirror_bytes_evicted;
        store.measured(
            store_bytes.saturating_sub(store_evicted),
            objects_before.saturating_sub(files_removed),
        );
    }
    report.versions = versions;
    Ok(report)
}

/// The git mirrors under `vcs`: every directory but scratch ones, its
/// size, and its last use (the stamp's time, else the directory's).
pub fn mirrors(vcs: &Path) -> Vec<Version> {
    let Ok(entries) = std::fs::read_dir(vcs) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // `tmp/` (zips being built), `NAME.tmp-PID` (being created),
        // `NAME.evicted-PID` (being removed).
        if name == "tmp" || name.contains('.') || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let last_used = modified(&dir.join(MIRROR_STAMP))
            .or_else(|| modified(&dir))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let url = read_remote(&dir).unwrap_or(name);
        out.push(Version {
            label: format!("git mirror of {url}"),
            files: Vec::new(),
            bytes: dir_bytes(&dir),
            last_used,
            mirror: Some(dir),
        });
    }
    out
}

/// The remote a mirror was made for (written when it is created).
fn read_remote(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("modproxy-remote")).ok()?;
    Some(super::super::upstream::redact(text.trim()))
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Removes a mirror: renamed out of the way first (a request that comes
/// next makes a new one), then deleted.
fn remove_mirror(dir: &Path) -> std::io::Result<()> {
    let gone = dir.with_extension(format!("evicted-{}", std::process::id()));
    std::fs::rename(dir, &gone)?;
    std::fs::remove_dir_all(&gone)
}

/// Groups a store's objects into module versions; also the store's total
/// bytes and objects.
pub fn group(entries: Vec<Entry>) -> (Vec<Version>, u64, u64) {
    let mut by_version: HashMap<(String, String), Version> = HashMap::new();
    let (mut bytes, mut objects) = (0u64, 0u64);
    for entry in entries {
        bytes += entry.size;
        objects += 1;
        // `MODULE/@v/VERSION.EXT`; lists, @latest and sumdb/ are not versions.
        let Some((module, file)) = entry.key.rsplit_once("/@v/") else {
            continue;
        };
        let Some((version, _ext)) = file.rsplit_once('.') else {
            continue; // `list`
        };
        let slot = by_version
            .entry((module.to_string(), version.to_string()))
            .or_insert_with(|| Version {
                label: label(module, version),
                files: Vec::new(),
                bytes: 0,
                last_used: SystemTime::UNIX_EPOCH,
                mirror: None,
            });
        slot.files.push(entry.key.clone());
        slot.bytes += entry.size;
        slot.last_used = slot.last_used.max(entry.last_used);
    }
    (by_version.into_values().collect(), bytes, objects)
}

/// `module@version` from the store layout (escaped forms undone).
fn label(module: &str, version: &str) -> String {
    let module =
        ModulePath::unescape(module).map_or_else(|_| module.to_string(), |m| m.into_string());
    let version = unescape_version(version).unwrap_or_else(|_| version.to_string());
    format!("{module}@{version}")
}

/// Stamps the access time of files served from the store, at most once
/// per `every` per file, so least-recently-used order survives restarts
/// without a write per hit. Lock-free and allocation-free on the hit
/// path: a fixed table of slots in sets of [`WAYS`], each slot holding a
/// key's hash and when it was last stamped. A key lives in one set; a new
/// key takes that set's oldest slot, so only a working set larger than the
/// table (or a race) costs extra stamps.
#[derive(Debug)]
pub struct Toucher {
    every_secs: u64,
    started: Instant,
    slots: Box<[AtomicU64]>,
}

/// 64 Ki slots (512 KiB): tens of thousands of hot files before keys
/// start pushing each other out.
const SLOTS: usize = 1 << 16;
const WAYS: usize = 8;
/// Low bits of a slot: the stamp time; high bits: the key's hash.
const TIME_BITS: u64 = 0xFF_FFFF;

impl Toucher {
    pub fn new(every: Duration) -> Toucher {
        Toucher {
            every_secs: every.as_secs().max(1),
            started: Instant::now(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether `key` is due a stamp now (and notes that it got one).
    pub fn due(&self, key: &str) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(key, &mut hasher);
        let hash = std::hash::Hasher::finish(&hasher);
        // Times are seconds since start in units of `every / 64`, + 1
        // (0 is an empty slot); a stamp is due after 64 units.
        let unit = (self.every_secs / 64).max(1);
        let now = (self.started.elapsed().as_secs() / unit + 1) & TIME_BITS;
        let tag = hash & !TIME_BITS;
        let set = (hash as usize) % (SLOTS / WAYS) * WAYS;
        let set = &self.slots[set..set + WAYS];
        let age = |slot: u64| now.wrapping_sub(slot & TIME_BITS) & TIME_BITS;
        let mut oldest = &set[0];
        let mut oldest_age = 0;
        for slot in set {
            let value = slot.load(Ordering::Relaxed);
            if value == 0 {
                // Empty: no key further along (slots fill in order).
                oldest = slot;
                break;
            }
            if value & !TIME_BITS == tag {
                if age(value) < 64 {
                    return false;
                }
                oldest = slot;
                break;
            }
            if age(value) >= oldest_age {
                (oldest, oldest_age) = (slot, age(value));
            }
        }
        oldest.store(tag | now, Ordering::Relaxed);
        true
    }

    /// `key` was just written, which set its access time: its first hits
    /// need no stamp.
    pub fn written(&self, key: &str) {
        let _ = self.due(key);
    }
}

/// Sets the access time of `path` to now.
pub fn stamp(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    file.set_times(std::fs::FileTimes::new().set_accessed(SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DiskStore;
    use std::path::PathBuf;

    fn write(root: &Path, rel: &str, size: usize, age_days: u64) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![b'x'; size]).unwrap();
        let at = SystemTime::now() - Duration::from_secs(age_days * 86400);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_times(std::fs::FileTimes::new().set_accessed(at).set_modified(at))
            .unwrap();
    }

    fn store() -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "modproxy-evict-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for (v, age) in [("v1.0.0", 30), ("v1.1.0", 10), ("v1.2.0", 1)] {
            for ext in ["info", "mod", "zip"] {
                write(&root, &format!("example.com/!a/@v/{v}.{ext}"), 100, age);
            }
        }
        write(&root, "example.com/!a/@v/list", 20, 40);
        write(&root, "sumdb/sum.golang.org/latest", 30, 40);
        write(&root, ".tmp/1-spool", 5000, 0);
        root
    }

    #[tokio::test]
    async fn least_recently_used_versions_go_first_until_under_budget() {
        let root = store();
        let policy = Policy {
            max_size: Some(400),
            ..Policy::default()
        };
        let report = run(
            &DiskStore::open(&root).unwrap(),
            None,
            policy,
            SystemTime::now(),
        )
        .await
        .unwrap();
        assert_eq!((report.bytes_before, report.objects_before), (950, 11));
        let evicted: Vec<&str> = report.evicted.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(evicted, ["example.com/A@v1.0.0", "example.com/A@v1.1.0"]);
        assert!(!root.join("example.com/!a/@v/v1.1.0.zip").exists());
        assert!(root.join("example.com/!a/@v/v1.2.0.zip").exists());
        assert!(root.join("example.com/!a/@v/list").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn git_mirrors_count_and_go_in_the_same_order() {
        let root = store();
        let vcs = root.with_extension("vcs");
        let _ = std::fs::remove_dir_all(&vcs);
        // A mirror last used 20 days ago (between v1.0.0 and v1.1.0), one
        // being made, and the zips' scratch directory.
        write(&vcs, "0123abcd/HEAD", 10, 20);
        write(&vcs, "0123abcd/objects/pack/p.pack", 490, 20);
        write(&vcs, "0123abcd/modproxy-remote", 0, 20);
        write(&vcs, &format!("0123abcd/{MIRROR_STAMP}"), 0, 20);
        write(&vcs, "4567.tmp-1/HEAD", 10, 0);
        write(&vcs, "tmp/x.zip", 10, 0);
        std::fs::write(
            vcs.join("0123abcd/modproxy-remote"),
            "https://example.com/a",
        )
        .unwrap();
        let policy = Policy {
            max_size: Some(900),
            ..Policy::default()
        };
        let store = DiskStore::open(&root).unwrap();
        let report = run(&store, Some(&vcs), policy, SystemTime::now())
            .await
            .unwrap();
        assert_eq!((report.mirrors, report.mirror_bytes), (1, 521));
        let evicted: Vec<&str> = report.evicted.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(
            evicted,
            [
                "example.com/A@v1.0.0",
                "git mirror of https://example.com/a"
            ]
        );
        assert!(!vcs.join("0123abcd").exists());
        assert!(vcs.join("4567.tmp-1").exists() && vcs.join("tmp").exists());
        // The store's own count leaves the mirror out.
        assert_eq!(store.usage().map(|(b, _)| b), Some(950 - 300));
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&vcs).unwrap();
    }

    #[tokio::test]
    async fn age_limits_and_dry_runs() {
        let root = store();
        let policy = Policy {
            older_than: Some(Duration::from_secs(20 * 86400)),
            dry_run: true,
            ..Policy::default()
        };
        let report = run(
            &DiskStore::open(&root).unwrap(),
            None,
            policy,
            SystemTime::now(),
        )
        .await
        .unwrap();
        let evicted: Vec<&str> = report.evicted.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(evicted, ["example.com/A@v1.0.0"]);
        assert_eq!(report.bytes_evicted, 300);
        assert!(
            root.join("example.com/!a/@v/v1.0.0.zip").exists(),
            "dry run removed"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn down_to_the_low_water_mark_sparing_recent_versions() {
        async fn evicted(max: u64, low: u64) -> String {
            let root = store();
            let policy = Policy {
                max_size: Some(max),
                low_water: Some(low),
                spare_used_within: Some(Duration::from_secs(5 * 86400)),
                ..Policy::default()
            };
            let report = run(
                &DiskStore::open(&root).unwrap(),
                None,
                policy,
                SystemTime::now(),
            )
            .await
            .unwrap();
            std::fs::remove_dir_all(&root).unwrap();
            let labels: Vec<String> = report.evicted.into_iter().map(|v| v.label).collect();
            labels.join(" ")
        }
        // 950 bytes: past the low water mark, but not the recent version…
        assert_eq!(
            evicted(700, 100).await,
            "example.com/A@v1.0.0 example.com/A@v1.1.0"
        );
        // …unless the store cannot get under its budget otherwise.
        assert_eq!(
            evicted(300, 100).await,
            "example.com/A@v1.0.0 example.com/A@v1.1.0 example.com/A@v1.2.0"
        );
        assert_eq!(evicted(960, 100).await, "");
    }

    #[test]
    fn stamps_are_throttled() {
        let t = Toucher::new(Duration::from_secs(3600));
        assert!(t.due("a/@v/v1.0.0.zip"));
        assert!(!t.due("a/@v/v1.0.0.zip"));
        assert!(t.due("b/@v/v1.0.0.zip"));
        t.written("c/@v/v1.0.0.zip");
        assert!(!t.due("c/@v/v1.0.0.zip"));
    }

    #[test]
    fn a_working_set_of_thousands_is_stamped_once() {
        // A bench-sized working set: 4000 files hit round-robin. With a
        // direct-mapped table ~20% of them collided and were re-stamped
        // (a blocking-pool trip) on every hit.
        let t = Toucher::new(Duration::from_secs(3600));
        let keys: Vec<String> = (0..4000)
            .map(|i| format!("example.com/m{i}/@v/v1.0.0.mod"))
            .collect();
        assert!(keys.iter().all(|k| t.due(k)));
        let again = keys.iter().filter(|k| t.due(k)).count();
        assert_eq!(
            again, 0,
            "{again} of 4000 keys were due again within the hour"
        );
    }
}
