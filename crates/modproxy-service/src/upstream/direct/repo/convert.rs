//! `convert` and its helpers (coderepo.go): the module version of a
//! commit — its tags, `+incompatible`, pseudo-versions and their checks.

use super::*;

impl CodeRepo {
    /// `canUseIncompatible`.
    pub(super) async fn can_use_incompatible(
        &self,
        commit: &Commit,
        v: &str,
        stat_vers: &str,
    ) -> Result<bool> {
        if !self.code_dir.is_empty() || !self.path_major.is_empty() {
            return Ok(false);
        }
        if self.exists(&commit.hash, "go.mod").await? {
            return Ok(false);
        }
        if !v.is_empty() && !stat_vers.ends_with("+incompatible") {
            let major = semver::major(v).unwrap_or("");
            if self
                .exists(&commit.hash, &format!("{major}/go.mod"))
                .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `checkCanonical` in `convert`.
    pub(super) async fn check_canonical(
        &self,
        commit: &Commit,
        reference: &Option<String>,
        v: &str,
        stat_vers: &str,
    ) -> Result<RevInfo> {
        self.find_dir_at(commit, v).await?;
        let invalid = |msg: String| {
            RepoError::NotFound(format!("{}@{v}: invalid version: {msg}", self.mod_path))
        };
        let mut v = v.to_string();
        if v == stat_vers.strip_suffix("+incompatible").unwrap_or(stat_vers) {
            v = stat_vers.to_string();
        }
        let base = v.strip_suffix("+incompatible").unwrap_or(&v).to_string();
        let mut err = None;
        if !match_path_major(&base, &self.path_major) {
            if self.can_use_incompatible(commit, &base, stat_vers).await? {
                v = format!("{base}+incompatible");
            } else if !self.path_major.is_empty() {
                err = Some(invalid(
                    "module path includes a major version suffix, so major version must match"
                        .into(),
                ));
            } else {
                err = Some(invalid(format!(
                    "module contains a go.mod file, so module path must match major version (\"{}/{}\")",
                    self.path_prefix,
                    semver::major(&v).unwrap_or("")
                )));
            }
        } else if v.ends_with("+incompatible") {
            err = Some(invalid(format!(
                "+incompatible suffix not allowed: major version {} is compatible",
                semver::major(&v).unwrap_or("")
            )));
        }
        if !stat_vers.is_empty()
            && semver::canonical_module_version(stat_vers).as_deref() == Some(stat_vers)
        {
            let stat_base = stat_vers.strip_suffix("+incompatible").unwrap_or(stat_vers);
            if stat_base != base {
                return Err(RepoError::NotFound(format!(
                    "{}@{stat_vers}: invalid version: resolves to version {v} ({stat_base} is not a tag)",
                    self.mod_path
                )));
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        Ok(RevInfo {
            version: v,
            time: commit.time,
            hash: commit.hash.clone(),
            reference: reference.clone(),
        })
    }

    /// `tagToVersion`: the version a tag names for this module, and
    /// whether the tag is exactly that version.
    pub(super) fn tag_to_version(&self, tag: &str) -> (String, bool) {
        let prefix = self.tag_prefix();
        let Some(trimmed) = tag.strip_prefix(prefix.as_str()) else {
            return (String::new(), false);
        };
        if is_pseudo_version(tag) {
            return (String::new(), false);
        }
        match semver::canonical(trimmed) {
            Some(v) if trimmed.starts_with(v.as_str()) => {
                let exact = v == trimmed;
                (v, exact)
            }
            _ => (String::new(), false),
        }
    }

    /// Adds to `commit.tags` the remote's tags on it, as the go command
    /// consults the remote's refs: a tag added upstream since the mirror
    /// was fetched counts. The remote being unreachable leaves the
    /// mirror's view.
    pub(super) async fn with_remote_tags(&self, mut commit: Commit) -> Commit {
        let Ok(refs) = self.mirror.remote_refs(&self.access).await else {
            return commit;
        };
        for (name, hash) in refs.iter() {
            if let Some(tag) = name.strip_prefix("refs/tags/") {
                if *hash == commit.hash && !commit.tags.iter().any(|t| t == tag) {
                    commit.tags.push(tag.to_string());
                }
            }
        }
        commit.tags.sort();
        commit
    }

    /// `convert`: the module version of `commit`, found by the code
    /// revision `code_rev` and requested as `stat_vers`.
    pub(super) async fn convert(
        &self,
        commit: Commit,
        reference: Option<String>,
        code_rev: &str,
        stat_vers: &str,
    ) -> Result<RevInfo> {
        if is_pseudo_version(stat_vers) {
            let info = self
                .check_canonical(&commit, &reference, stat_vers, stat_vers)
                .await?;
            self.validate_pseudo_version(&commit, stat_vers).await?;
            return Ok(info);
        }
        // The git layer's "version": the name asked for when it is a tag on
        // the commit (not a branch that looks like one), else the hash.
        if commit.tags.iter().any(|t| t == code_rev) {
            if let (v, true) = self.tag_to_version(code_rev) {
                if let Ok(info) = self
                    .check_canonical(&commit, &reference, &v, stat_vers)
                    .await
                {
                    return Ok(info);
                }
            }
        }
        let commit = self.with_remote_tags(commit).await;
        let mut highest = String::new();
        let mut pseudo_base = String::new();
        for tag in &commit.tags {
            let (v, exact) = self.tag_to_version(tag);
            if !stat_vers.is_empty() && !v.is_empty() && semver::compare(&v, stat_vers).is_eq() {
                if exact {
                    return self
                        .check_canonical(&commit, &reference, &v, stat_vers)
                        .await;
                }
                pseudo_base = v.clone();
            }
            if exact
                && (highest.is_empty() || semver::compare(&highest, &v).is_lt())
                && (match_path_major(&v, &self.path_major)
                    || self.can_use_incompatible(&commit, &v, stat_vers).await?)
            {
                highest = v;
            }
        }
        if !highest.is_empty() {
            return self
                .check_canonical(&commit, &reference, &highest, stat_vers)
                .await;
        }
        if pseudo_base.is_empty() {
            pseudo_base = self.recent_tag(&commit, stat_vers).await?;
        }
        let short = &commit.hash[..commit.hash.len().min(12)];
        let version = modproxy_module::pseudo::pseudo_version(
            &self.pseudo_major,
            &pseudo_base,
            &pseudo_timestamp(commit.time),
            short,
        );
        self.check_canonical(&commit, &reference, &version, stat_vers)
            .await
    }

    /// `RecentTag`: the highest allowed version tagged in `commit`'s
    /// history ("" for none).
    /// The mirror may be shallow (only the commits asked for): when its
    /// history shows no tag but the remote has some, the whole history is
    /// fetched and asked again, as the go command does.
    pub(super) async fn recent_tag(&self, commit: &Commit, stat_vers: &str) -> Result<String> {
        let found = self.recent_tag_local(commit, stat_vers).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        let refs = self.mirror.remote_refs(&self.access).await?;
        let tags = format!("refs/tags/{}v", self.tag_prefix());
        if !refs.keys().any(|r| r.starts_with(&tags)) {
            return Ok(found);
        }
        self.mirror.fetch(&refs, &self.access).await?;
        self.recent_tag_local(commit, stat_vers).await
    }

    /// [`Self::recent_tag`] over the history the mirror has.
    async fn recent_tag_local(&self, commit: &Commit, stat_vers: &str) -> Result<String> {
        let prefix = self.tag_prefix();
        let mut highest = String::new();
        for tag in self.mirror.merged_tags(&commit.hash).await? {
            let (v, _) = self.tag_to_version(&tag);
            if v.is_empty() {
                continue;
            }
            if !match_path_major(&v, &self.path_major)
                && !self.can_use_incompatible(commit, &v, stat_vers).await?
            {
                continue;
            }
            let semtag = &tag[prefix.len()..];
            if highest.is_empty() || semver::compare(semtag, &highest).is_gt() {
                highest = semtag.to_string();
            }
        }
        if highest.is_empty() {
            return Ok(String::new());
        }
        Ok(self.tag_to_version(&format!("{prefix}{highest}")).0)
    }

    /// `validatePseudoVersion`: the pseudo-version names this commit, its
    /// time, and a base tagged in its history.
    pub(super) async fn validate_pseudo_version(
        &self,
        commit: &Commit,
        version: &str,
    ) -> Result<()> {
        let invalid = |msg: String| {
            RepoError::NotFound(format!(
                "{}@{version}: invalid pseudo-version: {msg}",
                self.mod_path
            ))
        };
        let p = parse_pseudo_version(version).map_err(|e| invalid(e.to_string()))?;
        let short = &commit.hash[..commit.hash.len().min(12)];
        if p.revision != short {
            return Err(invalid(if short.starts_with(&p.revision) {
                format!("revision is shorter than canonical (expected {short})")
            } else if p.revision.starts_with(short) {
                format!("revision is longer than canonical (expected {short})")
            } else {
                format!("does not match short name of revision (expected {short})")
            }));
        }
        let want = pseudo_timestamp(commit.time);
        if p.timestamp != want {
            return Err(invalid(format!(
                "does not match version-control timestamp (expected {want})"
            )));
        }
        let base = pseudo_version_base(version.strip_suffix("+incompatible").unwrap_or(version))
            .map_err(|e| invalid(e.to_string()))?;
        let Some(base) = base else {
            if self.pseudo_major.is_empty() && semver::major(version) == Some("v1") {
                return Err(invalid(
                    "major version without preceding tag must be v0, not v1".into(),
                ));
            }
            return Ok(());
        };
        let prefix = self.tag_prefix();
        if commit
            .tags
            .iter()
            .any(|t| t.strip_prefix(prefix.as_str()) == Some(base.as_str()))
        {
            return Err(invalid(format!(
                "tag ({prefix}{base}) found on revision {short} is already canonical, so should not be replaced with a pseudo-version derived from that tag"
            )));
        }
        let refs = self.mirror.remote_refs(&self.access).await?;
        // Ancestry needs the history as the remote has it now.
        self.mirror.fetch(&refs, &self.access).await?;
        let mut last = None;
        for name in refs.keys() {
            let Some(tag) = name.strip_prefix("refs/tags/") else {
                continue;
            };
            let Some(v) = tag.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if semver::is_valid(v) && semver::compare(v, &base).is_eq() {
                last = Some(tag.to_string());
                if self.mirror.descends_from(&commit.hash, name).await? {
                    return Ok(());
                }
            }
        }
        Err(invalid(match last {
            None => format!("preceding tag ({base}) not found"),
            Some(tag) => format!("revision {short} is not a descendent of preceding tag ({tag})"),
        }))
    }
}
