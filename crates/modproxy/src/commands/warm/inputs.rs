//! What `modproxy warm` was asked to warm: go.mod, go.sum, go.work and list
//! files, directories holding them, and `module@version` arguments, all
//! merged into one [`Plan`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use modproxy_module::graph::{Graph, ModVer};
use modproxy_module::modfile::{GoMod, GoWork, Replace, Replacement};
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
}

/// Reads every input into one plan.
pub fn plan(inputs: &[String]) -> anyhow::Result<Plan> {
    let mut g = Gathered::default();
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
        self.main(module, pruned, &gomod, dir);
        Ok(())
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
        self.work_replace
            .extend(work.replace.iter().map(|r| absolute(r, dir)));
        for used in &work.uses {
            let module_dir = dir.join(used);
            let path = module_dir.join("go.mod");
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let gomod = GoMod::parse(&data);
            let Some(module) = gomod.module.clone() else {
                bail!("{}: not a go.mod file (no module line)", path.display());
            };
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
/// relative to the file that declared them).
fn absolute(r: &Replace, dir: &Path) -> Replace {
    let mut r = r.clone();
    if let Replacement::Dir(d) = &r.with {
        let full: PathBuf = dir.join(d);
        r.with = Replacement::Dir(full.to_string_lossy().into_owned());
    }
    r
}
