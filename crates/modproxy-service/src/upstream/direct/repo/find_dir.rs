//! `findDir` (coderepo.go): where a module's go.mod is at a revision.

use super::*;

impl CodeRepo {
    /// The `/vN` subdirectory a module of major version N may live in
    /// besides the code directory (`None` when there is none to look for:
    /// then the code directory is the only place it can be).
    pub(super) fn major_subdir(&self) -> Option<String> {
        let subdir = !self.path_major.is_empty()
            && self.code_root != self.mod_path
            && !self.path_major.starts_with('.');
        subdir.then(|| join(&self.code_dir, &self.path_major[1..]))
    }

    /// `findDir` for a version already resolved to `commit`: the module's
    /// directory and its go.mod (`None`: none, allowed at the root).
    pub(super) async fn find_dir_at(
        &self,
        commit: &Commit,
        version: &str,
    ) -> Result<(String, Option<Vec<u8>>)> {
        let rev = &commit.hash;
        // Messages name the revision as the go command does.
        let at = self.rev_to_rev(version);
        let file1 = join(&self.code_dir, "go.mod");
        let gomod1 = self.read(rev, &file1).await?;
        let mpath1 = gomod1
            .as_deref()
            .and_then(modproxy_module::module_path)
            .unwrap_or_default();
        let found1 = gomod1.is_some()
            && (is_major(&mpath1, &self.path_major)
                || (self.path_major.is_empty() && mpath1.starts_with("gopkg.in/")));
        let missing = |msg: String| {
            RepoError::NotFound(format!(
                "{}@{version}: invalid version: {msg}",
                self.mod_path
            ))
        };
        let mut file2 = String::new();
        if let Some(dir2) = self.major_subdir() {
            file2 = join(&dir2, "go.mod");
            let gomod2 = self.read(rev, &file2).await?;
            let mpath2 = gomod2
                .as_deref()
                .and_then(modproxy_module::module_path)
                .unwrap_or_default();
            let found2 = gomod2.is_some() && is_major(&mpath2, &self.path_major);
            if found1 && found2 {
                return Err(missing(format!(
                    "{}/{file1} and ...{}/go.mod both have ...{} module paths at revision {at}",
                    self.path_prefix, self.path_major, self.path_major
                )));
            }
            if found2 {
                return Ok((dir2, gomod2));
            }
            if gomod2.is_some() {
                return Err(missing(if mpath2.is_empty() {
                    format!(
                        "{}/{file2} is missing module path at revision {at}",
                        self.code_root
                    )
                } else {
                    format!(
                        "{}/{file2} has non-...{} module path {mpath2:?} at revision {at}",
                        self.code_root, self.path_major
                    )
                }));
            }
        }
        if found1 {
            return Ok((self.code_dir.clone(), gomod1));
        }
        if gomod1.is_some() {
            let suffix = if file2.is_empty() {
                String::new()
            } else {
                format!(" (and ...{}/go.mod does not exist)", self.path_major)
            };
            return Err(missing(if mpath1.is_empty() {
                format!("{file1} is missing module path{suffix} at revision {at}")
            } else {
                format!(
                    "{file1} has post-{} module path {mpath1:?}{suffix} at revision {at}",
                    semver::major(version).unwrap_or("v0")
                )
            }));
        }
        if self.code_dir.is_empty()
            && (self.path_major.is_empty() || self.path_major.starts_with('.'))
        {
            return Ok((String::new(), None));
        }
        Err(missing(if file2.is_empty() {
            format!("missing {}/go.mod at revision {at}", self.path_prefix)
        } else {
            format!(
                "missing {}/go.mod and ...{}/go.mod at revision {at}",
                self.path_prefix, self.path_major
            )
        }))
    }
}
