//! What `modproxy warm` was asked to warm: go.mod, go.sum, go.work and list
//! files, directories holding them, and `module@version` arguments, all
//! merged into one [`Plan`].

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use modproxy_module::graph::{Graph, ModVer};
use modproxy_module::modfile::{switch_toolchain, GoMod, GoWork, Replace, Replacement};
use modproxy_module::path::ModulePath;
use modproxy_module::semver;
use modproxy_service::warm::Plan;

/// Everything the inputs name, before the graph is built.
#[derive(Default)]
struct Gathered {
    /// Main modules: their path, whether they prune, their requirements.
    mains: Vec<(String, bool, Vec<ModVer>)>,
    /// go.work replacements (they win), then the go.mod files'.
    work_replace: Vec<Replace>,
    replace: Vec<Replace>,
    exclude: Vec<(String, String)>,
    /// `module@version` roots (loaded unpruned: everything below them).
    roots: Vec<ModVer>,
    queries: Vec<(String, String)>,
    gomods: Vec<ModVer>,
    modules: Vec<ModVer>,
    /// Toolchains (`go1.22.0`) the go.mod and go.work files make a go
    /// command older than them switch to.
    toolchains: Vec<String>,
    /// The version of the go command the builds use, if known.
    go_version: Option<String>,
}

/// The module of the go command's toolchains.
const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// What else than modules a build may download: the toolchain.
pub struct Toolchains<'a> {
    /// `GOOS/GOARCH` pairs to fetch toolchains for.
    pub platforms: &'a [String],
    /// The version of the go command the builds use (`1.21.4`), if known:
    /// a `go` line newer than it makes that go command switch.
    pub go_version: Option<&'a str>,
}

/// Reads every input into one plan, with the toolchains the inputs
/// switch to for each platform.
pub fn plan(inputs: &[String], toolchains: Toolchains) -> anyhow::Result<Plan> {
    let mut g = Gathered {
        go_version: toolchains.go_version.map(str::to_string),
        ..Gathered::default()
    };
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            g.directory(path)?;
        } else if path.exists() {
            g.file(path)?;
        } else if let Some((module, version)) = input.split_once('@') {
            g.argument(module, version)
                .with_context(|| format!("in the argument {input:?}"))?;
        } else {
            bail!("{input}: no such file or directory, and not module@version");
        }
    }
    for toolchain in &g.toolchains {
        for platform in toolchains.platforms {
            let (goos, goarch) = platform.split_once('/').unwrap_or((platform, ""));
            let version = format!("v0.0.1-{toolchain}.{goos}-{goarch}");
            g.modules.push(ModVer::new(TOOLCHAIN_MODULE, version));
        }
    }
    let main_paths: Vec<String> = g.mains.iter().map(|(p, _, _)| p.clone()).collect();
    let mut graph = Graph::new(&main_paths, vec![g.work_replace, g.replace], &g.exclude);
    for (_, pruned, requires) in g.mains {
        for r in requires {
            graph.add_root(r, pruned);
        }
    }
    for r in g.roots {
        graph.add_root(r, false);
    }
    Ok(Plan {
        graph,
        queries: g.queries,
        gomods: g.gomods,
        modules: g.modules,
    })
}

impl Gathered {
    /// A directory: its go.work if it has one, else its go.mod; and its
    /// go.sum.
    fn directory(&mut self, dir: &Path) -> anyhow::Result<()> {
        let (work, gomod, gosum) = (dir.join("go.work"), dir.join("go.mod"), dir.join("go.sum"));
        if work.is_file() {
            self.file(&work)?;
        } else if gomod.is_file() {
            self.file(&gomod)?;
        } else if !gosum.is_file() {
            bail!("{}: no go.work, go.mod or go.sum in it", dir.display());
        }
        if gosum.is_file() {
            self.file(&gosum)?;
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) -> anyhow::Result<()> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let result = if name.ends_with(".work") {
            self.go_work(&data, dir)
        } else if name.ends_with(".mod") {
            self.go_mod(&data, dir)
        } else if name.ends_with(".sum") {
            self.go_sum(&data)
        } else {
            self.list(&data)
        };
        result.with_context(|| format!("in {}", path.display()))
    }

    fn go_mod(&mut self, data: &[u8], dir: &Path) -> anyhow::Result<()> {
        let gomod = GoMod::parse(data);
        let Some(module) = gomod.module.clone() else {
            bail!("not a go.mod file: it has no module line");
        };
        let pruned = gomod.is_pruned();
        self.toolchain(gomod.go.as_deref(), gomod.toolchain.as_deref());
        self.main(module, pruned, &gomod, dir);
        Ok(())
    }

    /// Notes the toolchains a `go` and `toolchain` line make a go command
    /// switch to: the `toolchain` line's for any go command older than it
    /// (a team's proxy serves older ones too), and what the go command the
    /// builds use switches to (a `go` line newer than it).
    fn toolchain(&mut self, go: Option<&str>, toolchain: Option<&str>) {
        let any_older = switch_toolchain("1.0", None, toolchain);
        let this_one = self
            .go_version
            .as_deref()
            .and_then(|local| switch_toolchain(local, go, toolchain));
        for t in [any_older, this_one].into_iter().flatten() {
            if !self.toolchains.contains(&t) {
                self.toolchains.push(t);
            }
        }
    }

    fn main(&mut self, module: String, pruned: bool, gomod: &GoMod, dir: &Path) {
        let requires = gomod
            .require
            .iter()
            .map(|r| ModVer::new(r.path.clone(), r.version.clone()))
            .collect();
        self.mains.push((module, pruned, requires));
        self.replace
            .extend(gomod.replace.iter().map(|r| absolute(r, dir)));
        self.exclude.extend(gomod.exclude.iter().cloned());
    }

    /// A workspace: every used module is a main module; the workspace's
    /// graph is pruned. Its replacements come before the modules' own.
    fn go_work(&mut self, data: &[u8], dir: &Path) -> anyhow::Result<()> {
        let work = GoWork::parse(data);
        if work.uses.is_empty() {
            bail!("no use directives: a go.work names the modules of the workspace");
        }
        // In a workspace the go.work's lines pick the toolchain.
        self.toolchain(work.go.as_deref(), work.toolchain.as_deref());
        self.work_replace
            .extend(work.replace.iter().map(|r| absolute(r, dir)));
        // Like the go command (modload's initMainModules): two modules
        // replacing the same module version differently is an error,
        // unless the go.work replaces that path (at any version).
        let work_paths: HashSet<&str> = work.replace.iter().map(|r| r.path.as_str()).collect();
        let mut replaced: HashMap<String, (Replacement, usize)> = HashMap::new();
        for (i, used) in work.uses.iter().enumerate() {
            let module_dir = dir.join(used);
            let path = module_dir.join("go.mod");
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let gomod = GoMod::parse(&data);
            let Some(module) = gomod.module.clone() else {
                bail!("{}: not a go.mod file (no module line)", path.display());
            };
            for r in &gomod.replace {
                if work_paths.contains(r.path.as_str()) {
                    continue;
                }
                let with = absolute(r, &module_dir).with;
                let old = match &r.version {
                    Some(v) => format!("{}@{v}", r.path),
                    None => r.path.clone(),
                };
                if let Some((prev, j)) = replaced.get(&old) {
                    if *j != i && *prev != with {
                        bail!(
                            "conflicting replacements for {old}:\n\t{}\n\t{}\nuse \"go work edit -replace {old}=[override]\" to resolve",
                            target(prev),
                            target(&with)
                        );
                    }
                }
                replaced.insert(old, (with, i));
            }
            self.main(module, true, &gomod, &module_dir);
        }
        Ok(())
    }

    /// go.sum: `path version[/go.mod] h1:…` lines.
    fn go_sum(&mut self, data: &[u8]) -> anyhow::Result<()> {
        for (n, line) in String::from_utf8_lossy(data).lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [path, version, _hash] = fields[..] else {
                if fields.is_empty() {
                    continue;
                }
                bail!("line {}: not `module version hash`: {line:?}", n + 1);
            };
            match version.strip_suffix("/go.mod") {
                Some(v) => self.gomods.push(checked(path, v, n)?),
                None => self.modules.push(checked(path, version, n)?),
            }
        }
        Ok(())
    }

    /// A list file: `module@version` or `module version` per line; `#`
    /// comments and blank lines skipped.
    fn list(&mut self, data: &[u8]) -> anyhow::Result<()> {
        for (n, line) in String::from_utf8_lossy(data).lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (module, version) = line
                .split_once('@')
                .or_else(|| line.split_once(char::is_whitespace))
                .with_context(|| format!("line {}: not module@version: {line:?}", n + 1))?;
            self.argument(module.trim(), version.trim())
                .with_context(|| format!("line {}", n + 1))?;
        }
        Ok(())
    }

    /// `module@version`; a version that is not canonical (`latest`, a
    /// branch, `v1.2`) is resolved through the proxy first.
    fn argument(&mut self, module: &str, version: &str) -> anyhow::Result<()> {
        ModulePath::new(module).with_context(|| format!("malformed module path {module:?}"))?;
        if version.is_empty() {
            bail!("no version after @ (use module@latest for the latest)");
        }
        if semver::is_canonical_module_version(version) {
            self.roots.push(ModVer::new(module, version));
        } else {
            self.queries.push((module.to_string(), version.to_string()));
        }
        Ok(())
    }
}

/// A go.sum line's module version, checked.
fn checked(path: &str, version: &str, line: usize) -> anyhow::Result<ModVer> {
    ModulePath::new(path)
        .with_context(|| format!("line {}: malformed module path {path:?}", line + 1))?;
    if !semver::is_canonical_module_version(version) {
        bail!("line {}: {version:?} is not a canonical version", line + 1);
    }
    Ok(ModVer::new(path, version))
}

/// A replacement with its directory made absolute (relative ones are
/// relative to the file that declared them) and clean, like Go's
/// `filepath.Join`.
fn absolute(r: &Replace, dir: &Path) -> Replace {
    let mut r = r.clone();
    if let Replacement::Dir(d) = &r.with {
        let mut full = PathBuf::new();
        for part in dir.join(d).components() {
            match part {
                Component::CurDir => {}
                Component::ParentDir
                    if matches!(full.components().next_back(), Some(Component::Normal(_))) =>
                {
                    full.pop();
                }
                other => full.push(other),
            }
        }
        r.with = Replacement::Dir(full.to_string_lossy().into_owned());
    }
    r
}

/// A replacement's target as the go command prints it.
fn target(with: &Replacement) -> String {
    match with {
        Replacement::Module { path, version } => format!("{path}@{version}"),
        Replacement::Dir(dir) => dir.clone(),
    }
}
