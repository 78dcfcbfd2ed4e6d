//! The module zip of a version, built as the go command builds it in
//! direct mode: `git archive` of the module's directory (export-subst and
//! export-ignore off, no end-of-line conversion), the module zip rules
//! applied to its files (`modproxy_module::modzip::select_files`), the
//! root LICENSE added for a module in a subdirectory. Written to a
//! scratch file that is unlinked once open: nothing is left behind.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use modproxy_module::modfile::GoMod;
use modproxy_module::modzip::{select_files, SourceFile, SourceKind, ZipWriter};

use super::repo::{CodeRepo, RepoError};

/// Names scratch files uniquely within the process.
static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// Scratch files, removed when dropped: whether the build finished,
/// failed, or the request that wanted it went away.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes scratch files and half-made mirrors of processes that are gone
/// (their names start with the process id, which `/proc` tells alive).
pub fn remove_leftovers(dir: &Path) {
    let gone = |name: &str| {
        let pid = name
            .rsplit_once(".tmp-")
            .map_or_else(|| name.split('-').next().unwrap_or(""), |(_, pid)| pid);
        pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        })
    };
    let sweep = |dir: &Path, only_tmp_dirs: bool| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if only_tmp_dirs && !name.contains(".tmp-") {
                continue;
            }
            if gone(&name) {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
    };
    sweep(&dir.join("tmp"), false);
    sweep(dir, true);
}

/// Builds the zip of `version` of `repo`; the open (already unlinked)
/// file, positioned at its start.
pub async fn build(repo: &CodeRepo, version: &str, dir: &Path) -> Result<std::fs::File, RepoError> {
    let scratch_dir = dir.join("tmp");
    std::fs::create_dir_all(&scratch_dir)
        .map_err(|e| RepoError::Io(format!("cannot create {}: {e}", scratch_dir.display())))?;
    let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
    let tar = scratch_dir.join(format!("{}-{n}.tar", std::process::id()));
    let zip = tar.with_extension("zip");
    let scratch = Scratch(vec![tar.clone(), zip.clone()]);
    let (subdir, gomod, license) = repo.find_dir_and_archive(version, &tar).await?;
    let go_version = gomod.as_deref().and_then(|g| GoMod::parse(g).go);
    let label = format!("{}@{version}", repo.module_path());
    let (module, version) = (repo.module_path().to_string(), version.to_string());
    let built = tokio::task::spawn_blocking(move || {
        assemble(&Job {
            tar: &tar,
            zip: &zip,
            module: &module,
            version: &version,
            subdir: &subdir,
            go_version: go_version.as_deref(),
            license: license.as_deref(),
        })?;
        // Open, then unlink: the reader keeps the data, nothing is left.
        let file = std::fs::File::open(&zip).map_err(|e| Failure::Io(e.to_string()));
        drop(scratch);
        file
    })
    .await
    .map_err(|e| RepoError::Io(e.to_string()))?;
    built.map_err(|e| match e {
        // The tree breaks the module zip rules: no such module zip.
        Failure::Rules(e) => RepoError::NotFound(format!("{label}: {e}")),
        Failure::Io(e) => RepoError::Io(format!("{label}: building the zip: {e}")),
    })
}

/// Why a zip was not built.
enum Failure {
    Rules(String),
    Io(String),
}

struct Job<'a> {
    tar: &'a PathBuf,
    zip: &'a PathBuf,
    module: &'a str,
    version: &'a str,
    subdir: &'a str,
    go_version: Option<&'a str>,
    license: Option<&'a [u8]>,
}

/// Tar at `job.tar` → module zip at `job.zip` (blocking).
fn assemble(job: &Job<'_>) -> Result<(), Failure> {
    let io_err = |e: io::Error| Failure::Io(e.to_string());
    // Pass 1: what the tree holds.
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(job.tar).map_err(io_err)?);
    for entry in archive.entries().map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Some(path) = tree_path(&entry) else {
            continue;
        };
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => SourceKind::Regular,
            tar::EntryType::Symlink => SourceKind::Symlink,
            tar::EntryType::Directory | tar::EntryType::XGlobalHeader => continue,
            _ => SourceKind::Other,
        };
        files.push(SourceFile {
            path,
            kind,
            size: entry.header().size().map_err(io_err)?,
        });
    }
    let from_tar = files.len();
    if let Some(license) = job.license {
        files.push(SourceFile {
            path: "LICENSE".into(),
            kind: SourceKind::Regular,
            size: license.len() as u64,
        });
    }
    let selected = select_files(job.module, job.version, job.subdir, job.go_version, &files)
        .map_err(|e| Failure::Rules(e.to_string()))?;
    let names: HashMap<usize, &str> = selected
        .iter()
        .map(|s| (s.index, s.name.as_str()))
        .collect();
    // Pass 2: the chosen files' contents.
    let prefix = format!("{}@{}/", job.module, job.version);
    let out =
        io::BufWriter::with_capacity(256 << 10, std::fs::File::create(job.zip).map_err(io_err)?);
    let mut writer = ZipWriter::new(out);
    let mut archive = tar::Archive::new(std::fs::File::open(job.tar).map_err(io_err)?);
    let mut index = 0;
    for entry in archive.entries().map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if tree_path(&entry).is_none()
            || matches!(
                entry.header().entry_type(),
                tar::EntryType::Directory | tar::EntryType::XGlobalHeader
            )
        {
            continue;
        }
        if let Some(name) = names.get(&index) {
            let size = entry.header().size().map_err(io_err)?;
            writer
                .add(&format!("{prefix}{name}"), entry, size)
                .map_err(io_err)?;
        }
        index += 1;
    }
    if let (Some(license), Some(name)) = (job.license, names.get(&from_tar)) {
        writer
            .add(&format!("{prefix}{name}"), license, license.len() as u64)
            .map_err(io_err)?;
    }
    let mut out = writer.finish().map_err(io_err)?;
    // A scratch file, unlinked once open: no fsync.
    io::Write::flush(&mut out).map_err(io_err)
}

/// The entry's path in the repository (`prefix/` removed), or `None` for
/// entries outside it.
fn tree_path<R: io::Read>(entry: &tar::Entry<'_, R>) -> Option<String> {
    let path = entry.path_bytes();
    let path = String::from_utf8_lossy(&path);
    let rest = path.strip_prefix("prefix/")?;
    let rest = rest.trim_end_matches('/');
    (!rest.is_empty()).then(|| rest.to_string())
}
