//! A repository published with the build's code and read with the machine's: releases
//! listed, files verified, and each kind of bad input refused before a byte is trusted.

use corral_update::bundle::Bundle;
use corral_update::fetch::{Client, Source};
use corral_update::publish::{ensure_key, publish, Expiry, Publication};
use corral_update::release::{ReleaseId, ARCH, PARTS};
use corral_update::root::{ensure_root, newest, rotate, trusts};
use std::fs;
use std::path::{Path, PathBuf};

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn key(&self) -> PathBuf {
        self.p("key.pk8")
    }
    fn root(&self) -> PathBuf {
        self.p("root.json")
    }
    /// Publishes `version` with parts whose content says which version they are.
    async fn release(&self, version: &str, now: jiff::Timestamp, expiry: Expiry) -> PathBuf {
        ensure_key(&self.key()).unwrap();
        ensure_root(&self.root(), &self.key(), now, expiry)
            .await
            .unwrap();
        self.publish(version, now, expiry, &self.key(), &self.root())
            .await
            .unwrap()
    }
    /// Publishes `version` signed with `key` under the root metadata at `root`.
    async fn publish(
        &self,
        version: &str,
        now: jiff::Timestamp,
        expiry: Expiry,
        key: &Path,
        root: &Path,
    ) -> corral_update::Result<PathBuf> {
        let files = self.p(&format!("build-{version}"));
        fs::create_dir_all(&files).unwrap();
        let mut parts = Vec::new();
        for part in PARTS {
            let path = files.join(part);
            fs::write(&path, format!("{part} of {version}\n").repeat(1000)).unwrap();
            parts.push((part, path));
        }
        let parts: Vec<(&str, &Path)> = parts.iter().map(|(n, p)| (*n, p.as_path())).collect();
        let bundle = self.p(&format!("corral-{version}.update"));
        let id = ReleaseId {
            version: version.into(),
            build_id: format!("build{version}"),
            arch: ARCH.into(),
        };
        publish(&Publication {
            repo: &self.p("repo"),
            root,
            key,
            id: &id,
            parts: &parts,
            bundle: &bundle,
            now,
            expiry,
        })
        .await?;
        Ok(bundle)
    }
    async fn open(&self, source: Source, machine: &str) -> corral_update::Result<Client> {
        let root = fs::read(self.root()).unwrap();
        Client::open(
            source,
            &root,
            &self.p(&format!("{machine}/tuf")),
            &self.p(&format!("{machine}/cache")),
            false,
        )
        .await
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn ago(seconds: i64) -> jiff::Timestamp {
    now()
        .checked_sub(jiff::SignedDuration::from_secs(seconds))
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_published_release_is_listed_and_verified_from_the_folder_and_the_file() {
    let s = Setup::new();
    s.release("0.1.0", ago(20), Expiry::default()).await;
    let bundle = s.release("0.2.0", ago(10), Expiry::default()).await;
    // The folder offers both releases; the update file only its own.
    let client = s.open(Source::Dir(s.p("repo")), "m1").await.unwrap();
    let versions: Vec<_> = client
        .releases()
        .into_iter()
        .map(|r| r.id.version)
        .collect();
    assert_eq!(versions, ["0.2.0", "0.1.0"]);
    let client = s.open(Source::File(bundle.clone()), "m2").await.unwrap();
    let offered = client.releases();
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].id.build_id, "build0.2.0");
    let verified = client.verify(&offered[0]).await.unwrap();
    assert_eq!(verified.len(), PARTS.len());
    for (part, blob) in verified {
        let mut bytes = vec![0u8; blob.size as usize];
        use std::io::{Read, Seek, SeekFrom};
        let mut f = fs::File::open(&blob.file).unwrap();
        f.seek(SeekFrom::Start(blob.offset)).unwrap();
        f.read_exact(&mut bytes).unwrap();
        assert!(String::from_utf8(bytes)
            .unwrap()
            .starts_with(&format!("{} of 0.2.0", part.name)));
    }
    // Publishing again keeps one copy of each file.
    assert_eq!(
        fs::read_dir(s.p("repo/targets")).unwrap().count(),
        2 * PARTS.len()
    );
    assert!(Bundle::open(&bundle).is_ok());
}

#[tokio::test(flavor = "current_thread")]
async fn a_release_stays_whole_when_the_build_writes_its_files_again_in_place() {
    let s = Setup::new();
    s.release("0.1.0", ago(20), Expiry::default()).await;
    // The next build writes the same paths again (truncating them in place).
    s.release("0.2.0", ago(10), Expiry::default()).await;
    let build = s.p("build-0.1.0");
    for part in PARTS {
        fs::write(build.join(part), "written again by a later build").unwrap();
    }
    let client = s.open(Source::Dir(s.p("repo")), "m").await.unwrap();
    let old = client
        .releases()
        .into_iter()
        .find(|r| r.id.version == "0.1.0")
        .unwrap();
    client
        .verify(&old)
        .await
        .expect("0.1.0's files are its own");
}

#[tokio::test(flavor = "current_thread")]
async fn a_changed_byte_in_the_update_file_is_refused() {
    let s = Setup::new();
    let bundle = s.release("0.2.0", ago(10), Expiry::default()).await;
    // Flip a byte of the initrd inside the file: found by its text.
    let mut bytes = fs::read(&bundle).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"initrd of 0.2")
        .unwrap();
    bytes[at] = b'I';
    fs::write(&bundle, &bytes).unwrap();
    let client = s.open(Source::File(bundle), "m").await.unwrap();
    let release = client.releases().remove(0);
    let err = client.verify(&release).await.unwrap_err().to_string();
    assert!(
        err.contains("differs from what the signed metadata says"),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn metadata_signed_by_another_key_is_refused() {
    let s = Setup::new();
    let bundle = s.release("0.2.0", ago(10), Expiry::default()).await;
    // The machine trusts a root made with another key.
    let other = Setup::new();
    other.release("0.1.0", ago(10), Expiry::default()).await;
    let root = fs::read(other.root()).unwrap();
    let err = Client::open(
        Source::File(bundle),
        &root,
        &s.p("m/tuf"),
        &s.p("m/cache"),
        false,
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("not signed by a key this image trusts"),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn expired_metadata_is_refused() {
    let s = Setup::new();
    let expiry = Expiry {
        timestamp_days: 1,
        ..Expiry::default()
    };
    let bundle = s.release("0.2.0", ago(3 * 86400), expiry).await;
    let err = s
        .open(Source::File(bundle), "m")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_older_publication_after_a_newer_one_is_a_replay() {
    let s = Setup::new();
    let old = s.release("0.2.0", ago(100), Expiry::default()).await;
    let kept = s.p("old.update");
    fs::copy(&old, &kept).unwrap();
    let new = s.release("0.3.0", ago(10), Expiry::default()).await;
    // The machine sees the newer publication first, then is served the older one.
    s.open(Source::File(new), "m").await.unwrap();
    let err = s
        .open(Source::File(kept), "m")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("a replay"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_file_that_is_not_an_update_is_refused_with_its_name() {
    let s = Setup::new();
    s.release("0.1.0", ago(10), Expiry::default()).await;
    let path = s.p("junk.update");
    fs::write(&path, b"not a tar at all").unwrap();
    let err = s
        .open(Source::File(path), "m")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("junk.update") && err.contains("not a Corral update"),
        "{err}"
    );
}

fn versions(client: &Client) -> Vec<String> {
    client
        .releases()
        .into_iter()
        .map(|r| r.id.version)
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_rotated_root_moves_machines_to_the_new_key() {
    let s = Setup::new();
    s.release("0.1.0", ago(30), Expiry::default()).await;
    let client = s.open(Source::Dir(s.p("repo")), "m").await.unwrap();
    assert_eq!(versions(&client), ["0.1.0"]);
    drop(client);

    let new_key = s.p("new.pk8");
    ensure_key(&new_key).unwrap();
    let rotated = rotate(&s.p("repo"), &s.key(), &new_key, ago(20), Expiry::default())
        .await
        .unwrap();
    assert_eq!(rotated.version, 2);
    assert!(rotated.resigned);
    assert_eq!(rotated.path, s.p("repo/metadata/2.root.json"));
    assert_eq!(
        newest(&s.p("repo/metadata")),
        Some((2, rotated.path.clone()))
    );
    assert!(trusts(&rotated.path, &new_key).await.unwrap());
    assert!(!trusts(&rotated.path, &s.key()).await.unwrap());

    // A machine whose image trusts root 1 follows the rotation: the repository, signed
    // again with the new key, still reads, before and after a release signed by it.
    let client = s.open(Source::Dir(s.p("repo")), "m").await.unwrap();
    assert_eq!(versions(&client), ["0.1.0"]);
    drop(client);
    let bundle = s
        .publish("0.2.0", ago(10), Expiry::default(), &new_key, &rotated.path)
        .await
        .unwrap();
    let client = s.open(Source::Dir(s.p("repo")), "m").await.unwrap();
    assert_eq!(versions(&client), ["0.2.0", "0.1.0"]);
    let new = client.releases().remove(0);
    client.verify(&new).await.expect("0.2.0 verifies");
    // The update file carries both roots, so a machine that never saw the repository
    // follows the rotation from the file alone.
    let client = s.open(Source::File(bundle), "fresh").await.unwrap();
    assert_eq!(versions(&client), ["0.2.0"]);
    drop(client);

    // The old key no longer publishes.
    let err = s
        .publish("0.3.0", ago(5), Expiry::default(), &s.key(), &s.root())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rotate"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_repository_named_by_a_relative_path_takes_another_release() {
    let s = Setup::new();
    s.release("0.1.0", ago(30), Expiry::default()).await;
    // The build names `--dist-dir target/...` relative to where it runs.
    let cwd = std::env::current_dir().unwrap();
    std::env::set_current_dir(s.dir.path()).unwrap();
    let files = s.p("build-0.2.0");
    fs::create_dir_all(&files).unwrap();
    let mut parts = Vec::new();
    for part in PARTS {
        let path = files.join(part);
        fs::write(&path, format!("{part} of 0.2.0\n")).unwrap();
        parts.push((part, path));
    }
    let parts: Vec<(&str, &Path)> = parts.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let id = ReleaseId {
        version: "0.2.0".into(),
        build_id: "build0.2.0".into(),
        arch: ARCH.into(),
    };
    let published = publish(&Publication {
        repo: Path::new("repo"),
        root: &s.root(),
        key: &s.key(),
        id: &id,
        parts: &parts,
        bundle: Path::new("corral-0.2.0.update"),
        now: ago(10),
        expiry: Expiry::default(),
    })
    .await;
    std::env::set_current_dir(cwd).unwrap();
    assert_eq!(published.unwrap().versions, ["0.2.0", "0.1.0"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_rotation_signed_by_a_key_the_root_does_not_trust_writes_nothing() {
    let s = Setup::new();
    s.release("0.1.0", ago(30), Expiry::default()).await;
    let stranger = s.p("stranger.pk8");
    ensure_key(&stranger).unwrap();
    let before: Vec<_> = fs::read_dir(s.p("repo/metadata"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let err = rotate(&s.p("repo"), &stranger, &stranger, now(), Expiry::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not trust the key"), "{err}");
    let after: Vec<_> = fs::read_dir(s.p("repo/metadata"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
    let client = s.open(Source::Dir(s.p("repo")), "m").await.unwrap();
    assert_eq!(versions(&client), ["0.1.0"]);
}

#[tokio::test(flavor = "current_thread")]
async fn an_expired_root_is_renewed_by_signing_the_next_one_with_the_same_key() {
    let s = Setup::new();
    let short = Expiry {
        root_days: 1,
        ..Expiry::default()
    };
    s.release("0.1.0", ago(3 * 86_400), short).await;
    let err = s
        .open(Source::Dir(s.p("repo")), "m")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("expired"), "{err}");
    let renewed = rotate(&s.p("repo"), &s.key(), &s.key(), now(), Expiry::default())
        .await
        .unwrap();
    assert_eq!(renewed.version, 2);
    assert!(renewed.expires > now());
    let client = s.open(Source::Dir(s.p("repo")), "m").await.unwrap();
    assert_eq!(versions(&client), ["0.1.0"]);
}
