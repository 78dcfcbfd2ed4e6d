//! The module graph a build needs, by Go's rules: minimal version
//! selection over the requirement graph, with the graph pruning of go ≥
//! 1.17 modules (a port of `readModGraph` in `cmd/go/internal/modload`).
//!
//! The graph does no I/O: it says which `go.mod` files it needs
//! ([`Graph::wanted`]), the caller fetches them and hands them in
//! ([`Graph::provide`]), until nothing more is wanted. Then
//! [`Graph::build_list`] is the selected version of every module.
//!
//! Pruning: the requirements of a go ≥ 1.17 module are in the graph, but
//! not their own requirements (their go.mod files are not loaded) unless
//! something unpruned leads there. Below a module of an older go version,
//! everything is loaded, as Go does.

use std::collections::{HashMap, HashSet};

use crate::modfile::{GoMod, Replace, Replacement};
use crate::semver;

/// A module at a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModVer {
    pub path: String,
    pub version: String,
}

impl ModVer {
    pub fn new(path: impl Into<String>, version: impl Into<String>) -> ModVer {
        ModVer {
            path: path.into(),
            version: version.into(),
        }
    }
}

impl std::fmt::Display for ModVer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.path, self.version)
    }
}

/// Where a module version's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A module version (itself, or the one that replaces it).
    Module(ModVer),
    /// A directory on disk, as written in the `replace` directive
    /// (resolved against the declaring file's directory by the caller).
    Dir(String),
}

/// What one loaded go.mod contributes.
struct Summary {
    requires: Vec<ModVer>,
    pruned: bool,
}

/// A module graph being loaded.
#[derive(Default)]
pub struct Graph {
    main_paths: HashSet<String>,
    /// `replace` directives in tiers, first tier first (a workspace's,
    /// then its modules').
    replace: Vec<Vec<Replace>>,
    exclude: HashSet<ModVer>,
    /// go.mod summaries provided (`None`: unavailable, no requirements).
    summaries: HashMap<ModVer, Option<Summary>>,
    /// Enqueued (module, unpruned) pairs, like Go's `loading` maps.
    enqueued: HashSet<(ModVer, bool)>,
    /// Enqueues waiting for a summary.
    waiting: HashMap<ModVer, Vec<bool>>,
    requested: HashSet<ModVer>,
    new_wanted: Vec<ModVer>,
    /// Every module version in the graph (loaded or only required).
    nodes: HashSet<ModVer>,
}

impl Graph {
    /// A graph for the main modules `main_paths` (never fetched: they are
    /// the user's own), with their `exclude` directives and their `replace`
    /// directives in tiers: like Go, a go.work's replacements come before
    /// those of its modules' go.mod files.
    pub fn new(
        main_paths: &[String],
        replace: Vec<Vec<Replace>>,
        exclude: &[(String, String)],
    ) -> Graph {
        Graph {
            main_paths: main_paths.iter().cloned().collect(),
            replace,
            exclude: exclude
                .iter()
                .map(|(p, v)| ModVer::new(p.clone(), v.clone()))
                .collect(),
            ..Graph::default()
        }
    }

    /// Adds a requirement of a main module. `pruned`: whether the main
    /// module prunes its graph (go ≥ 1.17, or a workspace).
    pub fn add_root(&mut self, m: ModVer, pruned: bool) {
        self.enqueue(m, !pruned);
    }

    /// The go.mod files needed since the last call.
    pub fn wanted(&mut self) -> Vec<ModVer> {
        std::mem::take(&mut self.new_wanted)
    }

    /// Where `m`'s files come from, after `replace` directives: the first
    /// tier with a directive for `m` decides, a version-specific one
    /// winning over one for every version.
    pub fn source(&self, m: &ModVer) -> Source {
        let found = self.replace.iter().find_map(|tier| {
            let exact = tier
                .iter()
                .find(|r| r.path == m.path && r.version.as_deref() == Some(m.version.as_str()));
            exact.or_else(|| {
                tier.iter()
                    .find(|r| r.path == m.path && r.version.is_none())
            })
        });
        match found.map(|r| &r.with) {
            Some(Replacement::Module { path, version }) => {
                Source::Module(ModVer::new(path.clone(), version.clone()))
            }
            Some(Replacement::Dir(dir)) => Source::Dir(dir.clone()),
            None => Source::Module(m.clone()),
        }
    }

    /// Hands in the go.mod of `m` (read from its [`Graph::source`]), or
    /// `None` when it could not be had (the graph goes on without its
    /// requirements; the caller reports the failure).
    pub fn provide(&mut self, m: &ModVer, gomod: Option<&GoMod>) {
        let summary = gomod.map(|g| Summary {
            requires: g
                .require
                .iter()
                .map(|r| ModVer::new(r.path.clone(), r.version.clone()))
                .collect(),
            pruned: g.is_pruned(),
        });
        self.summaries.insert(m.clone(), summary);
        for unpruned in self.waiting.remove(m).unwrap_or_default() {
            self.expand(m, unpruned);
        }
    }

    /// Module versions whose go.mod was needed.
    pub fn loaded(&self) -> Vec<ModVer> {
        let mut out: Vec<ModVer> = self.requested.iter().cloned().collect();
        out.sort();
        out
    }

    /// The selected version of every module in the graph (the highest
    /// required anywhere), main modules left out; sorted by path.
    pub fn build_list(&self) -> Vec<ModVer> {
        let mut selected: HashMap<&str, &str> = HashMap::new();
        for m in &self.nodes {
            let slot = selected.entry(&m.path).or_insert(&m.version);
            let newer =
                semver::compare(&m.version, slot).then_with(|| m.version.as_str().cmp(slot));
            if newer.is_gt() {
                *slot = &m.version;
            }
        }
        let mut out: Vec<ModVer> = selected
            .into_iter()
            .map(|(p, v)| ModVer::new(p, v))
            .collect();
        out.sort();
        out
    }

    fn enqueue(&mut self, m: ModVer, unpruned: bool) {
        if m.version == "none" || self.main_paths.contains(&m.path) || self.exclude.contains(&m) {
            return;
        }
        if !self.enqueued.insert((m.clone(), unpruned)) {
            return;
        }
        self.nodes.insert(m.clone());
        if self.summaries.contains_key(&m) {
            self.expand(&m, unpruned);
            return;
        }
        self.waiting.entry(m.clone()).or_default().push(unpruned);
        if self.requested.insert(m.clone()) {
            self.new_wanted.push(m);
        }
    }

    /// Adds `m`'s requirements to the graph, and loads them too when `m`
    /// was reached unpruned or is itself an unpruned module.
    fn expand(&mut self, m: &ModVer, unpruned: bool) {
        let Some(Some(summary)) = self.summaries.get(m) else {
            return;
        };
        let follow = unpruned || !summary.pruned;
        let requires = summary.requires.clone();
        for r in requires {
            if r.version == "none" || self.main_paths.contains(&r.path) || self.exclude.contains(&r)
            {
                continue;
            }
            if follow {
                self.enqueue(r, true);
            } else {
                self.nodes.insert(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a graph from an in-memory universe of go.mod files.
    fn load(universe: &[(&str, &str)], main: &str) -> Graph {
        let gomods: HashMap<ModVer, GoMod> = universe
            .iter()
            .map(|(mv, text)| {
                let (p, v) = mv.split_once('@').unwrap();
                (ModVer::new(p, v), GoMod::parse(text.as_bytes()))
            })
            .collect();
        let main = GoMod::parse(main.as_bytes());
        let mut g = Graph::new(
            &[main.module.clone().unwrap()],
            vec![main.replace.clone()],
            &main.exclude,
        );
        for r in &main.require {
            g.add_root(
                ModVer::new(r.path.clone(), r.version.clone()),
                main.is_pruned(),
            );
        }
        loop {
            let wanted = g.wanted();
            if wanted.is_empty() {
                break;
            }
            for m in wanted {
                let Source::Module(src) = g.source(&m) else {
                    g.provide(&m, None);
                    continue;
                };
                g.provide(&m, gomods.get(&src));
            }
        }
        g
    }

    fn names(v: Vec<ModVer>) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    const UNIVERSE: &[(&str, &str)] = &[
        (
            "a.x/a@v1.0.0",
            "module a.x/a\ngo 1.17\nrequire b.x/b v1.0.0\n",
        ),
        (
            "b.x/b@v1.0.0",
            "module b.x/b\ngo 1.17\nrequire c.x/c v1.0.0\n",
        ),
        (
            "b.x/b@v1.1.0",
            "module b.x/b\ngo 1.17\nrequire c.x/c v1.2.0\n",
        ),
        (
            "c.x/c@v1.0.0",
            "module c.x/c\ngo 1.17\nrequire d.x/d v1.0.0\n",
        ),
        ("c.x/c@v1.2.0", "module c.x/c\ngo 1.17\n"),
        ("d.x/d@v1.0.0", "module d.x/d\ngo 1.17\n"),
        (
            "old.x/o@v1.0.0",
            "module old.x/o\ngo 1.16\nrequire c.x/c v1.0.0\n",
        ),
    ];

    #[test]
    fn a_pruned_main_module_loads_only_its_roots_go_mod_files() {
        let g = load(UNIVERSE, "module m\ngo 1.21\nrequire a.x/a v1.0.0\n");
        // a's requirement b is in the graph, but b's go.mod is not loaded.
        assert_eq!(names(g.loaded()), ["a.x/a@v1.0.0"]);
        assert_eq!(names(g.build_list()), ["a.x/a@v1.0.0", "b.x/b@v1.0.0"]);
    }

    #[test]
    fn an_unpruned_main_module_loads_everything() {
        let g = load(UNIVERSE, "module m\ngo 1.16\nrequire a.x/a v1.0.0\n");
        assert_eq!(
            names(g.loaded()),
            [
                "a.x/a@v1.0.0",
                "b.x/b@v1.0.0",
                "c.x/c@v1.0.0",
                "d.x/d@v1.0.0"
            ]
        );
    }

    #[test]
    fn below_an_unpruned_dependency_everything_is_loaded() {
        let g = load(UNIVERSE, "module m\ngo 1.21\nrequire old.x/o v1.0.0\n");
        assert_eq!(
            names(g.loaded()),
            ["c.x/c@v1.0.0", "d.x/d@v1.0.0", "old.x/o@v1.0.0"]
        );
    }

    #[test]
    fn the_highest_required_version_is_selected() {
        let g = load(
            UNIVERSE,
            "module m\ngo 1.21\nrequire (\n a.x/a v1.0.0\n b.x/b v1.1.0\n c.x/c v1.2.0\n)\n",
        );
        assert_eq!(
            names(g.build_list()),
            ["a.x/a@v1.0.0", "b.x/b@v1.1.0", "c.x/c@v1.2.0"]
        );
    }

    #[test]
    fn replacements_and_exclusions_apply() {
        let g = load(
            UNIVERSE,
            "module m\ngo 1.16\nrequire (\n a.x/a v1.0.0\n d.x/d v1.0.0\n)\nreplace b.x/b v1.0.0 => b.x/b v1.1.0\nreplace d.x/d => ./d\nexclude c.x/c v1.0.0\n",
        );
        // b@v1.0.0's go.mod is read from b@v1.1.0: it requires c@v1.2.0.
        assert_eq!(
            g.source(&ModVer::new("b.x/b", "v1.0.0")),
            Source::Module(ModVer::new("b.x/b", "v1.1.0"))
        );
        assert_eq!(
            g.source(&ModVer::new("d.x/d", "v1.0.0")),
            Source::Dir("./d".into())
        );
        assert_eq!(
            names(g.build_list()),
            [
                "a.x/a@v1.0.0",
                "b.x/b@v1.0.0",
                "c.x/c@v1.2.0",
                "d.x/d@v1.0.0"
            ]
        );
    }

    #[test]
    fn a_workspace_replacement_wins_over_a_module_s_exact_one() {
        let any = |with| Replace {
            path: "b.x/b".into(),
            version: None,
            with,
        };
        let work = vec![any(Replacement::Module {
            path: "b.x/b".into(),
            version: "v1.1.0".into(),
        })];
        let module = vec![Replace {
            version: Some("v1.0.0".into()),
            ..any(Replacement::Dir("./b".into()))
        }];
        let g = Graph::new(&["m".into()], vec![work, module], &[]);
        assert_eq!(
            g.source(&ModVer::new("b.x/b", "v1.0.0")),
            Source::Module(ModVer::new("b.x/b", "v1.1.0"))
        );
    }

    #[test]
    fn the_main_module_and_none_are_never_fetched() {
        let g = load(
            &[(
                "a.x/a@v1.0.0",
                "module a.x/a\ngo 1.16\nrequire m v1.0.0\nrequire z.x/z none\n",
            )],
            "module m\ngo 1.16\nrequire a.x/a v1.0.0\n",
        );
        assert_eq!(names(g.build_list()), ["a.x/a@v1.0.0"]);
    }
}
