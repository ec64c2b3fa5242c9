//! The machine's side: open a repository (a URL, a folder, or an update file) against
//! the root metadata built into the image, list the releases it offers, and read a
//! release's files through `tough`, which checks each against the signed metadata
//! (signatures, expiry, versions never going back, sizes, sha256s). The metadata the
//! machine trusted last is kept in a datastore on the state partition, so a repository
//! that later serves older metadata (a replay) or stops being re-signed (a freeze) is
//! refused.

use crate::bundle::{Blob, Bundle};
use crate::error::{io, Result, UpdateError};
use crate::release::{releases, stored_name, Part, Release, CUSTOM_KEY};
use crate::transport::{BundleTransport, HttpTransport, BUNDLE_BASE};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tough::{Repository, RepositoryLoader, TargetName};
use url::Url;

/// Where an update comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A repository on a web server (`http://`, `https://`).
    Url(Url),
    /// A repository folder on this machine.
    Dir(PathBuf),
    /// A self-contained update file.
    File(PathBuf),
}

impl Source {
    /// `text` as a source: a URL when it has an http(s) scheme, else a path.
    pub fn parse(text: &str) -> Result<Source> {
        if text.starts_with("http://") || text.starts_with("https://") {
            let mut url = Url::parse(text).map_err(|e| UpdateError::Fetch {
                url: text.into(),
                detail: e.to_string(),
            })?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            return Ok(Source::Url(url));
        }
        let path = PathBuf::from(text);
        if path.is_dir() {
            Ok(Source::Dir(path))
        } else {
            Ok(Source::File(path))
        }
    }
}

/// An open repository.
pub struct Client {
    repo: Repository,
    source: Source,
    bundle: Option<Arc<Bundle>>,
    cache: PathBuf,
}

fn file_url(dir: &Path) -> Result<Url> {
    Url::from_directory_path(dir).map_err(|()| UpdateError::Fetch {
        url: dir.display().to_string(),
        detail: "not an absolute path".into(),
    })
}

fn join(base: &Url, path: &str) -> Result<Url> {
    base.join(path).map_err(|e| UpdateError::Fetch {
        url: base.to_string(),
        detail: e.to_string(),
    })
}

/// What a refusal by `tough` means to a user, and what to do.
fn refused(e: tough::error::Error) -> UpdateError {
    use tough::error::Error as T;
    let (what, fix) = match &e {
        T::ExpiredMetadata { .. } => (
            "expired",
            "the repository was not signed again in time; publish it again (make dist) or ask its owner to",
        ),
        T::OlderMetadata { .. } | T::OlderSnapshotInTimestamp { .. } | T::SnapshotRoleRollback { .. } => (
            "older than what this machine already trusted (a replay)",
            "use a repository that serves the latest metadata",
        ),
        T::VerifyMetadata { .. } | T::VerifyRoleMetadata { .. } | T::VerifyTrustedMetadata { .. } => (
            "not signed by a key this image trusts",
            "publish with the key whose root is built into the image (CORRAL_SIGNING_KEY), or rotate the root",
        ),
        T::HashMismatch { .. } | T::MaxSizeExceeded { .. } => (
            "a file differs from what the signed metadata says",
            "the update was changed or damaged after signing; fetch it again from its source",
        ),
        T::Transport { .. } if e.to_string().contains("Hash mismatch") => (
            "a file differs from what the signed metadata says",
            "the update was changed or damaged after signing; fetch it again from its source",
        ),
        T::Transport { .. } => (
            "unreachable or incomplete",
            "check the URL or file and the network, then run the command again (downloads resume)",
        ),
        _ => ("not valid", "publish the repository again with corral-build"),
    };
    UpdateError::Metadata {
        what: what.into(),
        detail: e.to_string(),
        fix,
    }
}

impl Client {
    /// Opens `source` trusting `root` (the image's root metadata), with the trusted
    /// metadata kept in `datastore` and downloads in `cache`.
    pub async fn open(
        source: Source,
        root: &[u8],
        datastore: &Path,
        cache: &Path,
        progress: bool,
    ) -> Result<Client> {
        std::fs::create_dir_all(datastore).map_err(io("making the directory", datastore))?;
        let (metadata, targets, bundle) = match &source {
            Source::Url(url) => (join(url, "metadata/")?, join(url, "targets/")?, None),
            Source::Dir(dir) => {
                let abs = std::fs::canonicalize(dir).map_err(io("reading", dir.as_path()))?;
                (
                    file_url(&abs.join("metadata"))?,
                    file_url(&abs.join("targets"))?,
                    None,
                )
            }
            Source::File(path) => {
                let bundle = Arc::new(Bundle::open(path)?);
                let base = Url::parse(BUNDLE_BASE).map_err(|e| UpdateError::Fetch {
                    url: BUNDLE_BASE.into(),
                    detail: e.to_string(),
                })?;
                (
                    join(&base, "metadata/")?,
                    join(&base, "targets/")?,
                    Some(bundle),
                )
            }
        };
        let loader = RepositoryLoader::new(&root, metadata, targets.clone()).datastore(datastore);
        let loader = match (&source, &bundle) {
            (Source::Url(_), _) => loader.transport(HttpTransport {
                agent: crate::transport::agent(),
                targets_base: targets,
                cache: cache.to_path_buf(),
                progress,
            }),
            (_, Some(bundle)) => loader.transport(BundleTransport {
                bundle: bundle.clone(),
            }),
            _ => loader,
        };
        let repo = loader.load().await.map_err(refused)?;
        Ok(Client {
            repo,
            source,
            bundle,
            cache: cache.to_path_buf(),
        })
    }

    /// The whole releases the repository offers, newest first. An update file carries
    /// the repository's whole metadata but only its own release's files, so from a file
    /// only the releases whose files it holds are offered.
    pub fn releases(&self) -> Vec<Release> {
        let mut all = releases(self.repo.all_targets().map(|(name, t)| {
            (
                name.raw(),
                t.custom.get(CUSTOM_KEY),
                t.length,
                t.hashes.sha256.as_ref(),
            )
        }));
        if self.bundle.is_some() {
            all.retain(|r| r.parts.iter().all(|p| self.blob(p).is_ok()));
        }
        all
    }

    /// Where a part's bytes are once read.
    fn blob(&self, part: &Part) -> Result<Blob> {
        let stored = stored_name(&part.sha256, &part.target);
        let missing = || UpdateError::Verify {
            what: format!("reading {}", part.target),
            detail: "it is not where the repository keeps it".into(),
        };
        match (&self.source, &self.bundle) {
            (_, Some(bundle)) => bundle
                .get(&format!("targets/{stored}"))
                .cloned()
                .ok_or_else(missing),
            (Source::Dir(dir), _) => {
                let file = dir.join("targets").join(&stored);
                let size = std::fs::metadata(&file).map_err(|_| missing())?.len();
                Ok(Blob {
                    file,
                    offset: 0,
                    size,
                })
            }
            _ => {
                let file = self.cache.join(&stored);
                let size = std::fs::metadata(&file).map_err(|_| missing())?.len();
                Ok(Blob {
                    file,
                    offset: 0,
                    size,
                })
            }
        }
    }

    /// Reads every part of `release` through `tough` (downloading it first from a URL),
    /// and returns where each part's verified bytes are. Nothing is returned unless every
    /// part matched its signed size and sha256; a download that did not match is deleted.
    pub async fn verify(&self, release: &Release) -> Result<Vec<(Part, Blob)>> {
        let mut out = Vec::new();
        for part in &release.parts {
            let name = TargetName::new(part.target.as_str()).map_err(refused)?;
            let stream = self
                .repo
                .read_target(&name)
                .await
                .map_err(refused)?
                .ok_or_else(|| UpdateError::Verify {
                    what: format!("reading {}", part.target),
                    detail: "the signed metadata does not list it".into(),
                })?;
            let mut stream = Box::pin(stream);
            let mut read = 0u64;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => read += bytes.len() as u64,
                    Err(e) => {
                        if let Source::Url(_) = self.source {
                            let stored = stored_name(&part.sha256, &part.target);
                            let _ = std::fs::remove_file(self.cache.join(stored));
                        }
                        return Err(refused(e));
                    }
                }
            }
            if read != part.size {
                return Err(UpdateError::Verify {
                    what: format!("reading {}", part.target),
                    detail: format!("{read} bytes read, the metadata says {}", part.size),
                });
            }
            out.push((part.clone(), self.blob(part)?));
        }
        Ok(out)
    }
}
