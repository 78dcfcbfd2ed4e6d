//! The tree a zip is made from: `git archive` of the module's directory,
//! run while its go.mod is read (and, for a release version just
//! fetched, while the fetched commit is looked at).

use super::*;

impl CodeRepo {
    /// [`CodeRepo::find_dir`], and the tree of the module's directory as
    /// a tar file at `out`, with the root LICENSE (for a module in a
    /// subdirectory). When the directory can only be the code directory
    /// (no `/vN` subdirectory to look for), the archive is made while the
    /// go.mod is read; and for a release version just fetched, while the
    /// fetched commit is looked at (a zip is then one git command after
    /// the fetch, not three).
    pub async fn find_dir_and_archive(
        &self,
        version: &str,
        out: &Path,
    ) -> Result<(String, Option<Vec<u8>>, Option<Vec<u8>>)> {
        let one_dir = self.major_subdir().is_none();
        let release = !is_pseudo_version(version)
            && semver::canonical_module_version(version).as_deref() == Some(version);
        let commit = if one_dir && release {
            let code_rev = self.rev_to_rev(version);
            match self.locate(&code_rev).await? {
                Located::Local(commit, _) => commit,
                Located::Fetched(fetched) if fetched.shallow => {
                    // Read and archived at the commit the remote named
                    // while the mirror is asked whether the depth-1 fetch
                    // (ended by now) brought it.
                    let named = Commit {
                        hash: fetched.hash.clone(),
                        time: 0,
                        tags: Vec::new(),
                    };
                    let (present, found, archived) = tokio::join!(
                        self.mirror.stat_local(&named.hash),
                        self.find_dir_at(&named, version),
                        self.archive(&named, &self.code_dir, out)
                    );
                    match present? {
                        // It was there before the read and the archive
                        // started: they are of it.
                        Some(commit) if commit.hash == named.hash => {
                            if let (Ok((dir, gomod)), Ok(license)) = (found, archived) {
                                return Ok((dir, gomod, license));
                            }
                            commit
                        }
                        // Something else came: everything is fetched, and
                        // then it is all done in order.
                        _ => self.confirm(&code_rev, fetched).await?.0,
                    }
                }
                Located::Fetched(fetched) => self.confirm(&code_rev, fetched).await?.0,
            }
        } else {
            self.version_commit(version).await?
        };
        if one_dir {
            let (found, archived) = tokio::join!(
                self.find_dir_at(&commit, version),
                self.archive(&commit, &self.code_dir, out)
            );
            let (dir, gomod) = found?;
            return Ok((dir, gomod, archived?));
        }
        let (dir, gomod) = self.find_dir_at(&commit, version).await?;
        let license = self.archive(&commit, &dir, out).await?;
        Ok((dir, gomod, license))
    }

    /// The tree of `dir` at `commit` as a tar file at `out`, and the root
    /// LICENSE (for a module in a subdirectory).
    async fn archive(&self, commit: &Commit, dir: &str, out: &Path) -> Result<Option<Vec<u8>>> {
        if dir.is_empty() {
            self.mirror.archive(&commit.hash, dir, out).await?;
            return Ok(None);
        }
        let (archived, license) = tokio::join!(
            self.mirror.archive(&commit.hash, dir, out),
            self.mirror
                .read_file(&commit.hash, "LICENSE", MAX_SMALL_FILE)
        );
        archived?;
        Ok(license?)
    }
}
